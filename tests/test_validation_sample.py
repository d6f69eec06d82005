"""eval.val_users: early stopping watches a fixed sample of users' validation targets (a log of
millions of users), the test set stays whole, and the setting at its default names no cell
differently from runs made before it existed."""

import json

import torch
from omegaconf import OmegaConf

from research.config import computation
from research.train import build_datamodule
from tests.conftest import TINY_SYNTHETIC, train_in_process


def test_validation_reads_the_sampled_users_and_the_test_every_user(tmp_path):
    code, err = train_in_process(["model=gru", "logger=csv", "trainer.max_epochs=2", "threads=1",
                                  "eval.val_users=50", *TINY_SYNTHETIC], tmp_path)
    assert code == 0, err
    split = json.loads((tmp_path / "run" / "data_report.json").read_text())["split"]
    assert split["val_users_sampled"] == 50 and split["val_targets"] == 50  # leave-one-out: one each
    assert split["val_targets_not_sampled"] == split["test_targets"] - 50
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # what the trainer's validation and test passes counted (the stay/shift slices cover every target)
    assert metrics["val/stay/count"] + metrics["val/shift/count"] == 50
    assert metrics["test/stay/count"] + metrics["test/shift/count"] == split["test_targets"]


def test_the_sample_is_the_same_users_for_every_seed_and_a_subset_of_the_validation_targets(make_cfg):
    full = build_datamodule(make_cfg(*TINY_SYNTHETIC)).split.val
    samples = [build_datamodule(make_cfg("eval.val_users=30", f"seed={seed}", *TINY_SYNTHETIC)).split.val
               for seed in (0, 1)]
    assert torch.equal(samples[0], samples[1]) and samples[0].size(0) == 30
    assert {tuple(row) for row in samples[0].tolist()} <= {tuple(row) for row in full.tolist()}
    everyone = build_datamodule(make_cfg("eval.val_users=100000", *TINY_SYNTHETIC))
    assert torch.equal(everyone.split.val, full) and "val_users_sampled" not in everyone.split_counts()


def test_the_default_names_a_cell_as_before_the_setting_existed(make_cfg):
    cfg = make_cfg()
    before = cfg.copy()  # as a config composed before the setting existed
    OmegaConf.set_struct(before, False)
    del before.datamodule.val_users, before.eval.val_users
    assert computation(before) == computation(cfg)
    assert computation(make_cfg("eval.val_users=1000")) != computation(cfg)
