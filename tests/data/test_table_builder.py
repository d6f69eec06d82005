"""Taobao-format and generic table logs: parsed, filtered by time range with a count, and every
kind of bad input stopped with one line naming the file, line and column."""

import gzip

import polars as pl
import pytest
from hydra.utils import instantiate

from research.data import cache
from research.data.builders.table import TableBuilder
from research.data.schema import BadInput
from tests.conftest import train_in_process

DAY = 1_511_539_200  # 2017-11-24T16:00:00Z, the first second of the Taobao file's range
ROWS = [(1, 10, 100, "pv", DAY + 5), (1, 11, 100, "cart", DAY + 9), (1, 12, 101, "buy", DAY + 20),
        (2, 10, 100, "pv", DAY + 3), (2, 13, 102, "fav", DAY + 4), (2, 12, 101, "pv", DAY + 30),
        (2, 14, 102, "pv", DAY - 86_400)]  # the last one is a stray row before the range


def write(path, rows, header=None):
    lines = ([header] if header else []) + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def taobao(make_cfg, root):
    return instantiate(make_cfg("data=taobao", f"data.root={root}").data.builder)


def test_taobao_rows_are_parsed_and_strays_dropped_with_a_count(make_cfg, tmp_path):
    write(tmp_path / "UserBehavior.csv", ROWS)
    raw = taobao(make_cfg, tmp_path).load()
    assert raw.info["dropped_outside_time_range"] == 1
    assert raw.events.height == 6 and raw.events["behavior"].to_list()[:3] == ["pv", "cart", "buy"]
    data = cache.load_or_build(taobao(make_cfg, tmp_path), tmp_path / "cache", min_user_events=3)
    assert data.meta["num_users"] == 2 and data.meta["num_behaviors"] == 4


def test_a_table_with_a_header_and_text_ids(tmp_path):
    path = write(tmp_path / "log.csv", [("u1", "i1", "c1", 5), ("u1", "i2", "c2", 6)], header="uid,iid,cid,ts")
    builder = TableBuilder(str(path), {"user_id": "uid", "item_id": "iid", "category_id": "cid", "timestamp": "ts"},
                           string_ids=True)
    assert builder.load().events["item_id"].to_list() == ["i1", "i2"]
    with pytest.raises(BadInput, match=r"line 2, column user_id: 'u1' is not an integer"):
        TableBuilder(str(path), {"user_id": "uid", "item_id": "iid", "category_id": "cid", "timestamp": "ts"}).load()


@pytest.mark.parametrize(("content", "message"), [
    ("", r"UserBehavior.csv: empty file \(no events\)"),
    ("1,10,100,pv,1511539205\n1,11,100,pv\n", r"UserBehavior.csv: line 2: 4 fields, expected 5"),
    ("1,10,100,pv,1511539205\n\n1,11,100,pv,1511539206\n", r"UserBehavior.csv: line 2: 0 fields, expected 5"),
    ("1,10,100,pv,1511539205\n1,x7,100,pv,1511539206\n", r"line 2, column item_id: 'x7' is not an integer"),
    ("1,10,100,pv,2017-11-25\n", r"line 1, column timestamp: '2017-11-25' is not an integer"),
    ("1,10,100,pv,1511539205\n1,11,100,like,1511539206\n",
     r"line 2, column behavior: unknown type 'like' \(expected one of \['pv', 'buy', 'cart', 'fav'\]"),
])
def test_bad_taobao_files_fail_with_one_line_naming_file_line_and_column(make_cfg, tmp_path, content, message):
    (tmp_path / "UserBehavior.csv").write_text(content)
    with pytest.raises(BadInput, match=message):
        taobao(make_cfg, tmp_path).load()


