"""Rebuild a finished `research.train` run: its datamodule and module from the saved
config.yaml, its weights from a checkpoint (read as weights only). Used by evaluation,
tracking and figures, so every consumer of a run sees exactly the model the run evaluated."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from research import CONF
from research.data.schema import BadInput
from research.models import FittedOnData
from research.module import RecModule
from research.train import build_datamodule, build_module


def load_run(run_dir: str | Path, checkpoint: str = "best", model: str | None = None,
             fit: bool = False) -> tuple[RecModule, object]:
    """(module in eval mode, datamodule). `model=<option>` puts another model on the run's data
    (e.g. the oracle; no weights are loaded); `fit=True` refits models trained outside gradient
    descent (the profile trees), which keep no checkpoint."""
    run_dir = Path(run_dir)
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise BadInput(f"{run_dir}: not a run folder of research.train (no config.yaml)")
    try:
        cfg = OmegaConf.load(saved)
    except Exception as err:  # YAML or OmegaConf: a damaged file either way
        raise BadInput(f"{saved}: unreadable ({type(err).__name__})") from err
    if model:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg.model = compose("train", overrides=[f"model={model}"]).model
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule.meta)
    if module.trainable and not model:
        path = run_dir / "checkpoints" / f"{checkpoint}.ckpt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no checkpoint (is {run_dir} a finished training run?)")
        module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
    elif fit and isinstance(module.model, FittedOnData):
        module.model.fit_data(datamodule.fit_data())
    return module.eval(), datamodule
