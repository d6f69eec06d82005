"""Atomic output: a failed write leaves the old file whole and no temporary behind."""

import pytest

from research.io import atomic_path, write_json


def test_a_write_that_fails_midway_leaves_the_old_file_and_nothing_else(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text('{"a": ')  # half a file, then the writer dies
        raise RuntimeError("disk full")
    assert path.read_text() == '{\n  "a": 1\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_finished_write_replaces_the_file(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2})
    assert path.read_text() == '{\n  "a": 2\n}' and len(list(tmp_path.iterdir())) == 1
