"""Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier, after LightGBM: Ke et
al., NeurIPS 2017) on interpretable profile features (research/profiles.py). Importances are
permutation importances on validation targets (the fall in accuracy when a feature is
shuffled), since boosted trees have no single impurity measure."""

from __future__ import annotations

from typing import Annotated

import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance

from research.bounds import POSITIVE, Between, Count, forwards_keywords
from research.data.schema import DatasetMeta
from research.models import FitData
from research.profiles import ProfileModel


class GBDTProfile(ProfileModel):
    @forwards_keywords(ProfileModel.__init__)
    def __init__(self, meta: DatasetMeta, max_iter: Count = 200, learning_rate: Annotated[float, POSITIVE] = 0.1,
                 max_leaf_nodes: Annotated[int, Between(low=2)] = 31, importance_rows: Count = 5000, **kwargs):
        super().__init__(meta, **kwargs)
        self.max_iter, self.learning_rate, self.max_leaf_nodes = max_iter, learning_rate, max_leaf_nodes
        self.importance_rows = importance_rows

    def make_estimator(self) -> HistGradientBoostingClassifier:
        # early stopping on an internal 10% of the training positions, never on validation targets
        return HistGradientBoostingClassifier(max_iter=self.max_iter, learning_rate=self.learning_rate,
                                              max_leaf_nodes=self.max_leaf_nodes, early_stopping=True,
                                              random_state=self.seed)

    importance_kind = "permutation (accuracy drop)"

    def importances(self, data: FitData) -> dict[str, float]:
        rows = data.val_rows
        if rows.numel() > self.importance_rows:
            pick = torch.randperm(rows.numel(), generator=torch.Generator().manual_seed(self.seed))
            rows = rows[pick[: self.importance_rows]]
        result = permutation_importance(self.estimator, self.features[rows].numpy(),
                                        data.labels[rows].numpy(), n_repeats=3,
                                        random_state=self.seed)
        return {n: float(v) for n, v in zip(self.names, result.importances_mean)}
