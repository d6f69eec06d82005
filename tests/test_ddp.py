"""DDP with 2 CPU processes (gloo): evaluation shards every target exactly once and the metrics
gather across ranks, so a 2-process run reports exactly the metrics of 1 process; training
runs with rank-sharded batches. Each run is its own `python -m research.train` (Lightning
relaunches that command for rank 1, never pytest)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY_SYNTHETIC


def train(tmp_path, name: str, *overrides: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "research.train", *TINY_SYNTHETIC, "logger=csv",
                           f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / name}", *overrides],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / name / "metrics.json").read_text())


def test_two_process_evaluation_equals_one_process(tmp_path):
    # split.seed=3: 571 test and 419 validation targets, odd counts, so a sampler that pads the
    # shards with copies (torch's DistributedSampler) would count a target twice and differ
    setting = ["model=oracle", "task=next_item", "split=user_holdout", "split.seed=3", "eval.migration_latency=true",
               "datamodule.eval_batch_size=64"]
    one = train(tmp_path, "one", *setting)
    two = train(tmp_path, "two", *setting, "trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu")
    scores = {k: v for k, v in one.items() if not k.startswith("time/")}
    assert scores["test/count"] % 2 == 1 and scores["val/count"] % 2 == 1 and scores["test/migration/switches"] > 20
    assert {k: two[k] for k in scores} == pytest.approx(scores, rel=1e-6, abs=1e-9)
    report = [json.loads((tmp_path / d / "category_report.json").read_text()) for d in ("one", "two")]
    assert report[0] == report[1]  # per-category counts gathered too


def test_ddp_training_runs_on_rank_sharded_batches(tmp_path):
    metrics = train(tmp_path, "ddp", "model=gru", "trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu",
                    "trainer.max_epochs=2", "datamodule.batch_size=32")
    assert metrics["time/epochs"] == 2 and 0 < metrics["test/ndcg@10"] <= 1
