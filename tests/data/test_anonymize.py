"""data.anonymize=true: raw user ids are replaced by keyed hashes in the processed data, and no
raw id reaches any file a run writes (cache, logs, W&B); without a secret salt it refuses."""

import pytest

from research.data.schema import BadInput
from research.train import run

USERS = ["alice-7f3e", "bob-91c2", "carol-0a5d"]


@pytest.fixture
def log_file(tmp_path):
    rows = [f"{u},item{i % 4},cat{i % 2},{1000 + 10 * i + k}" for k, u in enumerate(USERS) for i in range(6)]
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,category_id,timestamp\n" + "\n".join(rows) + "\n")
    return path


def overrides(path) -> list[str]:
    return ["data=table", f"data.builder.path={path}", "data.builder.string_ids=true", "data.anonymize=true",
            "model=gru", "trainer.max_epochs=1", "logger=default", "datamodule.batch_size=2"]


def test_no_raw_user_id_reaches_any_file_of_the_run(make_cfg, tmp_path, log_file, monkeypatch):
    monkeypatch.setenv("RESEARCH_USER_SALT", "a-test-secret-of-some-length")
    run(make_cfg(*overrides(log_file)))
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file()] + \
              [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert any(p.name == "users.parquet" for p in written) and any("wandb" in p.parts for p in written)
    for path in written:
        content = path.read_bytes()
        assert not [u for u in USERS if u.encode() in content], path


def test_without_anonymize_the_raw_ids_are_kept(make_cfg, tmp_path, log_file):
    """The control: the search above does find raw ids when they are there."""
    run(make_cfg(*[o for o in overrides(log_file) if o != "data.anonymize=true"]))
    users = next((tmp_path / "cache").rglob("users.parquet")).read_bytes()
    assert all(u.encode() in users for u in USERS)


def test_anonymize_refuses_to_run_without_a_secret_salt(make_cfg, log_file, monkeypatch):
    monkeypatch.delenv("RESEARCH_USER_SALT", raising=False)
    with pytest.raises(BadInput, match="RESEARCH_USER_SALT"):
        run(make_cfg(*overrides(log_file)))
