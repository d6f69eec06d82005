"""The polars preprocessing steps: what is dropped (and reported), and how ids are densified."""

import random

import polars as pl
import pytest

from research.data import transforms


def frame(rows: list[tuple], with_behavior: bool = False) -> pl.DataFrame:
    """rows: (user, item, category, timestamp, order[, behavior])."""
    columns = ["user_id", "item_id", "category_id", "timestamp", "order"] + (["behavior"] if with_behavior else [])
    schema = {"user_id": pl.Int64, "item_id": pl.Int64, "category_id": pl.Int64, "timestamp": pl.Int64,
              "order": pl.Int64}
    if with_behavior:
        schema["behavior"] = pl.Utf8
    return pl.DataFrame([dict(zip(columns, r)) for r in rows], schema=schema)


# --- clean -------------------------------------------------------------------------------------


def test_clean_drops_rows_with_a_missing_field_and_counts_them():
    events = frame([
        (1, 10, 5, 0, 0),
        (None, 11, 5, 1, 1),  # no user
        (1, None, 5, 2, 2),  # no item
        (1, 12, None, 3, 3),  # no category
        (1, 13, 5, None, 4),  # no timestamp
        (2, 10, 5, 0, 5),
    ])
    report = {}
    out = transforms.clean(events, report)
    assert report["dropped_malformed"] == 4
    assert report["dropped_duplicates"] == 0
    assert sorted(out["order"].to_list()) == [0, 5]
    assert out.null_count().sum_horizontal().item() == 0


def test_clean_drops_exact_duplicates_keeping_the_first_in_source_order():
    # rows are listed out of source order on purpose: "first" means smallest `order`
    events = frame([
        (1, 10, 5, 7, 4, "pv"),
        (1, 10, 5, 7, 1, "pv"),  # same event as order 4 (and 6): the one kept
        (1, 10, 5, 7, 2, "buy"),  # other behaviour: not a duplicate
        (1, 10, 5, 8, 3, "pv"),  # other timestamp: not a duplicate
        (1, 10, 5, 7, 6, "pv"),
        (2, 10, 5, 7, 0, "pv"),  # other user: not a duplicate
    ], with_behavior=True)
    report = {}
    out = transforms.clean(events, report)
    assert report["dropped_malformed"] == 0
    assert report["dropped_duplicates"] == 2
    assert sorted(out["order"].to_list()) == [0, 1, 2, 3]


def test_clean_keeps_a_row_whose_only_difference_is_the_category():
    events = frame([(1, 10, 5, 0, 0), (1, 10, 6, 0, 1)])
    report = {}
    out = transforms.clean(events, report)
    assert report["dropped_duplicates"] == 0
    assert out.height == 2


# --- filter_short_users ------------------------------------------------------------------------


def test_filter_short_users_removes_users_below_the_minimum_and_reports_them():
    lengths = {1: 5, 2: 2, 3: 3, 4: 1, 5: 4}
    rows, order = [], 0
    for user, n in lengths.items():
        for t in range(n):
            rows.append((user, 100 + t, 1, t, order))
            order += 1
    report = {}
    out = transforms.filter_short_users(frame(rows), 3, report)
    assert sorted(out["user_id"].unique().to_list()) == [1, 3, 5]
    assert report["dropped_short_users"] == 2
    assert report["dropped_short_user_events"] == 2 + 1
    assert out.height == 5 + 3 + 4
    # survivors keep all their events
    assert out.group_by("user_id").len().sort("user_id")["len"].to_list() == [5, 3, 4]


def test_filter_short_users_with_everyone_long_enough_drops_nothing():
    rows = [(u, 10 + t, 1, t, 3 * u + t) for u in range(4) for t in range(3)]
    report = {}
    out = transforms.filter_short_users(frame(rows), 3, report)
    assert out.height == 12
    assert report["dropped_short_users"] == 0
    assert report["dropped_short_user_events"] == 0


# --- densify -----------------------------------------------------------------------------------


def test_densify_maps_ids_to_dense_ranges_with_zero_free_for_padding():
    rows = [
        ("u9", 500, 70, 0, 0, "pv"), ("u9", 300, 40, 1, 1, "buy"), ("u9", 900, 40, 2, 2, "cart"),
        ("a1", 300, 40, 0, 3, "pv"), ("a1", 700, 90, 1, 4, "pv"), ("a1", 500, 70, 2, 5, "pv"),
        ("m5", 900, 40, 0, 6, "fav"), ("m5", 700, 90, 3, 7, "pv"),
    ]
    events = pl.DataFrame(rows, schema=["user_id", "item_id", "category_id", "timestamp", "order", "behavior"],
                          orient="row")
    out, maps = transforms.densify(events)
    assert out.height == events.height
    assert sorted(out["user"].unique().to_list()) == [0, 1, 2]
    assert sorted(out["item"].unique().to_list()) == [1, 2, 3, 4]
    assert sorted(out["category"].unique().to_list()) == [1, 2, 3]
    assert sorted(out["behavior"].unique().to_list()) == [1, 2, 3, 4]
    for column in ("item", "category", "behavior"):
        assert out[column].min() >= 1
    # the maps are consistent with the events: raw -> dense round-trips every row
    users = dict(zip(maps["user"]["raw"], maps["user"]["dense"]))
    items = dict(zip(maps["item"]["raw"], maps["item"]["dense"]))
    behaviors = dict(zip(maps["behavior"]["raw"], maps["behavior"]["dense"]))
    by_order = {r["order"]: r for r in out.iter_rows(named=True)}
    for user, item, _, _, order, behavior in rows:
        assert by_order[order]["user"] == users[user]
        assert by_order[order]["item"] == items[item]
        assert by_order[order]["behavior"] == behaviors[behavior]
    # dense ids follow the sorted raw ids (deterministic for a given set of ids)
    assert maps["item"].sort("dense")["raw"].to_list() == [300, 500, 700, 900]
    assert maps["user"].sort("dense")["raw"].to_list() == ["a1", "m5", "u9"]


