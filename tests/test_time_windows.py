"""split=time_window on a drifting simulator, through research.train: the run learns from the
events before its window, is tested on the window, and reports how many targets belong to users
and items it never learnt from (checked against a count made here from the cached events)."""

import json

import polars as pl
import pytest

from tests.conftest import train_in_process

DRIFT = ["data=synthetic_drift", "data.builder.num_users=150", "data.builder.num_items=80",
         "data.builder.mean_events=20", "data.builder.campaigns=1"]


@pytest.mark.parametrize("window", [0, 3])
def test_a_time_window_run_reports_its_window_and_counts_its_cold_users_and_unseen_items(tmp_path, window):
    code, err = train_in_process([*DRIFT, "split=time_window", "split.windows=4", f"split.window={window}",
                                  "model=gru", "trainer.max_epochs=1"], tmp_path)
    assert code == 0, err
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())["split"]
    events = pl.read_parquet(f"{report_entry(tmp_path)}/events.parquet").with_columns(
        pl.int_range(pl.len()).over("user").alias("position"))
    start, end = report["window_start"], report["window_end"]
    past = events.filter(pl.col("timestamp") < start)["timestamp"].sort()
    val_from = past[min(int(0.9 * past.len()), past.len() - 1)]
    learned = events.filter(pl.col("timestamp") < val_from)
    test = events.filter((pl.col("timestamp") >= start) & (pl.col("timestamp") < end) & (pl.col("position") >= 1))
    assert report["window"] == window and report["test_targets"] == test.height > 0
    assert report["test_targets_of_cold_users"] == test.filter(~pl.col("user").is_in(learned["user"])).height
    assert report["test_targets_of_unseen_items"] == test.filter(~pl.col("item").is_in(learned["item"])).height
    if window == 3:  # late windows meet users who arrived after the first cut, and items launched since
        assert report["test_targets_of_cold_users"] > 0 and report["test_targets_of_unseen_items"] > 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test/count"] == report["test_targets"]


def report_entry(tmp_path):
    return json.loads((tmp_path / "run" / "data_report.json").read_text())["cache_entry"]


def windows_run(tmp_path, update, *extra):
    budget = ["update.epochs=1"] if update in ("finetune", "replay") else []
    code, err = train_in_process([*DRIFT, "split=time_window", "split.windows=3", "model=gru", f"update={update}",
                                  "trainer.max_epochs=2", *budget, *extra], tmp_path, run_dir=tmp_path / update,
                                 module="research.windows")
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / update / "windows.jsonl").read_text().splitlines()]
    metrics = json.loads((tmp_path / update / "metrics.json").read_text())
    return rows, metrics


def test_each_update_strategy_trains_what_its_policy_says_and_every_window_is_scored(tmp_path):
    runs = {update: windows_run(tmp_path, update) for update in ("frozen", "retrain", "finetune", "replay")}
    for rows, metrics in runs.values():
        assert [r["window"] for r in rows] == [0, 1, 2]
        assert [r["split"]["window"] for r in rows] == [0, 1, 2]
        assert metrics["test/ndcg@10"] == pytest.approx(sum(r["test/ndcg@10"] for r in rows) / 3)
        assert metrics["window/2/test/ndcg@10"] == rows[2]["test/ndcg@10"]
        assert rows[0]["update_targets"] == runs["retrain"][0][0]["update_targets"] > 0  # window 0: all the same
    frozen, retrain, finetune, replay = (runs[u][0] for u in ("frozen", "retrain", "finetune", "replay"))
    assert [r["update_targets"] for r in frozen[1:]] == [0, 0] and not (tmp_path / "frozen" / "windows" / "1").exists()
    for w in (1, 2):
        new_only, with_replay, everything = (r[w]["update_targets"] for r in (finetune, replay, retrain))
        assert 0 < new_only < with_replay < everything  # new events; plus a share of the past; all of it
        assert finetune[w]["time/update_epochs"] == 1 and retrain[w]["time/update_epochs"] >= 1
    assert frozen[1]["test/ndcg@10"] != retrain[1]["test/ndcg@10"]  # frozen scores the old weights


@pytest.mark.parametrize(("arguments", "module", "line"), [
    (["update=finetune"], "research.train", "error: update strategies follow drifting data window by window: "
                                            "run them with python -m research.windows"),
    (["update=finetune"], "research.windows", "error: research.windows needs split=time_window, not LeaveOneOut"),
    (["split=time_window"], "research.windows", "error: research.windows needs an update strategy: "
                                                "update=frozen, retrain, finetune or replay"),
])
def test_an_update_strategy_needs_the_windows_entry_and_a_time_window_split(tmp_path, capfd, arguments, module, line):
    code, lines = train_in_process(["model=gru", *arguments], tmp_path, capfd, module=module)
    assert code == 1 and lines[-1] == line
