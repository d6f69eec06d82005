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
import functools
import inspect
import sys
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from hydra.utils import _locate as locate
from hydra.utils import instantiate
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from research import CONF
from research.bounds import Between
from research.errors import IncompatibleConfig


@dataclass
class DataModuleSchema:
    _target_: str = MISSING
    cache_dir: str = MISSING
    max_len: int = MISSING
    batch_size: int = MISSING
    batch_unit: str = MISSING
    eval_batch_size: int = MISSING
    min_user_events: int = MISSING
    slice_window: int = MISSING
    split: Any = MISSING
    bucket_by_length: bool = MISSING
    seed: int = MISSING
    anonymize: bool = MISSING
    resident: bool = MISSING
    val_users: int | None = MISSING


@dataclass
class EvalSchema:
    ks: list[int] = MISSING
    mask_history: bool = MISSING
    slice_window: int = MISSING
    migration_latency: bool = MISSING
    scores_per_chunk: int | None = MISSING
    val_users: int | None = MISSING


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


OPTIONAL_COUNT = (lambda v: v is None or (_integer(v) and v >= 0), "an integer >= 0, or null")

# what a type cannot say; a key absent from the composed config (another model's) is skipped
RULES = {
    "data.builder.category_level": at_least(0),  # a depth in the category path (Python would count from the end)
    "eval.slice_window": at_least(1),
    "eval.ks": (lambda v: len(v) > 0 and all(_integer(k) and k >= 1 for k in v), "a non-empty list of integers >= 1"),
    "seed": (_integer, "an integer"),
    "compile": (lambda v: isinstance(v, bool), "true or false"),
    "resume": (lambda v: isinstance(v, bool), "true or false"),
    "threads": (lambda v: v is None or (_integer(v) and v >= 1), "an integer >= 1, or null"),
    "eval.scores_per_chunk": (lambda v: v is None or (_integer(v) and v >= 1), "an integer >= 1, or null"),
    "eval.val_users": (lambda v: v is None or (_integer(v) and v >= 1), "an integer >= 1, or null"),
    "optimizer.lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "optimizer.weight_decay": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "trainer.max_epochs": (lambda v: _integer(v) and (v >= 1 or v == -1),
                           "an integer >= 1, or -1 (no limit, with trainer.max_time)"),
    "callbacks.early_stopping.patience": at_least(0),
    "loss.patience_steps": OPTIONAL_COUNT,
    "callbacks.early_stopping.patience_steps": OPTIONAL_COUNT,
    "loss.weighting": one_of("target", "window", "batch"),
}


METRIC_FAMILIES = ("hit", "ndcg", "mrr", "category_acc", "category_logloss", "category_macro_f1", "auc", "gauc",
                   "logloss", "count")
CATEGORY_CUTOFFS = (1, 3)  # research/metrics.py


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
    for path, node in objects(cfg):
        check_arguments(path, node)
    check_monitor(cfg)
    check_devices(cfg)
    model_len, data_len = OmegaConf.select(cfg, "model.max_len"), OmegaConf.select(cfg, "datamodule.max_len")
    if _integer(model_len) and _integer(data_len) and model_len < data_len:
        raise IncompatibleConfig(f"model.max_len={model_len}: must be >= datamodule.max_len ({data_len}), "
                                 "the length of the windows the model is fed")


def check_devices(cfg: DictConfig) -> None:
    """More than one device only through trainer=ddp: Lightning would otherwise put its own
    DistributedSampler under our loaders, which pads each rank's evaluation rows with copies (some
    targets counted twice) and replaces our training batches."""
    devices = OmegaConf.select(cfg, "trainer.devices", default=1)
    if isinstance(devices, str):  # Lightning's spellings: "auto", "-1", "2", "0,1"; "0," is GPU 0 alone
        text = devices.strip(" ,")
        many = text in ("auto", "-1") or "," in text or (text.isdigit() and int(text) > 1)
    elif isinstance(devices, ListConfig):  # GPU indices
        many = len(devices) > 1
    else:  # 0 and negative counts are Lightning's to refuse
        many = isinstance(devices, int) and (devices > 1 or devices == -1)
    if many and OmegaConf.select(cfg, "trainer.use_distributed_sampler", default=True) is not False:
        raise IncompatibleConfig(f"trainer.devices={devices}: more than one device runs with trainer=ddp "
                                 f"(e.g. trainer=ddp trainer.devices={devices}), whose ranks each read their own shard")


