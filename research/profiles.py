"""Interpretable user-profile features, computed with polars for every event from the events
before it, and the base of the tree models that predict the next category from them.

For the event at position p of a user (features use positions 0 .. p-1 only):
    share_last{w}[k]   : share of category k among the last w events (w = 1 is the last category)
    share_all[k]       : share of category k among all earlier events
    recency[k]         : events since category k last occurred (`NEVER` when it has not)
    entropy, distinct  : entropy and number of distinct categories of the earlier events
    switches, switch_rate : category changes between consecutive earlier events
    behavior_share[j]  : share of behaviour type j (pv/cart/fav/buy ...) among earlier events
    history_length, log_last_gap : events so far; log seconds between the last two of them
    profile_<attr>     : the user's profile attributes, when the dataset has them
The target event's own timestamp is not used: it is not known before the event happens.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated

import numpy as np
import polars as pl
import torch
from torch import nn

from research.bounds import AT_LEAST_ONE, Seed
from research.data.schema import DatasetMeta
from research.models import FitData

log = logging.getLogger(__name__)
NEVER = 10_000  # recency of a category never seen: larger than any history


def profile_features(events: pl.DataFrame, users: pl.DataFrame | None, category_names: tuple[str, ...],
                     num_behaviors: int, windows: tuple[int, ...] = (1, 5, 20)) -> tuple[np.ndarray, list[str]]:
    """(E, F) float32 features, one row per event of `events` (dense, sorted by user and time,
    as stored by the cache), and the feature names (categories named by their raw names)."""
    num_categories = len(category_names)
    user = "user"
    frame = events.select("user", "category", "timestamp", *(["behavior"] if "behavior" in events.columns else []))
    cats = range(1, num_categories + 1)
    behaviors = range(1, num_behaviors + 1) if "behavior" in frame.columns else range(0)
    # stage 1: per event, counts of each category (and behaviour) strictly before it
    frame = frame.with_columns(
        pl.int_range(pl.len()).over(user).alias("history_length"),
        pl.col("category").shift(1).over(user).alias("_previous"),
        *(((pl.col("category") == k).cast(pl.Int32).cum_sum().over(user) - (pl.col("category") == k).cast(pl.Int32))
          .alias(f"_before{k}") for k in cats),
        *(pl.when(pl.col("category") == k).then(pl.int_range(pl.len())).forward_fill().over(user).alias(f"_seen{k}")
          for k in cats),
        *(((pl.col("behavior") == j).cast(pl.Int32).cum_sum().over(user) - (pl.col("behavior") == j).cast(pl.Int32))
          .alias(f"_behavior{j}") for j in behaviors),
        (pl.col("timestamp") - pl.col("timestamp").shift(1).over(user)).alias("_gap"),
    )
    n = pl.col("history_length").cast(pl.Float32)
    change = ((pl.col("category") != pl.col("_previous")) & pl.col("_previous").is_not_null()).cast(pl.Int32)
    frame = frame.with_columns((change.cum_sum().over(user) - change).alias("switches"))
    # stage 2: shares, recencies and the rest, from the stage-1 counts
    columns = []
    for k in cats:
        before = pl.col(f"_before{k}")
        for w in windows:
            earlier = before.shift(w).over(user).fill_null(0)
            share = ((before - earlier) / pl.min_horizontal(n, w)).fill_nan(0)
            columns.append(share.alias(f"share_last{w}[{category_names[k - 1]}]"))
        columns.append((before / n).fill_nan(0).alias(f"share_all[{category_names[k - 1]}]"))
        columns.append((pl.col("history_length") - pl.col(f"_seen{k}").shift(1).over(user))
                       .fill_null(NEVER).alias(f"recency[{category_names[k - 1]}]"))
    columns += [(pl.col(f"_behavior{j}") / n).fill_nan(0).alias(f"behavior_share[{j}]") for j in behaviors]
    columns += [
        (pl.col("switches") / (n - 1)).fill_nan(0).clip(0, 1).alias("switch_rate"),
        pl.col("_gap").shift(1).over(user).clip(lower_bound=0).cast(pl.Float64).log1p().fill_null(-1.0)
        .alias("log_last_gap"),
    ]
    out = frame.with_columns(columns)
    shares_all = [f"share_all[{category_names[k - 1]}]" for k in cats]
    out = out.with_columns(
        (-pl.sum_horizontal([pl.when(pl.col(c) > 0).then(pl.col(c) * pl.col(c).log()).otherwise(0.0)
                             for c in shares_all])).alias("entropy"),
        pl.sum_horizontal([(pl.col(c) > 0).cast(pl.Int32) for c in shares_all]).alias("distinct"),
    )
    names = [c for c in out.columns if not c.startswith("_") and c not in ("user", "category", "timestamp", "behavior")]
    if users is not None:
        attributes = [c for c in users.columns if c not in ("raw", "dense") and users[c].dtype.is_numeric()]
        profile = users.select(pl.col("dense").alias("user"), *(pl.col(a).alias(f"profile_{a}") for a in attributes))
        out = out.join(profile, on="user", how="left", maintain_order="left")
        names += [f"profile_{a}" for a in attributes]
    return out.select(names).cast(pl.Float32).fill_null(-1.0).to_numpy(), names


class ProfileHeads(nn.Module):
    """h: (..., C+1) predicted category distribution -> log-probabilities (padding masked)."""

    item_table = None

    def category_logits(self, h: torch.Tensor) -> torch.Tensor:
        logits = h.clamp(min=1e-12).log()
        return logits.index_fill(-1, torch.tensor([0], device=h.device), float("-inf"))

    def item_scores(self, h: torch.Tensor, items: slice | torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("profile models predict categories only (task=next_category)")


class ProfileModel(nn.Module):
    """A scikit-learn classifier on `profile_features`, fitted on every training position by
    `fit_data` (no gradient training), then evaluated through the same module and metrics as
    the neural models: a target's features are looked up by its (user, position)."""

    supported_tasks = frozenset({"next_category"})
    reads_window = False  # features come from the whole history, looked up per target

    def __init__(self, meta: DatasetMeta, windows: tuple[int, ...] = (1, 5, 20),
                 max_train_rows: Annotated[int | None, AT_LEAST_ONE] = None, seed: Seed = 0):
        super().__init__()
        self.num_categories, self.num_behaviors = meta.num_categories, meta.num_behaviors
        self.category_names = meta.category_names
        self.windows, self.max_train_rows, self.seed = tuple(windows), max_train_rows, seed
        self.heads = ProfileHeads()
        self.estimator = None
        self.features: torch.Tensor | None = None

    def make_estimator(self):
        raise NotImplementedError

    def fit_data(self, data: FitData) -> dict[str, str]:
        """Fits on the training rows; returns the files to write beside the run (name -> text)."""
        features, self.names = profile_features(data.events, data.users, self.category_names, self.num_behaviors,
                                                self.windows)
        self.features, self.offsets = torch.from_numpy(features), data.offsets
        rows = data.train_rows
        if self.max_train_rows and rows.numel() > self.max_train_rows:
            keep = torch.randperm(rows.numel(), generator=torch.Generator().manual_seed(self.seed))
            rows = rows[keep[: self.max_train_rows]].sort().values
        self.estimator = self.make_estimator()
        log.info("fitting %s on %d training positions x %d features", type(self.estimator).__name__, rows.numel(),
                 len(self.names))
        self.estimator.fit(features[rows.numpy()], data.labels[rows].numpy())
        self.columns = torch.as_tensor(self.estimator.classes_, dtype=torch.long)  # classes seen in training
        importances = self.importances(data)
        top = dict(sorted(importances.items(), key=lambda kv: -kv[1]))
        return {"feature_importances.json": json.dumps(top, indent=2), **self.explain()}

    importance_kind = "impurity"  # what `importances` measures (reported with the figures)

    def importances(self, data: FitData) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.estimator.feature_importances_)}

    def explain(self) -> dict[str, str]:
        return {}

    def target_rows(self, batch: dict) -> torch.Tensor:
        return self.offsets[batch["user"]] + batch["target_position"]

    def forward(self, batch: dict) -> torch.Tensor:
        """(B, 1, C+1) predicted next-category distribution of each target."""
        if self.estimator is None:
            raise RuntimeError(f"{type(self).__name__}: call fit_data(data) before predicting")
        if "target_position" not in batch:
            raise ValueError(f"{type(self).__name__} predicts evaluation targets only (it is not a window model)")
        x = self.features[self.target_rows(batch).cpu()].numpy()
        probs = torch.zeros(x.shape[0], self.num_categories + 1, dtype=torch.float32)
        probs[:, self.columns] = torch.from_numpy(self.estimator.predict_proba(x)).float()
        return probs.to(batch["user"].device).unsqueeze(1)
