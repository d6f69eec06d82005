"""A single decision tree on interpretable profile features (research/profiles.py): the
decision-tree user profile of the source documents. Its rules are written as text beside the
run (`tree_rules.txt`), with impurity-based feature importances."""

from __future__ import annotations

from sklearn.tree import DecisionTreeClassifier, export_text

from research.bounds import Count, forwards_keywords
from research.data.schema import DatasetMeta
from research.profiles import ProfileModel


class TreeProfile(ProfileModel):
    @forwards_keywords(ProfileModel.__init__)
    def __init__(self, meta: DatasetMeta, max_depth: Count = 8, min_samples_leaf: Count = 50,
                 **kwargs):
        super().__init__(meta, **kwargs)
        self.max_depth, self.min_samples_leaf = max_depth, min_samples_leaf

    def make_estimator(self) -> DecisionTreeClassifier:
        return DecisionTreeClassifier(max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
                                      random_state=self.seed)

    def explain(self) -> dict[str, str]:
        return {"tree_rules.txt": export_text(self.estimator, feature_names=self.names, max_depth=self.max_depth)}
