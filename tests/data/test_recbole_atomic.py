"""RecBole atomic files read as they are: the .inter header's field:type names, text ids, whole
seconds or the file order as the time, categories from the .item file or one stated fallback,
and every malformed file stopped with its path and line."""

import polars as pl
import pytest

from research.data.builders.recbole_atomic import NO_CATEGORY, RecBoleAtomicBuilder
from research.data.schema import BadInput

INTER = ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
         "u1\ti1\t5.0\t978300760.0\nu1\ti2\t3.0\t978300761\nu2\ti3\t4.0\t978300100.0\n")
ITEM = "item_id:token\tmovie_title:token_seq\tclass:token_seq\ni1\tA film\tDrama War\ni2\tB film\tComedy\n"


def write(tmp_path, inter=INTER, item=ITEM):
    (tmp_path / "toy.inter").write_text(inter)
    if item is not None:
        (tmp_path / "toy.item").write_text(item)
    return RecBoleAtomicBuilder(str(tmp_path), "toy")


def test_events_keep_text_ids_whole_seconds_and_the_first_category_token(tmp_path):
    log = write(tmp_path).load()
    assert log.events.to_dicts() == [
        {"user_id": "u1", "item_id": "i1", "category_id": "Drama", "timestamp": 978300760, "order": 0},
        {"user_id": "u1", "item_id": "i2", "category_id": "Comedy", "timestamp": 978300761, "order": 1},
        {"user_id": "u2", "item_id": "i3", "category_id": NO_CATEGORY, "timestamp": 978300100, "order": 2}]
    assert log.info["items_without_category"] == 1  # i3 is not in toy.item: counted, not dropped
    assert log.info["category"] == "first token of class in toy.item"


def test_without_a_time_field_the_file_order_is_the_time(tmp_path):
    log = write(tmp_path, "user_id:token\titem_id:token\nu1\ti2\nu1\ti1\nu2\ti1\n").load()
    assert log.events["timestamp"].to_list() == [2, 3, 4] and log.info["time"] == "file order"  # line numbers


def test_without_an_item_file_every_item_is_in_one_stated_category(tmp_path):
    log = write(tmp_path, item=None).load()
    assert log.events["category_id"].unique().to_list() == [NO_CATEGORY]
    assert "toy.item absent" in log.info["category"]


def test_a_named_category_field_is_used_and_a_missing_one_refused(tmp_path):
    write(tmp_path)
    log = RecBoleAtomicBuilder(str(tmp_path), "toy", category_field="movie_title").load()
    assert log.events.filter(pl.col("item_id") == "i1")["category_id"].to_list() == ["A"]
    with pytest.raises(BadInput, match=r"toy.item: no field 'genre' \(data.builder.category_field\)"):
        RecBoleAtomicBuilder(str(tmp_path), "toy", category_field="genre").load()


@pytest.mark.parametrize(("inter", "item", "message"), [
    (INTER.replace("978300761", "978300761.5"), ITEM,
     r"toy.inter: line 3, field timestamp: '978300761.5' is not a whole number of seconds \(1 such lines\)"),
    (INTER.replace("u2\ti3", "u2\t "), ITEM, r"toy.inter: line 4: empty user or item id"),
    (INTER.replace("user_id:token", "user_id"), ITEM, r"toy.inter: line 1: header field\(s\) \['user_id'\] have no"),
    (INTER.replace("user_id:token", "uid:token"), ITEM, r"toy.inter: no field 'user_id' \(data.builder.user_field\)"),
    (INTER.replace("rating:float", "item_id:float"), ITEM, r"toy.inter: line 1: column\(s\) \['item_id'\] appear"),
    (INTER + "u3\ti1\n", ITEM, r"toy.inter: line 5: 2 fields, expected 4"),
    ("user_id:token\titem_id:token\n", ITEM, r"toy.inter: empty file"),
    (INTER, ITEM + "i1\tAgain\tWar\n", r"toy.item: item 'i1' is listed more than once"),
])
def test_a_malformed_file_stops_with_its_path_and_line(tmp_path, inter, item, message):
    with pytest.raises(BadInput, match=message):
        write(tmp_path, inter, item).load()


def test_a_missing_inter_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"toy.inter: not found \(data.root="):
        RecBoleAtomicBuilder(str(tmp_path), "toy")