def objects(node: DictConfig, path: str = ""):
    """(dotted path, node) for every node that instantiates an object (has a `_target_`)."""
    if "_target_" in node:
        yield path, node
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and key != "hydra":
            yield from objects(child, f"{path}.{key}" if path else str(key))


def check_arguments(path: str, node: DictConfig) -> None:
    """Each argument against the type its constructor declares (a bool given as the text "no", a
    size given as text), then the range it declares (research.bounds). A constructor that passes
    **kwargs on declares where (research.bounds.forwards_keywords), so its keys are checked too."""
    target = locate(node._target_)
    hints, bounds = argument_types(target), argument_bounds(target)
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):  # no signature to read (some builtins)
        parameters = {}
    open_ended = not parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    # arguments the code passes itself (meta=..., callbacks=...) are parameters too, never in the yaml
    for key in node:
        if str(key).startswith("_"):
            continue
        if not open_ended and key not in parameters:
            close = difflib.get_close_matches(str(key), list(parameters), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise IncompatibleConfig(f"{path}.{key}: not a setting of {node._target_}{hint}")
        try:
            value = node[key]
        except Exception:  # an interpolation only the running job resolves (hydra:runtime...)
            continue
        if key in hints and fits(value, hints[key]) is False:
            raise IncompatibleConfig(f"{path}.{key}={value!r}: must be {describe(hints[key])}")
        if key in bounds and _number(value) and not bounds[key].admits(value):
            kind = "an integer" if hints.get(key) is int else "a number"
            raise IncompatibleConfig(f"{path}.{key}={value}: must be {kind} {bounds[key]}")


@functools.cache
def signature_hints(target) -> dict:
    """A class's or function's argument annotations, `Annotated[...]` kept ({} when they do not
    resolve: the constructor then still checks its own arguments). Read once per target."""
    try:
        return typing.get_type_hints(target.__init__ if isinstance(target, type) else target, include_extras=True)
    except Exception:
        return {}


def argument_types(target) -> dict:
    """The annotated argument types, without their declared ranges."""
    return {key: typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
            for key, hint in signature_hints(target).items()}


def argument_bounds(target) -> dict[str, Between]:
    """The ranges a constructor declares for its arguments (`Annotated[float, Between(...)]`)."""
    return {key: bound for key, hint in signature_hints(target).items() if typing.get_origin(hint) is typing.Annotated
            for bound in hint.__metadata__ if isinstance(bound, Between)}


def fits(value, hint) -> bool | None:
    """Whether `value` fits a simple annotation; None when the annotation is not one we read."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        verdicts = [fits(value, a) for a in args]
        return True if True in verdicts or None in verdicts else False
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return _integer(value)
    if hint is float:
        return _number(value)
    if hint is str:
        return isinstance(value, str)
    return None


def describe(hint) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "text", type(None): "null"}
    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    literals = [v for m in members if typing.get_origin(m) is typing.Literal for v in typing.get_args(m)]
    others = [names.get(m, m.__name__ if isinstance(m, type) else str(m)) for m in members
              if typing.get_origin(m) is not typing.Literal]
    return " or ".join([*([f"one of {', '.join(dict.fromkeys(map(str, literals)))}"] if literals else []), *others])


def check_monitor(cfg: DictConfig) -> None:
    """Early stopping and checkpointing watch task.monitor: a metric the evaluation computes."""
    monitor = OmegaConf.select(cfg, "task.monitor")
    if not isinstance(monitor, str):
        return
    name = monitor.split("/")[-1]
    family, _, k = name.partition("@")
    ks = list(OmegaConf.select(cfg, "eval.ks") or [])
    if not monitor.startswith("val/") or family not in METRIC_FAMILIES:
        raise IncompatibleConfig(f"task.monitor={monitor}: must be val/<metric>, a metric of "
                                 f"{', '.join(METRIC_FAMILIES)} (with @k for a cut-off in eval.ks)")
    cutoffs = CATEGORY_CUTOFFS if family == "category_acc" else ks  # category accuracy has its own
    if k and (not k.isdigit() or int(k) not in cutoffs):
        raise IncompatibleConfig(f"task.monitor={monitor}: its cut-off {k} is not computed "
                                 f"({'eval.ks' if cutoffs is ks else family}: {list(cutoffs)})")


_ABSENT = object()

# sections whose keys the schema types: a misspelled key in them gets a suggestion
TYPED_SECTIONS = {"datamodule": DataModuleSchema, "eval": EvalSchema}


def misspelled(overrides: list[str], groups: list[str]) -> str | None:
    """One line for the first command-line override whose key names no setting or config group,
    with the closest known name (`modle=gru`: did you mean 'model'?); None when all are known.
    Appends (`+key=...`), deletions and Hydra's own flags are left to Hydra."""
    own = set(primary_config()) - {"defaults"}  # the primary config's keys
    top = own | set(groups) | {"hydra"}
    for override in overrides:
        if override.startswith(("~", "-")) or "=" not in override:
            continue
        # `+key=...` adds a key: fine where a free-form section takes it (+trainer.max_time), not
        # at the top level or in a typed section, where nothing would ever read it
        path = override.lstrip("+").split("=", 1)[0].split("@", 1)[0].replace("/", ".").split(".")
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


@functools.cache
def primary_config() -> dict:
    """conf/train.yaml as written: its own keys and its defaults list."""
    return yaml.safe_load((CONF / "train.yaml").read_text())


def default_option(group: str) -> str | None:
    """The option conf/train.yaml's defaults list picks for a config group."""
    return next((e[group] for e in primary_config()["defaults"] if isinstance(e, dict) and group in e), None)


def check_objective(cfg: DictConfig, loss_option: str | None) -> None:
    """A loss option the task never trains with is refused, not ignored (next_category, the
    click-through task: the task says why it trains no item loss)."""
    if loss_option in (None, default_option("loss")):
        return
    why = instantiate(cfg.task).unused_item_loss()
    if why:
        raise IncompatibleConfig(f"loss={loss_option}: {why}, so this item loss would never be used")


def flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested container as {"a.b.c": value}."""
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in flat(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node}


# where a run writes, logs and caches, how it shows and saves progress, how many threads it uses
# and how many scores it holds at once (execution settings, as the device is): not what it computes
VOLATILE = ("paths", "logger", "resume", "threads", "eval.scores_per_chunk", "sweep", "callbacks.progress_bar",
            "callbacks.model_checkpoint", "callbacks.last_checkpoint", "data.anonymize", "datamodule.anonymize",
            "datamodule.cache_dir", "datamodule.resident")


# settings added after cells were named, at the value that computes what runs did before they
# existed: left out of a cell's name at that value, so no earlier cell is renamed
NEUTRAL = {"eval.val_users": None, "datamodule.val_users": None, "datamodule.batch_unit": "windows",
           "task.train_rows": "windows", "model.tie_item_table": True, "loss.patience_steps": 2000,
           "model.item_bias": False}


def computation(cfg: DictConfig) -> dict:
    """The resolved config less VOLATILE and less NEUTRAL settings at their neutral value, with
    the run folder read as ".": what a run's numbers depend on. It names a table cell
    (research.table) and tells a sweep's rerun whether it continues the same study
    (research.sweep). (Hashed user ids leave every number unchanged.)"""
    cfg = cfg.copy()
    OmegaConf.update(cfg, "paths.output_dir", ".", force_add=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in (*VOLATILE, *NEUTRAL):
        *parents, last = key.split(".")
        node = resolved
        for parent in parents:
            node = node.get(parent, {})
        if key in VOLATILE or (last in node and node[last] == NEUTRAL[key]):
            node.pop(last, None)
    return resolved


def global_keys() -> set[str]:
    """Top-level keys that `# @package _global_` options add (hparams_search's `sweep`, ...)."""
    keys = set()
    for path in CONF.glob("*/*.yaml"):
        text = path.read_text()
        if text.startswith("# @package _global_"):
            keys |= set(yaml.safe_load(text) or {}) - {"defaults"}
    return keys


def precheck(overrides: list[str]) -> None:
    """Before Hydra runs a command line: exit with one `error:` line for a misspelled key (with a
    suggestion), a run folder that is a file, or anything the composition refuses (Hydra's own
    messages span several lines and, for the run folder, end in a traceback)."""
    problem = misspelled(overrides, groups=[p.name for p in CONF.iterdir() if p.is_dir()] + sorted(global_keys()))
    if problem:
        sys.exit(f"error: {problem}")
    run_dir = next((o.split("=", 1)[1] for o in reversed(overrides) if o.startswith("hydra.run.dir=")), None)
    if run_dir and Path(run_dir).exists() and not Path(run_dir).is_dir():
        sys.exit(f"error: hydra.run.dir={run_dir}: a file is where the run folder would be")
    if "-m" in overrides or "--multirun" in overrides:
        return  # sweeps over values (a=1,2) compose per job; Hydra reports those
    # a user's own config folders (--config-dir DIR, -cd DIR) are searched as Hydra will
    dirs = [o.split("=", 1)[1] for o in overrides if o.startswith(("--config-dir=", "-cd="))]
    dirs += [after for flag, after in zip(overrides, overrides[1:]) if flag in ("--config-dir", "-cd")]
    ours = [o for o in overrides if not o.startswith(("-", "hydra.", "hydra/", "+hydra")) and o not in dirs]
    problem = unknown_option(ours, [CONF, *map(Path, dirs)])
    if problem:
        sys.exit(f"error: {problem}")
    if dirs:
        ours.append(f"hydra.searchpath=[{','.join(f'file://{Path(d).resolve()}' for d in dirs)}]")
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            compose("train", overrides=ours)
    except HydraException as err:
        sys.exit(f"error: {one_line(err)}")


def unknown_option(overrides: list[str], roots: list[Path]) -> str | None:
    """One line for the first `group=option` of an optional group (update, debug, hparams_search)
    naming no config file: Hydra skips a missing option of an optional group without a word, which
    would run `debug=fsat` as a full run (Hydra itself refuses one of any other group)."""
    for override in overrides:
        group, _, option = override.lstrip("+").partition("=")
        if not option or option == "null" or group not in optional_groups():
            continue
        options = sorted({p.stem for root in roots for p in (root / group).glob("*.yaml")})
        if option not in options:
            return f"{override}: no option '{option}' in config group '{group}' (options: {', '.join(options)})"
    return None


@functools.cache
def optional_groups() -> frozenset[str]:
    """The groups train.yaml's defaults list marks `optional`."""
    entries = [e for entry in primary_config()["defaults"] if isinstance(entry, dict) for e in entry]
    return frozenset(e.removeprefix("optional ") for e in entries if e.startswith("optional "))


def one_line(err: BaseException) -> str:
    """Hydra's and OmegaConf's several-line messages as one line, without their bookkeeping."""
    texts = [str(err)] + ([str(err.__cause__)] if err.__cause__ and str(err.__cause__) not in str(err) else [])
    noise = ("full_key:", "object_type=", "reference_type=", "Set the environment variable")
    lines = [line.strip() for text in texts for line in text.splitlines()]
    lines = lines[:next((i for i, line in enumerate(lines) if line.startswith("Config search path")), len(lines))]
    return "; ".join(line for line in lines if line and not line.startswith(noise)).replace(":;", ":")
