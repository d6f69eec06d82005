"""The Amazon S3-Rec builder on tiny fixture files, and (when present) on the real Beauty data."""

import json

import polars as pl
import pytest
import torch

from research.data import cache
from research.data.builders.amazon_s3rec import NO_CATEGORY, AmazonS3RecBuilder, item_categories, read_sequences
from research.data.schema import BadInput
from tests.conftest import BEAUTY, requires_beauty

# user, then items in chronological order; user 4 has a non-numeric token at position 1
SEQUENCES = "1 1 2 3 4\n2 2 3 5 6 1\n3 6 5 4 3\n4 1 x 2 3\n"

# 5 catalogue items (item 6 is missing from the file). Coverage over 5 items, max 0.5:
#   100: 5/5 and 5: 3/5 are dropped; 7 and 3: 2/5 each; 1, 2, 8, 9: 1/5 each.
ATTRIBUTES = {
    "1": [100, 7, 3],  # 7 and 3 tie on frequency -> 3 (smallest id)
    "2": [100, 9, 7, 1],  # 7 is the most frequent (beats the smaller ids 1 and 9)
    "3": [100, 3, 5],  # 5 would be more frequent but covers too much -> 3
    "4": [100, 5],  # only too-common attributes -> no category
    "5": [100, 5, 8, 2],  # 8 and 2 tie -> 2
}
EXPECTED_CATEGORY = {1: 3, 2: 7, 3: 3, 4: NO_CATEGORY, 5: 2, 6: NO_CATEGORY}


@pytest.fixture
def toy_root(tmp_path):
    root = tmp_path / "amazon"
    root.mkdir()
    (root / "Toy.txt").write_text(SEQUENCES)
    (root / "Toy_item2attributes.json").write_text(json.dumps(ATTRIBUTES))
    return root


def test_read_sequences_gives_one_row_per_event_timed_by_position(toy_root):
    events = read_sequences(toy_root / "Toy.txt")
    assert events.height == 4 + 5 + 4 + 4
    assert events["order"].to_list() == list(range(events.height))
    for line in SEQUENCES.splitlines():
        user, *items = line.split()
        rows = events.filter(pl.col("user_id") == int(user))
        assert rows["timestamp"].to_list() == list(range(len(items)))
        assert rows["item_id"].to_list() == [int(i) if i.isdigit() else None for i in items]


def test_category_rule_takes_the_most_frequent_attribute_below_the_coverage_limit(toy_root):
    categories, info = item_categories(toy_root / "Toy_item2attributes.json", 0.5)
    got = dict(zip(categories["item_id"].to_list(), categories["category_id"].to_list()))
    assert got == {i: c for i, c in EXPECTED_CATEGORY.items() if c != NO_CATEGORY}
    assert info["attributes_dropped_for_coverage"] == 2
    assert info["categories"] == 3


def test_a_higher_coverage_limit_keeps_the_common_attribute(toy_root):
    categories, info = item_categories(toy_root / "Toy_item2attributes.json", 1.0)
    assert set(categories["category_id"].to_list()) == {100}
    assert info["attributes_dropped_for_coverage"] == 0


def test_load_labels_every_event_and_marks_items_without_a_category(toy_root):
    (toy_root / "Toy.txt").write_text(SEQUENCES.replace(" x ", " 5 "))  # only well-formed tokens
    raw = AmazonS3RecBuilder(str(toy_root), name="Toy").load()
    assert raw.events.null_count().sum_horizontal().item() == 0
    for r in raw.events.iter_rows(named=True):
        assert r["category_id"] == EXPECTED_CATEGORY[r["item_id"]]
    assert raw.info["items_without_category"] == 2  # items 4 and 6


def test_a_malformed_token_is_not_counted_as_an_item_without_category(toy_root):
    raw = AmazonS3RecBuilder(str(toy_root), name="Toy").load()
    assert raw.info["items_without_category"] == 2  # items 4 and 6; the "x" token is no item


