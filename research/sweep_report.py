"""Markdown summary of a finished sweep: the default config (the enqueued first trial) against
the best trial, then every trial with its state, epochs run, objective and test figures.

    python -m research.sweep_report outputs/sweeps/<study>
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import optuna
from omegaconf import OmegaConf

from research.cli import one_line_errors
from research.markdown import table

TEST_METRICS = ("test/hit@10", "test/ndcg@10")


def trial_rows(study: optuna.Study, metric: str) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        run = Path(t.user_attrs.get("run_dir", ""))
        metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {}
        rows.append({"number": t.number, "state": t.state.name, "params": t.params,
                     "epochs": len(t.intermediate_values),
                     # a pruned trial's figure is its last reported epoch, not a finished run
                     metric: t.value if t.value is not None else None,
                     **{m: metrics.get(m) for m in TEST_METRICS}})
    return rows


def fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown(sweep_dir: Path) -> str:
    cfg = OmegaConf.load(sweep_dir / "sweep_config.yaml")
    sweep = cfg.sweep
    study = optuna.load_study(study_name=sweep.study_name, storage=sweep.storage)
    metric = sweep.metric
    rows = trial_rows(study, metric)
    keys = list(sweep.params)
    lines = [f"# Sweep `{sweep.study_name}`", "",
             f"Objective: {sweep.direction} `{metric}`; {len(rows)} trials; budget "
             f"`trainer.max_epochs={cfg.trainer.max_epochs}` per trial; pruner "
             f"`{sweep.pruner._target_ if sweep.get('pruner') else 'none'}`; data `{cfg.data.name}`, "
             f"model `{cfg.model._target_}`, threads {cfg.threads}.", ""]
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    default = rows[0] if rows and sweep.get("enqueue_defaults") else None
    if complete:
        best = study.best_trial
        best_row = rows[best.number]
        lines.append(f"- Best: trial {best.number}, {metric} **{fmt(best.value)}**, "
                     + ", ".join(f"{m} {fmt(best_row[m])}" for m in TEST_METRICS))
        lines.append("- Best params: " + ", ".join(f"`{k}={v}`" for k, v in best.params.items()))
        if default is not None and default["state"] == "COMPLETE":
            gain = best.value - default[metric]
            lines.append(f"- Default config (trial 0): {metric} {fmt(default[metric])}, "
                         + ", ".join(f"{m} {fmt(default[m])}" for m in TEST_METRICS)
                         + f"; best - default = {gain:+.4f} ({100 * gain / default[metric]:+.1f}%)")
    lines += ["", *table(["trial", "state", "epochs", metric, *TEST_METRICS, *keys],
                         ([fmt(c) for c in [r["number"], r["state"], r["epochs"], r[metric],
                                            *(r[m] for m in TEST_METRICS), *(r["params"].get(k) for k in keys)]]
                          for r in rows))]
    lines += ["", "A pruned trial's figure is its last validation epoch before the pruner stopped it."]
    return "\n".join(lines) + "\n"


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    print(markdown(parser.parse_args().sweep_dir), end="")


if __name__ == "__main__":
    main()
