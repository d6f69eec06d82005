"""A training run killed with SIGKILL and started again with resume=true continues from its last
checkpoint and ends with exactly the metrics of an uninterrupted run (CPU, fixed seed), its logs
whole; a resume with other settings is refused before the folder is touched; a broken last
checkpoint is moved aside."""

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from research.train import run
from tests.conftest import ROOT, TINY_SYNTHETIC

EPOCHS = 8


def command(tmp_path, run: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "research.train", "model=sasrec", "logger=csv", *TINY_SYNTHETIC,
            f"trainer.max_epochs={EPOCHS}", "callbacks.early_stopping.patience=100", "threads=1",
            f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / run}", *extra]


def scores(path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("time/")}


def test_a_killed_run_resumes_from_its_last_checkpoint_and_ends_identical(tmp_path, request):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the uninterrupted run trains beside the one that is killed (one thread each)
    with (tmp_path / "whole.stderr").open("w") as whole_log:
        whole = subprocess.Popen(command(tmp_path, "whole"), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                 stderr=whole_log)
    request.addfinalizer(whole.kill)  # a failed assertion leaves no run training (a no-op once it ended)
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
    run = tmp_path / "killed"
    assert not (run / "metrics.json").exists()
    validated = len(curve.read_text().splitlines())
    # last.ckpt follows every epoch, not only the improving ones (the kill may fall between the two writes)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] >= validated - 2

    kept = {name: (run / name).read_bytes() for name in ("config.yaml", "csv/metrics.csv")}
    changed = subprocess.run(command(tmp_path, "killed", "resume=true", "datamodule.max_len=20"), cwd=ROOT,
                             capture_output=True, text=True, env=env, timeout=600)
    assert changed.returncode != 0
    [line] = changed.stderr.strip().splitlines()
    assert line.startswith(f"error: resume=true: {run / 'config.yaml'} was trained with other settings (")
    assert "datamodule.max_len: 50 -> 20" in line
    assert {name: (run / name).read_bytes() for name in kept} == kept

    # a folder moved before its resume (renamed, another results tree) resumes where it now is
    run = run.rename(tmp_path / "moved")
    curve = run / "validation_curve.jsonl"
    resumed = subprocess.run(command(tmp_path, "moved", "resume=true"), cwd=ROOT, capture_output=True,
                             text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert whole.wait(timeout=600) == 0, (tmp_path / "whole.stderr").read_text()[-2000:]
    assert "resuming from" in resumed.stdout + resumed.stderr
    # the moved folder keeps the best score and paths of the checkpoints saved before the crash
    best = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]
    [state] = [v for k, v in best.items() if k.startswith("ModelCheckpoint") and v.get("monitor")]
    assert state["dirpath"] == str(run / "checkpoints")
    assert state["best_model_path"].startswith(state["dirpath"]) and Path(state["best_model_path"]).is_file()
    with (run / "csv" / "metrics.csv").open(newline="") as f:
        validation = [float(row["val/ndcg@10"]) for row in csv.DictReader(f) if row.get("val/ndcg@10")]
    assert float(state["best_model_score"]) == pytest.approx(max(validation))  # over the epochs before the move too
    assert scores(run / "metrics.json") == scores(tmp_path / "whole" / "metrics.json")
    # the timings cover every epoch, before and after the crash
    assert json.loads((run / "metrics.json").read_text())["time/epochs"] == EPOCHS
    epochs = [json.loads(line)["epoch"] for line in curve.read_text().splitlines()]
    assert epochs == list(range(EPOCHS))  # one line per epoch, none repeated, none lost
    # so is the CSV log: the same validation rows as the uninterrupted run's
    assert validated_epochs(run / "csv" / "metrics.csv") == validated_epochs(tmp_path / "whole" / "csv" / "metrics.csv")

    # killed after its last checkpoint and moved: nothing is left to train, and the best
    # checkpoint is evaluated from where the folder now is
    expected = scores(tmp_path / "whole" / "metrics.json")
    (tmp_path / "whole" / "metrics.json").unlink()
    done = (tmp_path / "whole").rename(tmp_path / "whole_moved")
    again = subprocess.run(command(tmp_path, "whole_moved", "resume=true"), cwd=ROOT, capture_output=True,
                           text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert scores(done / "metrics.json") == expected


def validated_epochs(path) -> list[int]:
    with path.open(newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f) if row.get("val/ndcg@10")]


def test_a_broken_last_checkpoint_is_moved_aside_and_the_run_starts_afresh(tmp_path):
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "last.ckpt").write_bytes(b"PK\x03\x04 cut short by a full disk")
    proc = subprocess.run(command(tmp_path, "run", "resume=true", "trainer.max_epochs=2"), cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "moved to last.ckpt.broken" in proc.stdout + proc.stderr
    assert (checkpoints / "last.ckpt.broken").read_bytes().endswith(b"full disk")
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 1
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt", "last.ckpt.broken"]


def test_a_full_disk_during_a_checkpoint_leaves_the_previous_one_whole(make_cfg, tmp_path, monkeypatch):
    writes = []
    real = Path.write_bytes

    def full_disk_on_the_second_last_checkpoint(self, data):
        writes.append(self.name)
        if sum("last.ckpt" in name for name in writes) == 2:  # epoch 1's last.ckpt: half of it, then ENOSPC
            real(self, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk_on_the_second_last_checkpoint)
    cfg = make_cfg("model=sasrec", "logger=csv", "trainer.max_epochs=3", "threads=1", *TINY_SYNTHETIC)
    with pytest.raises(OSError, match="No space left") as err:
        run(cfg)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert err.value.filename == str(checkpoints / "last.ckpt")
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 0  # the previous one, whole
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]  # no temporary file left


def test_a_damaged_config_refuses_resume_without_touching_the_folder(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("model: [unclosed\n")
    proc = subprocess.run(command(tmp_path, "run", "resume=true"), cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [f"error: resume=true: {run_dir / 'config.yaml'} is unreadable "
                                                "(ParserError); write the run elsewhere"]
    assert (run_dir / "config.yaml").read_text() == "model: [unclosed\n"
