"""Training batches through the real driver (research.train.run -> Trainer.fit): every epoch
draws new batches, and the same seed draws the same ones. A callback given through the
config records what the model was actually fed."""

import json
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch

from research.data.sequences import EventStore
from research.errors import IncompatibleConfig
from research.train import build_datamodule, run
from tests.conftest import TINY_SYNTHETIC


class BatchRecorder(L.Callback):
    """Writes, per epoch, the training batches' target items as the model received them."""

    def __init__(self, path: str):
        self.path, self.epochs = Path(path), {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.epochs.setdefault(trainer.current_epoch, []).append(batch["target_items"].tolist())

    def on_train_end(self, trainer, pl_module) -> None:
        self.path.write_text(json.dumps(self.epochs))


def fed_batches(make_cfg, tmp_path: Path, name: str, *overrides: str) -> dict:
    path = tmp_path / f"{name}.json"
    run(make_cfg("model=gru", "logger=csv", "trainer.max_epochs=3", "datamodule.batch_size=32", "threads=1",
                 f"paths.output_dir={tmp_path / name}",
                 "+callbacks.recorder._target_=tests.test_training_batches.BatchRecorder",
                 f"+callbacks.recorder.path={path}", *TINY_SYNTHETIC, *overrides))
    return json.loads(path.read_text())


@pytest.mark.parametrize("bucket", ["true", "false"])
def test_each_epoch_draws_new_batches_and_a_seed_repeats_them(bucket, make_cfg, tmp_path):
    first = fed_batches(make_cfg, tmp_path, "a", f"datamodule.bucket_by_length={bucket}")
    assert sorted(first) == ["0", "1", "2"]
    assert first["0"] != first["1"] and first["1"] != first["2"], "the same batches were fed in two epochs"
    # the same targets every epoch, only grouped and ordered differently
    def targets(epoch):
        return sorted(t for batch in first[epoch] for row in batch for t in row if t > 0)
    assert targets("0") == targets("1") == targets("2")
    assert fed_batches(make_cfg, tmp_path, "b", f"datamodule.bucket_by_length={bucket}") == first
    assert fed_batches(make_cfg, tmp_path, "c", f"datamodule.bucket_by_length={bucket}", "seed=1")["0"] != first["0"]


def test_the_per_target_divisor_is_the_mean_number_of_targets_in_one_batch(make_cfg):
    """loss.weighting=target divides each batch's summed loss by this constant; it is one
    process's batch (under DDP too: the ranks' gradients are averaged)."""
    cfg = make_cfg("datamodule.batch_size=32", *TINY_SYNTHETIC)
    datamodule = build_datamodule(cfg)
    datamodule.setup()
    batches = list(datamodule.train_dataloader())
    targets = sum(int((b["target_items"] > 0).sum()) for b in batches)
    assert datamodule.targets_per_batch == pytest.approx(targets / len(batches))


def test_batches_counted_in_targets_reach_the_model_with_about_that_many_targets(make_cfg, tmp_path):
    """datamodule.batch_unit=targets through the real fit: every batch the model is fed holds
    about batch_size targets (within one window), whatever the lengths of its windows, and the
    per-target divisor is their mean."""
    fed = fed_batches(make_cfg, tmp_path, "t", "datamodule.batch_unit=targets", "datamodule.batch_size=200")
    counts = [sum(t > 0 for row in batch for t in row) for batch in fed["0"]]
    windows = [len(batch) for batch in fed["0"]]
    assert max(windows) > 2 * min(windows), "windows per batch should follow their lengths"
    mean = sum(counts) / len(counts)
    assert all(abs(c - mean) <= 50 for c in counts) and abs(mean - 200) <= 50
    datamodule = build_datamodule(make_cfg("datamodule.batch_unit=targets", "datamodule.batch_size=200",
                                           *TINY_SYNTHETIC))
    assert datamodule.targets_per_batch == pytest.approx(mean)


def test_prefix_rows_reach_the_model_with_one_target_each_at_their_last_position(make_cfg, tmp_path):
    """task.train_rows=prefixes through the real fit: every row the model is fed has exactly one
    target, in its last column, and an epoch trains the same targets as one of windows."""
    fed = fed_batches(make_cfg, tmp_path, "p", "task.train_rows=prefixes")
    rows = [row for batch in fed["0"] for row in batch]
    assert all(row[-1] > 0 and not any(row[:-1]) for row in rows)
    windows = fed_batches(make_cfg, tmp_path, "w")
    assert sorted(row[-1] for row in rows) == sorted(t for b in windows["0"] for row in b for t in row if t > 0)


def test_prefix_rows_are_refused_for_a_model_with_an_objective_of_its_own(make_cfg, tmp_path):
    with pytest.raises(IncompatibleConfig, match="task.train_rows=prefixes: BERT4Rec"):
        run(make_cfg("model=bert4rec", "task.train_rows=prefixes", "trainer.max_epochs=1", "threads=1",
                     f"paths.output_dir={tmp_path}", *TINY_SYNTHETIC))


def test_user_windows_are_refused_for_a_model_that_is_not_causal(make_cfg, tmp_path):
    """BSARec's filter lets an output see later events: trained on windows, a target would be
    predicted from an output that saw it. Its default rows are refused in one line."""
    with pytest.raises(IncompatibleConfig, match="task.train_rows=windows: BSARec is not causal"):
        run(make_cfg("model=bsarec", "trainer.max_epochs=1", "threads=1", f"paths.output_dir={tmp_path}",
                     *TINY_SYNTHETIC))


class FakeTrainer:
    """What the datamodule reads of its trainer (world size, rank, device), with the `meta`
    device standing for a GPU: no GPU on the machines that run this suite."""

    world_size, global_rank = 1, 0

    def __init__(self, device: str):
        self.strategy = type("Strategy", (), {"root_device": torch.device(device)})()


@pytest.mark.parametrize("resident", [True, False])
def test_the_loaders_cut_batches_on_the_trainers_device_when_resident(resident, make_cfg):
    cfg = make_cfg("datamodule.batch_size=32", f"datamodule.resident={str(resident).lower()}", *TINY_SYNTHETIC)
    datamodule = build_datamodule(cfg)  # set up already
    datamodule.trainer = FakeTrainer("meta")
    loaders = [datamodule.train_dataloader(), datamodule.val_dataloader(), datamodule.test_dataloader()]
    devices = {value.device.type for loader in loaders for value in next(iter(loader)).values()}
    assert devices == ({"meta"} if resident else {"cpu"})
    if resident:  # one copy of the events serves all three
        assert len({id(loader.dataset.store) for loader in loaders}) == 1
        assert datamodule.store.device.type == "cpu"  # the host tables stay for counts and splits
    datamodule.trainer = FakeTrainer("cpu")
    assert next(iter(datamodule.train_dataloader()))["items"].device.type == "cpu"


def test_click_through_rows_stay_on_the_host(make_cfg):
    """Their negatives are drawn from host generators (research.data.ctr)."""
    cfg = make_cfg("task=ctr", "model=din", "datamodule.batch_size=32", *TINY_SYNTHETIC)
    datamodule = build_datamodule(cfg)  # set up already
    datamodule.trainer = FakeTrainer("meta")
    assert next(iter(datamodule.train_dataloader()))["items"].device.type == "cpu"


def test_events_that_do_not_fit_on_the_device_fail_naming_the_setting(make_cfg, monkeypatch):
    datamodule = build_datamodule(make_cfg(*TINY_SYNTHETIC))
    datamodule.trainer = FakeTrainer("meta")

    def out_of_memory(self, device):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate ...")

    monkeypatch.setattr(EventStore, "to", out_of_memory)
    with pytest.raises(IncompatibleConfig, match=r"datamodule.resident: the events \([0-9.]+ GiB\) do not fit on meta; "
                                                 r"datamodule.resident=false keeps them on the host"):
        datamodule.train_dataloader()
