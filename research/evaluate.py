"""Re-evaluate finished runs from their saved config and best checkpoint (no training) and
rewrite their metrics.json, keeping the training-time figures: for a metric added after the
runs were made. The evaluation equals the run's own (same checkpoint, data and protocol).

    python -m research.evaluate RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf

from research.cli import one_line_errors
from research.io import write_json
from research.runs import load_run
from research.train import quiet_libraries

log = logging.getLogger(__name__)


def evaluate(run_dir: Path) -> dict[str, float]:
    module, datamodule = load_run(run_dir, fit=True)
    cfg = OmegaConf.load(run_dir / "config.yaml")
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[], enable_checkpointing=False,
                          enable_progress_bar=False, default_root_dir=str(run_dir))
    results = {**trainer.validate(module, datamodule=datamodule, verbose=False)[0],
               **trainer.test(module, datamodule=datamodule, verbose=False)[0]}
    results = {k: float(v) for k, v in results.items() if k.startswith(("val/", "test/"))}
    previous = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    merged = {k: v for k, v in previous.items() if k.startswith("time/")} | results
    write_json(run_dir / "metrics.json", merged)
    return merged


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_libraries()
    for run_dir in args.run_dirs:
        evaluate(run_dir)
        log.info("re-evaluated %s", run_dir)


if __name__ == "__main__":
    main()
