"""split=time_window on a drifting simulator, through research.train: the run learns from the
events before its window, is tested on the window, and reports how many targets belong to users
and items it never learnt from (checked against a count made here from the cached events)."""

import json

import polars as pl
import pytest

from tests.conftest import train_in_process

DRIFT = ["data=synthetic_drift", "data.builder.num_users=150", "data.builder.num_items=80", "data.builder.mean_events=20",
         "data.builder.campaigns=1"]


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
