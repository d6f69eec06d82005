"""Preprocessing in user ranges (bounded memory for huge logs) gives exactly what a naive
in-memory implementation gives, whatever the number of ranges; the fast and the careful reader
stage the same events; nothing is left behind."""

import numpy as np
import polars as pl
import pytest

from research.data import cache, pipeline
from research.data.builders.table import TableBuilder
from research.data.schema import BadInput
from research.data.simulator import simulate


def messy_log(seed: int = 0) -> pl.DataFrame:
    """A simulated log in shuffled source order, with exact duplicates (same event, later in the
    source), equal timestamps within users, and users below the minimum length."""
    rng = np.random.default_rng(seed)
    events = simulate(num_users=60, num_items=80, num_categories=5, mean_events=5, min_events=1, max_events=12,
                      seed=seed).events
    events = events.with_columns(pl.col("timestamp") // 50_000)  # many same-second events per user
    repeats = events.sample(n=40, seed=seed)
    events = pl.concat([events, repeats]).sample(fraction=1.0, shuffle=True, seed=seed)
    return events.with_columns(pl.Series("order", rng.permutation(events.height), dtype=pl.Int64))


def naive(events: pl.DataFrame, min_events: int) -> pl.DataFrame:
    """The textbook steps, eagerly and without tricks: first occurrence of each event, users with
    enough events, ids ranked by raw value, each item's most frequent category."""
    key = ["user_id", "item_id", "category_id", "timestamp", "behavior", "state"]
    events = events.sort("order").unique(subset=key, keep="first", maintain_order=True)
    events = events.filter(pl.len().over("user_id") >= min_events)
    top = (events.group_by("item_id", "category_id").len()
           .sort(["item_id", "len", "category_id"], descending=[False, True, False])
           .group_by("item_id", maintain_order=True).first())
    categories = top.select(pl.col("category_id").unique().sort()).with_row_index("category", offset=1)
    items = top.sort("item_id").with_row_index("item", offset=1).join(categories, on="category_id")
    out = (events.join(items.select("item_id", "item", "category"), on="item_id")
           .with_columns(pl.col("user_id").rank("dense").cast(pl.Int32) - 1,
                         pl.col("behavior").rank("dense").cast(pl.Int32)))
    out = out.join(categories.rename({"category_id": "state", "category": "state_dense"}), on="state", how="left")
    return out.select(pl.col("user_id").alias("user"), pl.col("item").cast(pl.Int32),
                      pl.col("category").cast(pl.Int32), "timestamp", "order", "behavior",
                      pl.col("state_dense").fill_null(0).cast(pl.Int32).alias("state")
                      ).sort(["user", "timestamp", "order"])


@pytest.mark.parametrize("rows_per_bucket", [10**9, 97, 5])
def test_preprocessing_in_user_ranges_equals_the_naive_in_memory_result(tmp_path, rows_per_bucket):
    log = messy_log()
    report, maps = pipeline.preprocess(log.lazy(), 3, tmp_path / "events.parquet", tmp_path / "work", "messy",
                                       rows_per_bucket=rows_per_bucket)
    got = pl.read_parquet(tmp_path / "events.parquet")
    expected = naive(log, 3)
    assert got.equals(expected)
    assert report["dropped_duplicates"] > 0 and report["dropped_short_users"] > 0
    assert report["raw_events"] - report["dropped_duplicates"] - report["dropped_short_user_events"] == got.height
    assert maps["user"].height == got["user"].n_unique()
    assert not (tmp_path / "work").exists() or not list((tmp_path / "work").glob("clean-*"))


def test_user_ranges_cover_every_user_once_in_order_without_splitting_one():
    counts = pl.DataFrame({"user_id": [3, 5, 8, 9, 12, 20], "len": [4, 1, 9, 2, 2, 3]})
    ranges = pipeline.user_ranges(counts, 5)
    # a user belongs to the bucket of its first event's position: 0, 4, 5 | 14 | 16 | 18, 20
    assert ranges == [(3, 5), (8, 8), (9, 9), (12, 20)]
    assert pipeline.user_ranges(counts, 1000) == [(3, 20)]


def write_taobao(path, rows):
    path.write_text("".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def taobao_builder(path, **kwargs):
    return TableBuilder(str(path), {"user_id": 0, "item_id": 1, "category_id": 2, "behavior": 3, "timestamp": 4},
                        has_header=False, behaviors=["pv", "buy", "cart", "fav"], **kwargs)


def test_the_fast_and_the_careful_reader_stage_the_same_events(tmp_path, monkeypatch):
    log = messy_log(1)
    rows = log.select("user_id", "item_id", "category_id", "behavior", "timestamp").rows()
    builder = taobao_builder(write_taobao(tmp_path / "log.csv", rows))
    (tmp_path / "fast").mkdir(), (tmp_path / "careful").mkdir()
    in_memory = builder.stage_fast(tmp_path / "fast" / "events.parquet").collect()
    monkeypatch.setattr("research.data.builders.table.IN_MEMORY_BYTES", 0)  # staged on disk
    on_disk = builder.stage_fast(tmp_path / "fast" / "events.parquet").collect()
    careful = pl.read_parquet(builder.stage_carefully(tmp_path / "careful"))
    assert in_memory.height == len(rows) and in_memory.equals(careful.select(in_memory.columns))
    assert on_disk.equals(in_memory) and (tmp_path / "fast" / "events.parquet").is_file()
    assert in_memory["order"].to_list() == list(range(len(rows)))


def test_the_careful_reader_names_a_bad_line_in_a_later_batch_and_padded_numbers_still_parse(tmp_path, monkeypatch):
    monkeypatch.setattr("research.data.builders.table.CAREFUL_BATCH_LINES", 2)
    good = [(1, 10, 100, "pv", 5), (1, 11, 100, "buy", 6), (2, 12, 101, "pv", 7), (2, 13, 101, "pv", 8)]
    path = write_taobao(tmp_path / "log.csv", [*good, (2, "x", 101, "pv", 9)])
    with pytest.raises(BadInput, match=r"log.csv: line 5, column item_id: 'x' is not an integer"):
        taobao_builder(path).load()
    # padded numbers defeat the fast reader; the careful one parses them, batch by batch
    path.write_text("".join(f" {u}, {i},{c},{b},{t}\n" for u, i, c, b, t in good))
    events = taobao_builder(path).load().events
    assert events["item_id"].to_list() == [10, 11, 12, 13] and events["order"].to_list() == [0, 1, 2, 3]


def test_a_build_in_many_user_ranges_equals_one_in_memory_and_leaves_no_scratch(tmp_path, monkeypatch):
    log = messy_log(2)
    rows = log.select("user_id", "item_id", "category_id", "behavior", "timestamp").rows()
    path = write_taobao(tmp_path / "log.csv", rows)
    one = cache.ensure_built(taobao_builder(path), tmp_path / "one")
    monkeypatch.setattr(pipeline, "ROWS_PER_BUCKET", 7)
    monkeypatch.setattr("research.data.builders.table.IN_MEMORY_BYTES", 0)  # the large-file path throughout
    many = cache.ensure_built(taobao_builder(path), tmp_path / "many")
    for name in ("events", "items", "categories", "users", "behaviors"):
        assert pl.read_parquet(one / f"{name}.parquet").equals(pl.read_parquet(many / f"{name}.parquet")), name
    assert sorted(p.name for p in many.iterdir()) == sorted(p.name for p in one.iterdir())  # no .staging, .work
