"""split=time_window, through the entry points: a run learns from the events before its window,
is tested on the window, and reports how many targets belong to users and items it never learnt
from (checked against a count made here from the cached events); under every update strategy of
research.windows no event at or after a window's start reaches the batches of its update, on a
MovieLens log in GroupLens's and in RecBole's layout."""

import json
from unittest import mock

import numpy as np
import polars as pl
import pytest
import torch

from research.module import SequenceRecModule
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


# A timestamped log as a user brings it: MovieLens ratings, in GroupLens's ml-100k layout
# (u.data/u.item) and in RecBole's atomic files (the ml-100k copy RecBole's package ships; the
# spec experiments/drift_movielens.yaml runs on that copy). Every item belongs to the period its
# events fall in (item id // 100: 0 before t_0, i + 1 in window i), so a batch shows by its items
# alone which periods reached it.
CUTS = [881_251_000, 881_252_000, 881_253_000, 881_254_000]  # 3 windows: split.cut_times


def movielens_log(users: int = 40, per_user: int = 24, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(1, users + 1), per_user)
    start = rng.integers(CUTS[0] - 1_500, CUTS[-1] - 1_500, users)  # users arrive over time
    time = np.sort(start[user - 1].reshape(users, per_user)
                   + rng.integers(0, 1_500, (users, per_user)), axis=1).ravel()
    period = np.searchsorted(CUTS, time, side="right")
    log = pl.DataFrame({"user": user, "item": 100 * period + rng.integers(1, 30, user.size), "time": time})
    return log.unique(["user", "item"], keep="first", maintain_order=True)  # one rating per user and movie


def write_grouplens(log: pl.DataFrame, root):
    root.mkdir(parents=True)
    log.select("user", "item", pl.lit(4).alias("rating"), "time").write_csv(
        root / "u.data", separator="\t", include_header=False)
    items = sorted(set(log["item"].to_list()))
    flags = lambda item: "|".join("1" if g == item % 19 else "0" for g in range(19))  # noqa: E731
    (root / "u.item").write_text("".join(f"{i}|Movie {i} (1997)|01-Jan-1997||http://x|{flags(i)}\n" for i in items))
    return ["data=movielens", f"data.root={root}"]


def write_recbole(log: pl.DataFrame, root):
    root.mkdir(parents=True)
    log.select(pl.col("user").alias("user_id:token"), pl.col("item").alias("item_id:token"),
               pl.lit(4.0).alias("rating:float"), pl.col("time").cast(pl.Float64).alias("timestamp:float")) \
        .write_csv(root / "ml-100k.inter", separator="\t")
    items = sorted(set(log["item"].to_list()))
    (root / "ml-100k.item").write_text("item_id:token\tclass:token_seq\n"
                                       + "".join(f"{i}\tGenre{i % 19} Drama\n" for i in items))
    return ["data=recbole", f"data.root={root}", "data.name=ml-100k"]


def periods_seen(tmp_path, update: str, data: list[str]) -> tuple[dict, list[dict]]:
    """Run research.windows under `update` and record, for each window's update, the periods of
    every item its training and validation batches held (history and targets)."""
    seen = {}
    original_train, original_val = SequenceRecModule.training_step, SequenceRecModule.validation_step

    def record(module, *tensors):
        datamodule = module.trainer.datamodule
        ids = torch.cat([t.flatten() for t in tensors])
        periods = items_raw(datamodule)[ids[ids > 0]] // 100
        seen.setdefault(datamodule.split.counts["window"], set()).update(periods.tolist())

    def training_step(self, batch, batch_idx):
        record(self, batch["items"], batch["target_items"])
        return original_train(self, batch, batch_idx)

    def validation_step(self, batch, batch_idx):  # during fit only: the test pass has its own step
        record(self, batch["history"][1], batch["target_item"])  # history: (row, item) pairs
        return original_val(self, batch, batch_idx)

    budget = ["update.epochs=1"] if update in ("finetune", "replay") else []
    with mock.patch.object(SequenceRecModule, "training_step", training_step), \
            mock.patch.object(SequenceRecModule, "validation_step", validation_step):
        code, err = train_in_process([*data, "split=time_window", f"split.cut_times={CUTS}", "model=gru",
                                      "task=next_item", f"update={update}", "trainer.max_epochs=2", *budget],
                                     tmp_path, run_dir=tmp_path / update, module="research.windows")
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / update / "windows.jsonl").read_text().splitlines()]
    return seen, rows


def items_raw(datamodule) -> torch.Tensor:
    """dense item id -> the id in the file (0: padding)."""
    items = datamodule.data.items
    raw = torch.zeros(datamodule.meta.num_items + 1, dtype=torch.long)
    raw[torch.tensor(items["dense"].to_list())] = torch.tensor(items["raw"].cast(pl.Int64).to_list())
    return raw


@pytest.mark.parametrize("update", ["frozen", "retrain", "finetune", "replay"])
def test_no_event_at_or_after_a_windows_start_reaches_its_update_under_any_strategy(tmp_path, update):
    log = movielens_log()
    seen, rows = periods_seen(tmp_path, update, write_recbole(log, tmp_path / "ml-100k"))
    trained = [0] if update == "frozen" else [0, 1, 2]
    assert sorted(seen) == trained  # the windows whose update trained (frozen: window 0 only)
    for window in trained:  # window i learns from periods 0 .. i (the events before t_i), and sees them all
        assert seen[window] == set(range(window + 1)), (window, seen[window])
    # each window tests its own events, each with an earlier event of the same user
    per_user = log.with_columns(pl.int_range(pl.len()).over("user").alias("position"))
    for row, (start, end) in zip(rows, zip(CUTS, CUTS[1:])):
        expected = per_user.filter((pl.col("time") >= start) & (pl.col("time") < end) & (pl.col("position") >= 1))
        assert row["split"]["test_targets"] == row["test/count"] == expected.height > 0


def test_grouplens_and_recbole_copies_of_a_movielens_log_give_the_same_windows(tmp_path):
    log = movielens_log(seed=1)
    runs = [periods_seen(tmp_path / fmt, "frozen", write(log, tmp_path / fmt / "ml-100k"))[1]
            for fmt, write in (("grouplens", write_grouplens), ("recbole", write_recbole))]
    assert [r["split"] for r in runs[0]] == [r["split"] for r in runs[1]]
