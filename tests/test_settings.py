"""Settings are typed and checked before any data is built: a wrong type or an unknown key fails
while Hydra composes (the schema of research/config.py), a value out of range fails in
research.config.check, and the command line answers either in one `error:` line."""

import re
import subprocess
import sys
import typing
from dataclasses import fields

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import _locate as locate
from omegaconf import OmegaConf

from research.config import RULES, DataModuleSchema, EvalSchema, argument_bounds, argument_types, check, objects
from research.errors import IncompatibleConfig
from tests.conftest import ROOT
from tests.test_configs import CASES, REQUIRED

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
    "eval.scores_per_chunk=0": "eval.scores_per_chunk=0",
    "eval.scores_per_chunk=many": "eval.scores_per_chunk",
    "eval.val_users=0": "eval.val_users=0",
    "loss.weighting=user": "loss.weighting=user",
    "model.dropout=1.5": "model.dropout=1.5",
    "callbacks.early_stopping.patience=-1": "callbacks.early_stopping.patience=-1",
    "seed=abc": "seed=abc",
    "model.hidden_size=0": "model.hidden_size=0",
    "model.num_layers=-1": "model.num_layers=-1",
    "data.builder.num_users=0": "data.builder.num_users=0",
    "data=table data.builder.path=x.csv data.builder.string_ids=no":
        "data.builder.string_ids='no': must be true or false",
    "trainer.precision=nonsense": "trainer.precision='nonsense': must be one of",
    "eval.ks=[5]": "task.monitor=val/ndcg@10: its cut-off 10 is not computed",
    "task.monitor=val/foo": "task.monitor=val/foo",
    "task.category_weight=-1": "task.category_weight=-1",
    "model=sasrec model.max_len=10": "model.max_len=10: must be >= datamodule.max_len (50)",
}


@pytest.mark.parametrize("override", BAD)
def test_a_bad_setting_is_refused_before_any_data_naming_the_key(override, make_cfg):
    with pytest.raises((ConfigCompositionException, IncompatibleConfig)) as err:
        check(make_cfg(*override.split()))
    assert BAD[override] in str(err.value)


@pytest.mark.parametrize(("written", "meant"),
                         [("no", False), ("off", False), ("false", False), ("yes", True), ("on", True)])
def test_a_boolean_written_as_a_word_keeps_its_meaning(written, meant, make_cfg):
    assert make_cfg(f"eval.mask_history={written}").eval.mask_history is meant


def test_good_settings_pass(make_cfg):
    check(make_cfg("trainer.max_epochs=-1", "+trainer.max_time=00:00:01:00", "threads=1", "eval.ks=[1,10,50]"))


# a real interpreter per entry point (its exit and its stderr as a shell sees them); the many
# other one-line cases run in process in tests/test_bad_input.py
@pytest.mark.parametrize(("entry", "arguments", "line"), [
    ("train", ["modle=gru"], "error: modle=gru: 'modle' is not a setting or config group; did you mean 'model'?"),
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
    assert not [*(tmp_path / "cache").glob("*")] and not (tmp_path / "sweep").exists()  # no cache entry, no study


WRONG = {bool: "maybe", int: "ten", float: "ten"}


def simple(hint) -> type | None:
    """bool, int or float, also when optional; None for anything else."""
    members = [m for m in typing.get_args(hint) if m is not type(None)] if typing.get_args(hint) else [hint]
    return members[0] if len(members) == 1 and members[0] in WRONG else None


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_a_wrong_type_for_every_typed_argument_of_every_option_is_refused(group, option, make_cfg):
    cfg = make_cfg(f"{group}={option}", *REQUIRED.get((group, option), []))
    typed = [(f"{path}.{key}" if path else key, kind) for path, node in objects(cfg)
             for key, hint in argument_types(locate(node._target_)).items()
             if key in node and (kind := simple(hint)) is not None]
    for key, kind in typed:
        bad = OmegaConf.create(OmegaConf.to_container(cfg))
        OmegaConf.update(bad, key, WRONG[kind], merge=False)
        with pytest.raises(IncompatibleConfig, match=re.escape(key) + r"='?" + WRONG[kind] + "'?: must be"):
            check(bad)


def outside(bound, kind) -> list:
    """Values just outside a declared range, of the argument's own type."""
    step = 1 if kind is int else 0.5
    values = []
    if bound.low is not None:
        values.append(bound.low if bound.low_open else bound.low - step)
    if bound.high is not None:
        values.append(bound.high if bound.high_open else bound.high + step)
    return values


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_a_value_outside_every_declared_range_is_refused_and_the_defaults_pass(group, option, make_cfg):
    cfg = make_cfg(f"{group}={option}", *REQUIRED.get((group, option), []))
    check(cfg)  # every default lies in its range
    bounded = [(f"{path}.{key}" if path else key, bound, simple(argument_types(target).get(key)))
               for path, node in objects(cfg) for target in [locate(node._target_)]
               for key, bound in argument_bounds(target).items() if key in node]
    for key, bound, kind in bounded:
        for value in outside(bound, kind):
            bad = OmegaConf.create(OmegaConf.to_container(cfg))
            OmegaConf.update(bad, key, value, merge=False)
            with pytest.raises(IncompatibleConfig, match=re.escape(f"{key}={value}: must be ") + r".*" +
                               re.escape(str(bound))):
                check(bad)


def test_ranges_are_read_from_the_constructor_signatures(make_cfg):
    cfg = make_cfg("model=bert4rec", "model.mask_prob=1.0")
    with pytest.raises(IncompatibleConfig, match=r"^model\.mask_prob=1\.0: must be a number in \(0, 1\)$"):
        check(cfg)
    check(make_cfg("model=bert4rec", "model.mask_prob=0.6"))
    with pytest.raises(IncompatibleConfig, match=r"^model\.block\.inner_factor=0: must be an integer >= 1$"):
        check(make_cfg("model=sasrec", "model.block.inner_factor=0"))


@pytest.mark.parametrize("schema", [DataModuleSchema, EvalSchema])
def test_a_wrong_type_for_every_schema_key_fails_at_compose_time(schema, make_cfg):
    section = {DataModuleSchema: "datamodule", EvalSchema: "eval"}[schema]
    for field in fields(schema):
        kind = simple(typing.get_type_hints(schema)[field.name])
        if kind is not None:
            with pytest.raises(ConfigCompositionException, match=f"{section}.{field.name}"):
                make_cfg(f"{section}.{field.name}={WRONG[kind]}")


def numeric(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_every_numeric_setting_of_our_objects_declares_its_range(group, option, make_cfg):
    """A number the config hands one of our constructors has a declared range (research.bounds in
    its signature) or a rule (research.config.RULES): no size, count, rate or weight is taken
    on trust. Other libraries' objects (Lightning's Trainer, torch's optimisers) are in RULES."""
    cfg = make_cfg(f"{group}={option}", *REQUIRED.get((group, option), []))
    unranged = [f"{path}.{key}" if path else str(key) for path, node in objects(cfg)
                if node._target_.startswith("research.")
                for key in node if not str(key).startswith("_")
                and numeric(OmegaConf.select(node, str(key), throw_on_resolution_failure=False))
                and key not in argument_bounds(locate(node._target_)) and f"{path}.{key}" not in RULES]
    assert not unranged, f"numbers without a declared range: {unranged}"