def test_build_counts_the_non_numeric_token_as_malformed(toy_root, tmp_path):
    builder = AmazonS3RecBuilder(str(toy_root), name="Toy")
    data = cache.load_or_build(builder, tmp_path / "cache", min_user_events=3)
    report = data.meta["report"]
    assert report["raw_events"] == 17
    assert report["dropped_malformed"] == 1
    assert report["dropped_duplicates"] == 0
    assert report["dropped_short_users"] == 0
    assert report["events"] == data.events.height == 16
    assert data.meta["num_users"] == 4
    assert data.meta["num_items"] == 6
    # categories: the three kept attributes plus "no category"
    assert sorted(data.categories["raw"].to_list()) == [NO_CATEGORY, 2, 3, 7]
    dense = dict(zip(data.categories["raw"], data.categories["dense"]))
    assert {r["raw"]: r["category"] for r in data.items.iter_rows(named=True)} == {
        i: dense[c] for i, c in EXPECTED_CATEGORY.items()}
    # the user with the bad token keeps the rest of the line in order
    users = dict(zip(data.users["raw"], data.users["dense"]))
    items = dict(zip(data.items["dense"], data.items["raw"]))
    user4 = data.events.filter(pl.col("user") == users[4])
    assert [items[i] for i in user4["item"]] == [1, 2, 3]


def test_a_missing_file_is_named(tmp_path):
    (tmp_path / "Toy.txt").write_text(SEQUENCES)
    with pytest.raises(FileNotFoundError, match="Toy_item2attributes.json"):
        AmazonS3RecBuilder(str(tmp_path), name="Toy")
    with pytest.raises(FileNotFoundError, match="Other.txt"):
        AmazonS3RecBuilder(str(tmp_path), name="Other")


