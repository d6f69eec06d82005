"""Profile features use only the events before each event (no leakage), have the values their
names promise, and the tree models fit, predict and explain themselves through research.train."""

import json

import numpy as np
import polars as pl
import pytest

from research.importances import model_class
from research.profiles import NEVER, profile_features
from tests.conftest import TINY_SYNTHETIC

NAMES = ("a", "b", "c")


def events(categories_by_user: dict[int, list[int]]) -> pl.DataFrame:
    rows = [(u, c, 100 * t + u, (t % 2) + 1) for u, cats in categories_by_user.items() for t, c in enumerate(cats)]
    return pl.DataFrame(rows, schema=["user", "category", "timestamp", "behavior"], orient="row")


def feature(x: np.ndarray, names: list[str], name: str) -> list[float]:
    return x[:, names.index(name)].tolist()


def test_features_have_the_values_their_names_promise():
    x, names = profile_features(events({0: [1, 1, 2, 1, 3]}), None, NAMES, num_behaviors=2, windows=(1, 2))
    assert feature(x, names, "history_length") == [0, 1, 2, 3, 4]
    assert feature(x, names, "share_last1[a]") == [0, 1, 1, 0, 1]  # the previous event's category
    assert feature(x, names, "share_last2[a]") == [0, 1, 1, 0.5, 0.5]
    assert feature(x, names, "share_all[a]") == pytest.approx([0, 1, 1, 2 / 3, 3 / 4])
    assert feature(x, names, "recency[b]") == [NEVER, NEVER, NEVER, 1, 2]
    assert feature(x, names, "switches") == [0, 0, 0, 1, 2]
    assert feature(x, names, "distinct") == [0, 1, 1, 2, 2]
    assert feature(x, names, "behavior_share[1]") == pytest.approx([0, 1, 0.5, 2 / 3, 0.5])
    p = np.array([3, 1]) / 4
    assert feature(x, names, "entropy")[4] == pytest.approx(float(-(p * np.log(p)).sum()), rel=1e-6)


def test_an_event_and_its_future_never_change_its_own_features():
    base = {0: [1, 2, 2, 3, 1, 1, 2], 1: [3, 3, 1, 2, 2]}
    x, _ = profile_features(events(base), None, NAMES, num_behaviors=2)
    changed = {0: [1, 2, 2, 1, 3, 3, 3], 1: base[1]}  # user 0 from position 3 on
    y, _ = profile_features(events(changed), None, NAMES, num_behaviors=2)
    np.testing.assert_array_equal(x[:4], y[:4])  # position p is described by positions < p only
    assert not np.array_equal(x[4:7], y[4:7])
    np.testing.assert_array_equal(x[7:], y[7:])  # the other user is untouched


def test_profile_attributes_join_by_user():
    users = pl.DataFrame({"raw": [10, 11], "dense": [0, 1], "age_band": [3, 1]})
    x, names = profile_features(events({0: [1, 2], 1: [3]}), users, NAMES, num_behaviors=2)
    assert feature(x, names, "profile_age_band") == [3, 3, 1]


@pytest.mark.parametrize("model", ["tree_profile", "gbdt_profile"])
def test_tree_models_fit_predict_and_explain_themselves(model, make_cfg, tmp_path):
    from research.train import run

    results = run(make_cfg(f"model={model}", "task=next_category", *TINY_SYNTHETIC, "model.max_train_rows=2000"))
    assert results["test/category_acc@1"] > 0.3  # far above 1/6 chance on the simulator's sticky interests
    importances = json.loads((tmp_path / "run" / "feature_importances.json").read_text())
    values = list(importances.values())
    assert values == sorted(values, reverse=True) and len(values) > 20
    # research.importances names the kind from the run's own model class, not from its overrides
    expected = "permutation (accuracy drop)" if model == "gbdt_profile" else "impurity"
    assert model_class(tmp_path / "run").importance_kind == expected
    if model == "tree_profile":
        rules = (tmp_path / "run" / "tree_rules.txt").read_text()
        assert "|--- " in rules and "class:" in rules
