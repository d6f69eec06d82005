"""E-commerce interest migration: sequence models, honest protocols, reproducible tables."""

from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "conf"  # the Hydra config tree every entry point composes
