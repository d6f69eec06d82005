"""Top features of the profile-tree models of one or more tables: each cell's
feature_importances.json, averaged over the seeds of its row, as markdown.

    python -m research.importances experiments/<table>.yaml [...] [--top 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from hydra.utils import get_class
from omegaconf import OmegaConf

from research import markdown, table
from research.cli import one_line_errors


def model_class(run_dir: Path) -> type:
    """The model class a finished run trained (from its resolved config)."""
    return get_class(OmegaConf.load(run_dir / "config.yaml").model._target_)


def top_features(spec_path: Path, top: int) -> list[str]:
    spec = table.load_spec(spec_path)
    lines = []
    for row in spec["rows"]:
        for dataset in spec["datasets"]:
            runs = [c.run_dir() for c in table.cells(spec) if c.row == row["label"] and c.dataset == dataset]
            files = [d / "feature_importances.json" for d in runs if (d / "feature_importances.json").is_file()]
            if not files:
                continue
            values: dict[str, list[float]] = {}
            for f in files:
                for name, value in json.loads(f.read_text()).items():
                    values.setdefault(name, []).append(value)
            mean = sorted(((statistics.fmean(v), n) for n, v in values.items()), reverse=True)[:top]
            where = f"{spec['name']}" + (f" / {dataset}" if dataset else "")
            kind = model_class(files[0].parent).importance_kind
            lines += [f"### {row['label']} on {where}", "",
                      f"{kind} importance, mean over {len(files)} seed(s):", "",
                      *markdown.table(["rank", "feature", "importance"],
                             ([i, f"`{n}`", f"{v:.4f}"] for i, (v, n) in enumerate(mean, 1)))]
            lines.append("")
    return lines


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    lines = ["# Top features of the profile-tree models", "",
             "Features are described in research/profiles.py (`[k]`: category k; windows of the last w events).",
             f"Command: `python -m research.importances {' '.join(map(str, args.specs))} --top {args.top}`", ""]
    for spec in args.specs:
        lines += top_features(spec, args.top)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
