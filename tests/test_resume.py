"""A training run killed with SIGKILL and started again with resume=true continues from its last
checkpoint and ends with exactly the metrics of an uninterrupted run (CPU, fixed seed)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, TINY_SYNTHETIC

EPOCHS = 8


def command(tmp_path, run: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "research.train", "model=sasrec", "logger=csv", *TINY_SYNTHETIC,
            f"trainer.max_epochs={EPOCHS}", "callbacks.early_stopping.patience=100", "threads=1",
            f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / run}", *extra]


def scores(path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("time/")}


def test_a_killed_run_resumes_from_its_last_checkpoint_and_ends_identical(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = subprocess.run(command(tmp_path, "whole"), cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert whole.returncode == 0, whole.stderr[-2000:]

    proc = subprocess.Popen(command(tmp_path, "killed"), cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    curve, deadline = tmp_path / "killed" / "validation_curve.jsonl", time.time() + 300
    while time.time() < deadline:  # kill it mid-training, after a few epochs were checkpointed
        time.sleep(0.05)
        if curve.exists() and len(curve.read_text().splitlines()) >= 3:
            break
    else:
        proc.kill()
        pytest.fail("the run never reached its third epoch")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "metrics.json").exists()
    assert (tmp_path / "killed" / "checkpoints" / "last.ckpt").exists()

    resumed = subprocess.run(command(tmp_path, "killed", "resume=true"), cwd=ROOT, capture_output=True, text=True,
                             env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout + resumed.stderr
    assert scores(tmp_path / "killed" / "metrics.json") == scores(tmp_path / "whole" / "metrics.json")
    epochs = [json.loads(line)["epoch"] for line in curve.read_text().splitlines()]
    assert epochs == list(range(EPOCHS))  # one line per epoch, none repeated, none lost