def test_densify_sorts_by_user_then_time_breaking_timestamp_ties_by_order():
    rows = []
    order = 0
    items = list(range(10, 28))
    random.Random(123).shuffle(items)  # item ids unrelated to `order` (a join may sort by item)
    for user in (2, 1):
        for t in (0, 0, 0, 1, 1, 5, 5, 5, 5):  # many equal timestamps
            rows.append((user, items[order], 1, t, order))
            order += 1
    expected = None
    for seed in range(5):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        out, _ = transforms.densify(frame(shuffled))
        keys = list(zip(out["user"], out["timestamp"], out["order"]))
        assert keys == sorted(keys)
        if expected is None:
            expected = out
        assert out.equals(expected)  # same output whatever the input row order
    # within user 1 (dense 0), equal timestamps appear in increasing `order`
    user0 = expected.filter(pl.col("user") == 0)
    assert user0["order"].to_list() == list(range(9, 18))


def test_densify_gives_each_item_its_most_frequent_category_ties_to_smallest_raw_id():
    rows = [
        # item 10: category 7 twice, 3 once -> 7 (frequency beats the smaller id)
        (1, 10, 7, 0), (2, 10, 7, 0), (3, 10, 3, 0),
        # item 20: categories 9 and 4 once each -> 4 (tie: smallest raw id), listed 9 first
        (1, 20, 9, 1), (2, 20, 4, 1),
        # item 30: only category 9
        (1, 30, 9, 2), (2, 30, 9, 2),
    ]
    events = frame([(*r, i) for i, r in enumerate(rows)])
    out, maps = transforms.densify(events)
    categories = dict(zip(maps["category"]["raw"], maps["category"]["dense"]))
    items = {r["raw"]: r["category"] for r in maps["item"].iter_rows(named=True)}
    assert items == {10: categories[7], 20: categories[4], 30: categories[9]}
    assert maps["item"].height == 3
    # every event carries its item's category
    item_dense = dict(zip(maps["item"]["raw"], maps["item"]["dense"]))
    for raw_item, cat in items.items():
        assert set(out.filter(pl.col("item") == item_dense[raw_item])["category"].to_list()) == {cat}


def test_densify_maps_state_through_the_category_table():
    # states use only some of the categories, so a separate id table for states would give
    # other ids ("sports" is category 2 of books/sports/toys but would be state 1 of sports/toys)
    rows = [
        (0, 1, "sports", 0, 0, "toys"),
        (0, 2, "toys", 1, 1, "sports"),
        (0, 3, "books", 2, 2, "sports"),
        (1, 1, "sports", 0, 3, "toys"),
        (1, 3, "books", 1, 4, "sports"),
    ]
    events = pl.DataFrame(rows, schema=["user_id", "item_id", "category_id", "timestamp", "order", "state"],
                          orient="row")
    out, maps = transforms.densify(events)
    categories = dict(zip(maps["category"]["raw"], maps["category"]["dense"]))
    assert set(categories) == {"books", "sports", "toys"}
    state_of = {order: state for *_, order, state in rows}
    for r in out.iter_rows(named=True):
        assert r["state"] == categories[state_of[r["order"]]]
    assert out["state"].min() >= 1


# --- check_columns -----------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["user_id", "item_id", "category_id", "timestamp", "order"])
def test_check_columns_names_the_missing_column(column):
    events = frame([(1, 10, 5, 0, 0)]).drop(column)
    with pytest.raises(ValueError) as err:
        transforms.check_columns(events, "toy-source")
    message = str(err.value)
    assert "toy-source" in message
    # the part before the list of expected columns names exactly the missing one
    missing_part = message.split("expected")[0]
    assert column in missing_part
    assert all(c not in missing_part for c in ("user_id", "item_id", "category_id", "timestamp", "order")
               if c != column and c not in column)


def test_check_columns_rejects_an_empty_frame():
    with pytest.raises(ValueError, match="no events"):
        transforms.check_columns(frame([]), "toy-source")


def test_check_columns_accepts_a_complete_frame():
    transforms.check_columns(frame([(1, 10, 5, 0, 0)]), "toy-source")  # no error


@pytest.mark.parametrize("dtype", [pl.Int32, pl.UInt32, pl.Int64, pl.Utf8])
def test_pair_counts_are_exact_for_any_id_type(dtype):
    items = [3_000_000, 3_000_000, 7, 3_000_000, 2_000_000_000]
    cats = [4_000_000, 1, 1, 4_000_000, 0]
    events = pl.DataFrame({"item_id": items, "category_id": cats}).cast(dtype)
    got = transforms.pair_counts(events).sort("item_id", "category_id")
    expected = events.group_by("item_id", "category_id").len().sort("item_id", "category_id")
    assert got.equals(expected) and got["len"].sum() == 5
