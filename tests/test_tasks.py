"""A new kind of task is two files: its class (what its rows are, and the module that trains on
them) and its config. Here both live outside the package, the class in this file and the config
in a user's own config folder (`--config-dir`), and the real entry point trains on it."""

import json
import re
from dataclasses import dataclass

import pytest

from research.config import precheck
from research.data.sequences import TrainWindows
from research.tasks import NextEvent
from tests.conftest import TINY_SYNTHETIC, train_in_process


class LatestWindows(TrainWindows):
    """Only the window that ends at each user's last training event."""

    def __init__(self, store, train_end, max_len):
        super().__init__(store, train_end, max_len)
        latest = self.ends == train_end.clamp(min=0)[self.users]
        self.users, self.ends, self.first = self.users[latest], self.ends[latest], self.first[latest]


@dataclass(frozen=True)
class LatestWindowNextItem(NextEvent):
    """Next item, trained on each user's latest window of events only."""

    def datasets(self, store, split, meta, max_len, slice_window):
        _, val, test = super().datasets(store, split, meta, max_len, slice_window)
        return LatestWindows(store, split.train_end, max_len), val, test


def test_a_task_kind_from_outside_the_package_trains_through_the_entry_point(tmp_path, capfd):
    configs = tmp_path / "my_conf" / "task"
    configs.mkdir(parents=True)
    (configs / "latest_window.yaml").write_text(
        f"_target_: {__name__}.LatestWindowNextItem\nname: next_item\nmonitor: val/ndcg@10\nmode: max\n")
    # windows of 8 events: the users' longer histories have several windows, of which one is kept
    code, lines = train_in_process([f"--config-dir={tmp_path / 'my_conf'}", "task=latest_window", "model=gru",
                                    "datamodule.max_len=8", "debug=fast", *TINY_SYNTHETIC], tmp_path, capfd)
    assert code == 0, lines
    log = (tmp_path / "run" / "train.log").read_text()
    users, rows = map(int, re.search(r"(\d+) users, .* (\d+) train rows \(LatestWindows\)", log).groups())
    assert 0 < rows <= users  # one window per user with a training target, not one per 8 events
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0 <= metrics["test/ndcg@10"] <= 1


def test_every_spelling_of_a_users_config_folder_passes_the_precheck(tmp_path):
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "mine.yaml").write_text("_target_: research.tasks.NextEvent\nname: next_item\n"
                                                 "monitor: val/ndcg@10\nmode: max\n")
    for flags in (["--config-dir", str(tmp_path)], [f"--config-dir={tmp_path}"], ["-cd", str(tmp_path)]):
        precheck([*flags, "task=mine"])  # exits with one error line when the folder is not searched
    with pytest.raises(SystemExit, match="Could not find 'task/mine'"):
        precheck(["task=mine"])
