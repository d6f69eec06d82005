"""Settings are typed and checked before any data is built: a wrong type or an unknown key fails
while Hydra composes (the schema of research/config.py), a value out of range fails in
research.config.check, and the command line answers either in one `error:` line."""

import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException

from research.config import check
from research.tasks import IncompatibleConfig
from tests.conftest import ROOT

# override -> what the error must name
BAD = {
    "eval.mask_history=maybe": "eval.mask_history",
    "datamodule.bucket_by_length=sometimes": "datamodule.bucket_by_length",
    "datamodule.max_len=ten": "datamodule.max_len",
    "datamodule.max_lne=20": "datamodule.max_lne",
    "datamodule.max_len=0": "datamodule.max_len=0",
    "datamodule.batch_size=0": "datamodule.batch_size=0",
    "datamodule.min_user_events=1": "datamodule.min_user_events=1",
    "optimizer.lr=-1": "optimizer.lr=-1",
    "optimizer.lr=0": "optimizer.lr=0",
    "trainer.max_epochs=0": "trainer.max_epochs=0",
    "eval.ks=[0]": "eval.ks=[0]",
    "eval.ks=[]": "eval.ks=[]",
    "eval.slice_window=-3": "eval.slice_window=-3",
    "threads=0": "threads=0",
    "loss.weighting=user": "loss.weighting=user",
    "model.dropout=1.5": "model.dropout=1.5",
    "callbacks.early_stopping.patience=-1": "callbacks.early_stopping.patience=-1",
}


@pytest.mark.parametrize("override", BAD)
def test_a_bad_setting_is_refused_before_any_data_naming_the_key(override, make_cfg):
    with pytest.raises((ConfigCompositionException, IncompatibleConfig)) as err:
        check(make_cfg(override))
    assert BAD[override] in str(err.value)


@pytest.mark.parametrize(("written", "meant"),
                         [("no", False), ("off", False), ("false", False), ("yes", True), ("on", True)])
def test_a_boolean_written_as_a_word_keeps_its_meaning(written, meant, make_cfg):
    assert make_cfg(f"eval.mask_history={written}").eval.mask_history is meant


def test_good_settings_pass(make_cfg):
    check(make_cfg("trainer.max_epochs=-1", "+trainer.max_time=00:00:01:00", "threads=1", "eval.ks=[1,50]"))


@pytest.mark.parametrize(("entry", "arguments", "line"), [
    ("train", ["datamodule.max_len=0"], "error: datamodule.max_len=0: must be an integer >= 1"),
    ("train", ["modle=gru"], "error: modle=gru: 'modle' is not a setting or config group; did you mean 'model'?"),
    ("train", ["datamodule.max_lne=20"], "error: datamodule.max_lne=20: 'max_lne' is not a setting or config "
                                         "group; did you mean 'max_len'?"),
    ("sweep", ["hparams_search=sasrec_optuna", "datamodule.max_len=0"],  # `sweep` is a key its group adds
     "error: datamodule.max_len=0: must be an integer >= 1"),
])
def test_the_command_line_answers_a_bad_setting_in_one_line_and_builds_nothing(entry, arguments, line, tmp_path):
    proc = subprocess.run([sys.executable, "-m", f"research.{entry}", *arguments,
                           f"paths.cache_dir={tmp_path / 'cache'}",
                           f"sweep.dir={tmp_path / 'sweep'}" if entry == "sweep" else "seed=0",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "cache").exists() and not (tmp_path / "sweep").exists()