def test_bytes_that_are_not_utf8_and_a_cut_short_gzip_are_named(tmp_path):
    columns = COLUMNS
    path = tmp_path / "log.csv"
    path.write_bytes(b"u,i,c,t\n1,10,100,1\n2,1\xe9,100,3\n")
    with pytest.raises(BadInput, match=r"log.csv: line 3: not UTF-8 text"):
        TableBuilder(str(path), columns).load()
    packed = gzip.compress(b"u,i,c,t\n" + b"1,10,100,1\n" * 5000)
    cut = tmp_path / "log.csv.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(BadInput, match=r"log.csv.gz: truncated or corrupt gzip file"):
        TableBuilder(str(cut), columns).load()


def test_a_log_whose_users_are_all_too_short_names_the_file(make_cfg, tmp_path):
    write(tmp_path / "UserBehavior.csv", ROWS[:2])
    with pytest.raises(BadInput, match=r"UserBehavior.csv: no user has at least 3 events .* 1 users were all shorter"):
        cache.load_or_build(taobao(make_cfg, tmp_path), tmp_path / "cache", min_user_events=3)
    assert not list((tmp_path / "cache").iterdir())  # nothing half-written


def test_a_truncated_parquet_cache_is_detected_and_rebuilt(make_cfg, tmp_path):
    write(tmp_path / "UserBehavior.csv", ROWS)
    directory = cache.ensure_built(taobao(make_cfg, tmp_path), tmp_path / "cache")
    events = directory / "events.parquet"
    expected = pl.read_parquet(events)
    events.write_bytes(events.read_bytes()[: events.stat().st_size // 2])
    assert "events.parquet is unreadable" in cache.damage(directory)
    again = cache.ensure_built(taobao(make_cfg, tmp_path), tmp_path / "cache")
    assert again == directory and pl.read_parquet(events).equals(expected)


@pytest.mark.filterwarnings("default")  # as on the command line: a library's warning is not the error
def test_the_command_line_prints_one_line_for_bad_input(tmp_path, capfd):
    (tmp_path / "UserBehavior.csv").write_text("1,10,100,pv,1511539205\n1,x7,100,pv,1511539206\n")
    code, lines = train_in_process(["data=taobao", f"data.root={tmp_path}"], tmp_path, capfd)
    assert code != 0
    assert lines == [f"error: {tmp_path / 'UserBehavior.csv'}: line 2, column item_id: 'x7' is not an integer "
                     "(1 such rows)"]
    code, lines = train_in_process(["data=taobao", f"data.root={tmp_path / 'nope'}"], tmp_path, capfd,
                                   run_dir=tmp_path / "run2")
    assert code != 0 and lines == [f"error: {tmp_path / 'nope' / 'UserBehavior.csv'}: not found (data.builder.path)"]


def test_a_parquet_log_is_mapped_by_column_name_and_a_bad_value_is_named_by_row(tmp_path):
    columns = {"user_id": "uid", "item_id": "iid", "category_id": "cid", "timestamp": "ts", "behavior": "act"}
    frame = pl.DataFrame({"uid": [1, 1, 2], "iid": [10, 11, 10], "cid": [100, 100, 100], "ts": [5, 6, 7],
                          "act": ["pv", "buy", "pv"], "other": ["a", "b", "c"]})
    frame.write_parquet(tmp_path / "log.parquet")
    events = TableBuilder(str(tmp_path / "log.parquet"), columns).load().events
    assert events.select("user_id", "item_id", "timestamp", "order").rows() == [(1, 10, 5, 0), (1, 11, 6, 1),
                                                                                (2, 10, 7, 2)]
    frame.with_columns(pl.Series("iid", ["10", "eleven", "10"])).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(BadInput, match=r"bad.parquet: line 2, column item_id: 'eleven' is not an integer"):
        TableBuilder(str(tmp_path / "bad.parquet"), columns).load()


@pytest.mark.filterwarnings("default")
def test_a_tab_separator_is_accepted_as_typed_on_a_command_line_and_a_bad_one_is_one_line(tmp_path, capfd):
    path = tmp_path / "log.tsv"
    path.write_text("uid\tiid\tcid\tts\n" + "".join(f"u{u}\ti{t % 4}\tc{t % 2}\t{100 + t}\n"
                                                   for u in range(3) for t in range(5)))
    table = ["data=table", f"data.builder.path={path}", "data.builder.string_ids=true",
             *(f"data.builder.columns.{k}={v}" for k, v in
               {"user_id": "uid", "item_id": "iid", "category_id": "cid", "timestamp": "ts"}.items()),
             "model=majority", "logger=csv"]
    for i, separator in enumerate(['"\\t"', "tab"]):  # Hydra hands over the two characters \ and t
        code, lines = train_in_process([*table, f"data.builder.separator={separator}"], tmp_path, capfd,
                                       run_dir=tmp_path / f"run{i}")
        assert code == 0, lines
        assert (tmp_path / f"run{i}" / "metrics.json").is_file()
    code, lines = train_in_process([*table, "data.builder.separator=ab"], tmp_path, capfd, run_dir=tmp_path / "bad")
    assert code != 0
    assert lines == ["error: data.builder.separator: 'ab' is not one character of one byte (write a tab as \\t or tab)"]


COLUMNS = {"user_id": "u", "item_id": "i", "category_id": "c", "timestamp": "t"}


def test_a_column_named_twice_in_the_header_is_refused(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("u,i,i,c,t\n1,10,11,100,1\n")
    with pytest.raises(BadInput, match=r"log.csv: line 1: column\(s\) \['i'\] appear more than once"):
        TableBuilder(str(path), COLUMNS).load()


def test_float_parquet_timestamps_are_read_when_whole_and_named_when_not(tmp_path):
    frame = pl.DataFrame({"u": [1, 1, 2], "i": [1, 2, 3], "c": [1, 1, 2], "t": [1.0, 2.0, 3.0]})
    frame.write_parquet(tmp_path / "whole.parquet")
    assert TableBuilder(str(tmp_path / "whole.parquet"), COLUMNS).load().events["timestamp"].to_list() == [1, 2, 3]
    frame.with_columns(pl.Series("t", [1.0, 2.5, 3.0])).write_parquet(tmp_path / "fraction.parquet")
    with pytest.raises(BadInput, match=r"fraction.parquet: line 2, column timestamp: '2.5' is not an integer"):
        TableBuilder(str(tmp_path / "fraction.parquet"), COLUMNS).load()


def test_a_time_range_that_removes_every_row_says_so(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("u,i,c,t\n1,10,100,5\n1,11,100,6\n")
    with pytest.raises(BadInput, match=r"log.csv: all 2 rows fall outside data.builder.time_range \[100, 200\)"):
        TableBuilder(str(path), COLUMNS, time_range=[100, 200]).load()


def test_bad_builder_settings_and_unreadable_files_are_named(tmp_path):
    good = tmp_path / "log.csv"
    good.write_text("u,i,c,t\n1,10,100,5\n")
    with pytest.raises(ValueError, match=r"data.builder.columns=.*without a header .* 0-based position"):
        TableBuilder(str(good), COLUMNS, has_header=False)
    with pytest.raises(ValueError, match=r"data.builder.time_range=\['yesterday', 'today'\]: expected"):
        TableBuilder(str(good), COLUMNS, time_range=["yesterday", "today"])
    with pytest.raises(ValueError, match=r"a directory \(data.builder.path must be a file\)"):
        TableBuilder(str(tmp_path), COLUMNS)
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(1, 40)) * 50)  # holds the byte the line reader splits on
    with pytest.raises(BadInput, match=r"garbage.csv: "):
        TableBuilder(str(garbage), COLUMNS).load()
    (tmp_path / "cut.parquet").write_bytes(b"PAR1 half a file")
    with pytest.raises(BadInput, match=r"cut.parquet: not a readable parquet file"):
        TableBuilder(str(tmp_path / "cut.parquet"), COLUMNS).load()
