"""E-commerce interest migration: sequence models, honest protocols, reproducible tables."""

from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "conf"  # the Hydra config tree every entry point composes

from research import config as _config  # noqa: E402,F401  registers the settings schema before any config is composed
