"""End-to-end: every model x task in conf/ composes and runs; incompatible pairs and unknown
options fail at once with a readable message; the run directory holds what it promises."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from hydra.utils import get_class

from research.models import SEQUENCE_TASKS
from research.tasks import NextEvent
from research.train import run
from tests.conftest import CONF, ROOT, TINY_SYNTHETIC, options, train_in_process, trains_on_prefixes_only

MISSION_KEYS = [f"{m}@{k}" for m in ("hit", "ndcg", "mrr") for k in (5, 10, 20)]
CATEGORY_KEYS = ["category_acc@1", "category_acc@3", "category_macro_f1", "category_logloss"]
CTR_KEYS = ["auc", "gauc", "logloss", "count"]


def supported(model: str, task: str, make_cfg) -> bool:
    from hydra.utils import get_class

    cfg = make_cfg(f"model={model}")
    return task in get_class(cfg.model._target_).supported_tasks


@pytest.mark.parametrize("task", options("task"))
@pytest.mark.parametrize("model", options("model"))
def test_every_model_and_task_runs(model, task, make_cfg, tmp_path):
    cfg = make_cfg(f"model={model}", f"task={task}", "debug=fast", *TINY_SYNTHETIC)
    if "train_rows" in cfg.task and trains_on_prefixes_only(model):
        cfg = make_cfg(f"model={model}", f"task={task}", "debug=fast", *TINY_SYNTHETIC, "task.train_rows=prefixes")
    if not supported(model, task, make_cfg):
        with pytest.raises(ValueError, match=f"does not support task '{task}'"):
            run(cfg)
        return
    results = run(cfg)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written == pytest.approx(results, nan_ok=True)
    if task == "ctr":
        for split in ("val", "test"):
            assert all(f"{split}/{k}" in written for k in CTR_KEYS)
            assert 0 <= written[f"{split}/auc"] <= 1 and 0 <= written[f"{split}/gauc"] <= 1
        return
    for split in ("val", "test"):
        for key in CATEGORY_KEYS:
            assert f"{split}/{key}" in written
            assert f"{split}/shift/{key}" in written and f"{split}/stay/{key}" in written
        assert written[f"{split}/stay/count"] + written[f"{split}/shift/count"] == written[f"{split}/count"]
        if task != "next_category":
            assert all(f"{split}/{k}" in written for k in MISSION_KEYS)
    assert (tmp_path / "run" / "config.yaml").is_file()
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert len(info["git_commit"]) == 40 and isinstance(info["git_dirty"], bool)
    report = json.loads((tmp_path / "run" / "category_report.json").read_text())["test"]
    assert len(report) == 6 and {"precision", "recall", "f1", "support"} <= set(report[0])


def test_sequence_tasks_are_every_task_config_on_event_windows():
    tasks = {t: yaml.safe_load((CONF / "task" / f"{t}.yaml").read_text()) for t in options("task")}
    assert {t for t, c in tasks.items() if issubclass(get_class(c["_target_"]), NextEvent)} == SEQUENCE_TASKS


def test_trained_run_keeps_checkpoint_config_and_logs(make_cfg, tmp_path, capfd):
    cfg = make_cfg("model=sasrec", "logger=default", "trainer.max_epochs=2", "trainer.log_every_n_steps=1",
                   *TINY_SYNTHETIC)
    results = run(cfg)
    out = tmp_path / "run"
    assert (out / "checkpoints" / "best.ckpt").is_file()
    assert (out / "csv" / "metrics.csv").is_file()
    counts = json.loads((out / "data_report.json").read_text())
    assert counts["events"] > 0 and "dropped_short_users" in counts  # what the build kept and dropped
    stages = json.loads((out / "resources.json").read_text())["stages"]  # what each stage cost
    assert set(stages) == {"data", "fit", "evaluate"}
    assert all(s["seconds"] > 0 and s["peak_host_gib"] > 0.05 and s["peak_device_gib"] is None for s in stages.values())
    assert list((out / "wandb").glob("offline-run-*")), "W&B should write an offline run"
    assert not [line for line in capfd.readouterr().err.splitlines() if line.startswith("wandb:")]  # and say nothing
    assert results["time/epochs"] == 2 and results["time/train_epoch_seconds"] > 0


def test_the_gru_learns_category_migration_beyond_the_trivial_baselines(make_cfg, tmp_path):
    """On the simulator the next category depends on the hidden state, which several recent
    events reveal better than the last one alone: a trained GRU must beat both baselines."""
    data = ["data.builder.num_users=600", "data.builder.num_categories=6", "data.builder.num_items=200",
            "data.builder.mean_events=40", "logger=csv", "task=next_category", "datamodule.batch_size=32"]
    acc = {m: run(make_cfg(f"model={m}", *data, "trainer.max_epochs=8", f"paths.output_dir={tmp_path / m}"))[
        "test/category_acc@1"]
           for m in ("majority", "last_category", "gru")}
    assert acc["gru"] > acc["last_category"] + 0.02 > acc["majority"] + 0.02, acc


def test_unknown_option_fails_listing_the_valid_ones(tmp_path, capfd):
    code, lines = train_in_process(["model=nope"], tmp_path, capfd)
    assert code != 0 and len(lines) == 1
    assert "Could not find 'model/nope'" in lines[0]
    for name in options("model"):
        assert name in lines[0]


def test_incompatible_model_and_task_fail_in_one_line_before_any_data_is_built(tmp_path, capfd):
    code, lines = train_in_process(["model=din", "task=next_item"], tmp_path, capfd)
    assert code != 0
    assert lines == ["error: model DIN does not support task 'next_item' (supported: ctr)"]
    assert not (tmp_path / "cache").exists()


@pytest.mark.filterwarnings("default")  # dynamo's tracing warns internally; the run must still succeed
def test_compile_and_mixed_precision_are_config_switches(make_cfg):
    results = run(make_cfg("model=gru", "compile=true", "trainer.precision=bf16-mixed", "debug=fast", *TINY_SYNTHETIC))
    assert 0 <= results["test/ndcg@10"] <= 1


def test_a_run_logged_to_a_file_reads_one_line_per_epoch(tmp_path):
    """Output that is not a terminal (a file, a pipe, a scheduler's log) gets no progress bar,
    no escape codes and no library notices: one line per epoch with its metrics."""
    proc = subprocess.run([sys.executable, "-m", "research.train", "model=gru", *TINY_SYNTHETIC,
                           "trainer.max_epochs=3", "logger=csv", f"paths.cache_dir={tmp_path / 'cache'}",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "\r" not in log and "\x1b" not in log
    assert "GPU available" not in log and "Tip:" not in log and "LeafSpec" not in log
    epochs = [line for line in log.splitlines() if " s training; val/ndcg@10 " in line]
    assert [line.split(" - ", 1)[1].split(":")[0] for line in epochs] == ["epoch 0", "epoch 1", "epoch 2"]
    assert all("(best " in line and "train/loss " in line for line in epochs)


def test_a_cache_path_that_is_a_file_is_one_line_and_a_debug_switch_shows_the_traceback(tmp_path, capfd):
    (tmp_path / "cache").write_text("not a directory")
    code, lines = train_in_process(["debug=fast", *TINY_SYNTHETIC], tmp_path, capfd)  # the entry point, in process
    assert code != 0
    assert lines == [f"error: {tmp_path / 'cache'}: a file is where a directory is needed"]
    arguments = [sys.executable, "-m", "research.train", "debug=fast", *TINY_SYNTHETIC,
                 f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}"]
    debug = subprocess.run(arguments, cwd=ROOT, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    assert "Traceback" in debug.stderr and "FileExistsError" in debug.stderr


def test_a_category_task_on_data_with_one_category_is_refused(tmp_path, capfd):
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,category_id,timestamp\n" + "".join(
        f"{u},{i},7,{t}\n" for u in (1, 2) for t, i in enumerate((10, 11, 12, 13))))
    code, lines = train_in_process(["data=table", f"data.builder.path={log}", "task=next_category", "debug=fast"],
                                   tmp_path, capfd)
    assert code != 0
    assert lines == ["error: task next_category predicts categories, but table has 1 category"]


def test_recbole_atomic_files_without_categories_train_and_skip_the_category_metrics(tmp_path, capfd):
    (tmp_path / "toy.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n" + "".join(
        f"u{u}\ti{(u * 3 + t) % 11}\t{1000 * u + t}.0\n" for u in range(12) for t in range(6)))
    code, lines = train_in_process(["data=recbole", f"data.root={tmp_path}", "data.name=toy", "model=gru",
                                    "debug=fast"], tmp_path, capfd)
    assert code == 0, lines
    log = (tmp_path / "run" / "train.log").read_text()
    assert "toy has 1 category: category metrics and the stay/shift slices are skipped" in log
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "test/ndcg@10" in metrics and "test/count" in metrics
    assert not [k for k in metrics if "category" in k or "/stay/" in k or "/shift/" in k]


def test_cut_offs_that_cover_the_whole_catalogue_are_named(tmp_path, capfd):
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,category_id,timestamp\n" + "".join(
        f"{u},{10 + (u + t) % 6},{7 + t % 2},{t}\n" for u in range(8) for t in range(5)))
    code, lines = train_in_process(["data=table", f"data.builder.path={log}", "model=majority", "debug=fast"],
                                   tmp_path, capfd)
    assert code == 0, lines
    assert "table has 6 items: hit@k and ndcg@k for k in [10, 20] rank the whole catalogue" in \
        (tmp_path / "run" / "train.log").read_text()
