"""The types of the settings every run shares (Hydra structured configs, registered in the
ConfigStore as schema/datamodule and schema/eval and named first in conf/train.yaml's defaults),
and the rules a type cannot state.

A value of the wrong type (`eval.mask_history=maybe`, `datamodule.max_len=ten`) or a key the
schema does not know (`datamodule.max_lne=20`) fails while Hydra composes the config, naming the
key, the value and the type. `check(cfg)` then rejects numbers out of range and unknown choices
in one line, before any data is built. The yaml files keep the defaults and their comments; the
schema holds only types (MISSING: the yaml must set it), and adds no key to a run's config.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, fields
from typing import Any

import yaml
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from research import CONF
from research.tasks import IncompatibleConfig


@dataclass
class DataModuleSchema:
    _target_: str = MISSING
    cache_dir: str = MISSING
    max_len: int = MISSING
    batch_size: int = MISSING
    eval_batch_size: int = MISSING
    min_user_events: int = MISSING
    slice_window: int = MISSING
    split: Any = MISSING
    bucket_by_length: bool = MISSING
    seed: int = MISSING
    examples: str = MISSING
    ctr_negatives: str = MISSING
    anonymize: bool = MISSING
    ctr_eval_seed: int = MISSING


@dataclass
class EvalSchema:
    ks: list[int] = MISSING
    mask_history: bool = MISSING
    slice_window: int = MISSING
    migration_latency: bool = MISSING


STORE = ConfigStore.instance()
STORE.store(group="schema", name="datamodule", node=DataModuleSchema)
STORE.store(group="schema", name="eval", node=EvalSchema)

def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def at_least(low: int):
    return lambda v: _integer(v) and v >= low, f"an integer >= {low}"


def one_of(*allowed: str):
    return lambda v: v in allowed, f"one of {', '.join(allowed)}"


FRACTION = (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)")
# what a type cannot say; a key absent from the composed config (another model's) is skipped
RULES = {
    "datamodule.max_len": at_least(1),
    "datamodule.batch_size": at_least(1),
    "datamodule.eval_batch_size": at_least(1),
    "datamodule.min_user_events": at_least(2),
    "datamodule.ctr_negatives": one_of("popularity", "uniform"),
    "eval.slice_window": at_least(1),
    "eval.ks": (lambda v: len(v) > 0 and all(_integer(k) and k >= 1 for k in v), "a non-empty list of integers >= 1"),
    "seed": (_integer, "an integer"),
    "compile": (lambda v: isinstance(v, bool), "true or false"),
    "resume": (lambda v: isinstance(v, bool), "true or false"),
    "threads": (lambda v: v is None or (_integer(v) and v >= 1), "an integer >= 1, or null"),
    "optimizer.lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "optimizer.weight_decay": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "trainer.max_epochs": (lambda v: _integer(v) and (v >= 1 or v == -1),
                           "an integer >= 1, or -1 (no limit, with trainer.max_time)"),
    "callbacks.early_stopping.patience": at_least(0),
    "loss.weighting": one_of("target", "window", "batch"),
    "model.dropout": FRACTION,
    "model.item_dropout": FRACTION,
}


def check(cfg: DictConfig) -> None:
    """Raise IncompatibleConfig for the first value a rule refuses: the key, the value, what is allowed."""
    for key, (allowed, description) in RULES.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is _ABSENT:
            continue
        if isinstance(value, ListConfig):
            value = list(value)
        if not allowed(value):
            raise IncompatibleConfig(f"{key}={value}: must be {description}")


_ABSENT = object()
# the primary config's own keys (conf/train.yaml) beside its groups
TOP_LEVEL = ("seed", "compile", "resume", "threads", "datamodule", "optimizer", "eval", "hydra")
# sections whose keys the schema types: a misspelled key in them gets a suggestion
TYPED_SECTIONS = {"datamodule": DataModuleSchema, "eval": EvalSchema}


def misspelled(overrides: list[str], groups: list[str]) -> str | None:
    """One line for the first command-line override whose key names no setting or config group,
    with the closest known name (`modle=gru`: did you mean 'model'?); None when all are known.
    Appends (`+key=...`), deletions and Hydra's own flags are left to Hydra."""
    top = set(TOP_LEVEL) | set(groups)
    for override in overrides:
        if override.startswith(("+", "~", "-")) or "=" not in override:
            continue
        path = override.split("=", 1)[0].split("@", 1)[0].replace("/", ".").split(".")
        if path[0] not in top:
            name, known = path[0], top
        elif path[0] in TYPED_SECTIONS and len(path) > 1:
            name, known = path[1], {f.name for f in fields(TYPED_SECTIONS[path[0]])}
        else:
            continue
        if name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"{override}: '{name}' is not a setting or config group{hint}"
    return None


def global_keys() -> set[str]:
    """Top-level keys that `# @package _global_` options add (hparams_search's `sweep`, ...)."""
    keys = set()
    for path in CONF.glob("*/*.yaml"):
        text = path.read_text()
        if text.startswith("# @package _global_"):
            keys |= set(yaml.safe_load(text) or {}) - {"defaults"}
    return keys


def refuse_misspelled(overrides: list[str]) -> None:
    """Exit with misspelled()'s line, before Hydra composes (its own message has no suggestion)."""
    problem = misspelled(overrides, groups=[p.name for p in CONF.iterdir() if p.is_dir()] + sorted(global_keys()))
    if problem:
        sys.exit(f"error: {problem}")