def test_invalid_json_is_a_value_error_naming_the_file(toy_root, tmp_path):
    (toy_root / "Toy_item2attributes.json").write_text('{"1": [1, 2], "2": [3')
    builder = AmazonS3RecBuilder(str(toy_root), name="Toy")
    with pytest.raises(ValueError, match="Toy_item2attributes.json"):
        builder.load()
    with pytest.raises(ValueError, match="Toy_item2attributes.json"):
        cache.load_or_build(builder, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize(("sequences", "attributes", "message"), [
    (b"", None, r"Toy.txt: empty file"),
    (b"1 1 2 3\n2 2 \xe9 3\n", None, r"Toy.txt: line 2: not UTF-8 text"),
    (None, b"{}", r"Toy_item2attributes.json: gives no item of Toy.txt a category"),
    (None, b"[1, 2]", r"Toy_item2attributes.json: expected a JSON object .* found a list"),
    (None, b'{"1": [3], "a": [1]}', r"Toy_item2attributes.json: entry 'a': \[1\] \(1 such entries\)"),
    (None, b'{"1": "x", "2": [1]}', r"Toy_item2attributes.json: entry '1': \"x\""),
    (None, b'{"1": [3],\n "\xe9": [1]}', r"Toy_item2attributes.json: line 2: not UTF-8 text"),
])
def test_a_bad_file_is_one_bad_input_naming_it_and_leaves_no_cache(toy_root, tmp_path, sequences, attributes, message):
    if sequences is not None:
        (toy_root / "Toy.txt").write_bytes(sequences)
    if attributes is not None:
        (toy_root / "Toy_item2attributes.json").write_bytes(attributes)
    with pytest.raises(BadInput, match=message):
        cache.load_or_build(AmazonS3RecBuilder(str(toy_root), name="Toy"), tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_tabs_and_repeated_spaces_separate_tokens(toy_root):
    (toy_root / "Toy.txt").write_text("1\t1\t2  3\n")
    assert read_sequences(toy_root / "Toy.txt")["item_id"].to_list() == [1, 2, 3]


def test_the_fingerprint_follows_the_file_contents(toy_root):
    before = AmazonS3RecBuilder(str(toy_root), name="Toy").fingerprint()
    (toy_root / "Toy.txt").write_text(SEQUENCES + "5 1 2 3\n")
    after = AmazonS3RecBuilder(str(toy_root), name="Toy").fingerprint()
    assert before["sequences"] != after["sequences"]
    assert before["attributes"] == after["attributes"]


# --- the real Beauty data ----------------------------------------------------------------------

BEAUTY_USERS, BEAUTY_ITEMS, BEAUTY_EVENTS, BEAUTY_CATEGORIES = 22_363, 12_101, 198_502, 7


@pytest.fixture(scope="module")
def beauty_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("beauty-cache")


@requires_beauty
def test_real_beauty_builds_to_the_published_statistics(beauty_cache):
    data = cache.load_or_build(AmazonS3RecBuilder(str(BEAUTY)), beauty_cache, min_user_events=5)
    meta = data.meta
    assert meta["num_users"] == BEAUTY_USERS
    assert meta["num_items"] == BEAUTY_ITEMS
    assert data.events.height == BEAUTY_EVENTS
    assert meta["num_categories"] == BEAUTY_CATEGORIES
    assert meta["info"]["items_without_category"] == 0
    report = meta["report"]
    assert report["raw_events"] == BEAUTY_EVENTS
    for key in ("dropped_malformed", "dropped_duplicates", "dropped_short_users", "dropped_short_user_events"):
        assert report[key] == 0, key
    assert data.events.group_by("user").len()["len"].min() >= 5


@requires_beauty
def test_real_beauty_leave_one_out_counts_only_training_targets(beauty_cache):
    from research.data.datamodule import SequenceDataModule
    from research.tasks import NextEvent

    dm = SequenceDataModule(AmazonS3RecBuilder(str(BEAUTY)), NextEvent("next_item", "val/ndcg@10"),
                            cache_dir=str(beauty_cache))
    dm.setup()
    lengths = dm.store.lengths
    assert lengths.numel() == BEAUTY_USERS
    for targets in (dm.split.val, dm.split.test):
        assert targets.shape == (BEAUTY_USERS, 2)
        assert torch.equal(targets[:, 0].sort().values, torch.arange(BEAUTY_USERS))
    assert len(dm.val_set) == len(dm.test_set) == BEAUTY_USERS

    meta = dm.meta
    train_targets = int((lengths - 3).sum())
    assert int(meta.train_item_counts.sum()) == train_targets
    assert int(meta.train_category_counts.sum()) == train_targets
    assert int(meta.train_item_counts[0]) == 0 and int(meta.train_category_counts[0]) == 0

    # independent count: per user, positions 1 .. len-3 (not the first event, not val/test)
    events = dm.data.events.sort(["user", "timestamp", "order"]).with_columns(
        pl.int_range(0, pl.len()).over("user").alias("pos"), pl.len().over("user").alias("n"))
    train = events.filter((pl.col("pos") >= 1) & (pl.col("pos") <= pl.col("n") - 3))
    expected = torch.bincount(torch.from_numpy(train["item"].cast(pl.Int64).to_numpy().copy()),
                              minlength=meta.num_items + 1)
    assert torch.equal(meta.train_item_counts, expected)
    # and the validation / test targets are not in it
    held_out = events.filter(pl.col("pos") >= pl.col("n") - 2)["item"].cast(pl.Int64).to_numpy().copy()
    everything = torch.bincount(torch.from_numpy(events.filter(pl.col("pos") >= 1)["item"].cast(pl.Int64)
                                                 .to_numpy().copy()), minlength=meta.num_items + 1)
    assert torch.equal(everything - meta.train_item_counts,
                       torch.bincount(torch.from_numpy(held_out), minlength=meta.num_items + 1))
    assert meta.item_category.shape == (BEAUTY_ITEMS + 1,)
    assert int(meta.item_category[0]) == 0 and int(meta.item_category[1:].min()) >= 1
