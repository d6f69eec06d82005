"""Shared fixtures. Threads and W&B are pinned before torch or wandb are imported anywhere
(see ../shared/STACK.md: thread collapse on 2 cores; W&B blocking without network)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_X_DISABLE_STATS"] = "true"
os.environ["WANDB_SILENT"] = "true"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import get_class  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
BEAUTY = ROOT.parent / "shared" / "datasets" / "amazon-beauty"

# A small simulator: seconds to build and train on.
TINY_SYNTHETIC = [
    "data.builder.num_users=200",
    "data.builder.num_items=120",
    "data.builder.num_categories=6",
    "data.builder.mean_events=30",
    "data.builder.min_events=5",
    "data.builder.max_events=60",
]


def options(group: str) -> list[str]:
    """Every option of a config group, so a new config file is tested without a new test."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def model_class(name: str) -> type:
    target = yaml.safe_load((CONF / "model" / f"{name}.yaml").read_text())["_target_"]
    return get_class(target)


def models_supporting(*tasks: str) -> list[str]:
    """The model options that support any of `tasks` (each model declares its own)."""
    return [m for m in options("model") if model_class(m).supported_tasks & set(tasks)]


@pytest.fixture
def make_cfg(tmp_path):
    def make(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(
                "train",
                overrides=[f"paths.output_dir={tmp_path / 'run'}", f"paths.cache_dir={tmp_path / 'cache'}",
                           *overrides],
            )

    return make


requires_beauty = pytest.mark.skipif(not BEAUTY.is_dir(), reason=f"{BEAUTY} not present")
