"""Tests for the hidden-interest e-commerce log simulator."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from research.data.simulator import SimulatedLog, SimulatorParams, simulate

EVENT_SCHEMA = {"user_id": pl.Int64, "item_id": pl.Int64, "category_id": pl.Int64,
                "behavior": pl.Utf8, "timestamp": pl.Int64, "state": pl.Int64}
USER_SCHEMA = {"user_id": pl.Int64, "age_band": pl.Int64, "gender": pl.Int64, "region": pl.Int64,
               "activity": pl.Int64, "group": pl.Int64}


@pytest.fixture(scope="module")
def big() -> SimulatedLog:
    return simulate(num_users=3000, seed=7)


@pytest.fixture(scope="module")
def small() -> SimulatedLog:
    return simulate(num_users=300, num_items=200, num_categories=6, mean_events=20.0,
                    min_events=5, max_events=40, seed=3)


def _pairs(log: SimulatedLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group, state_t, state_t+1) for every consecutive pair of events of one user."""
    ev = log.events
    uid, state = ev["user_id"].to_numpy(), ev["state"].to_numpy()
    same = uid[1:] == uid[:-1]
    group = log.users["group"].to_numpy()[uid[:-1][same]]
    return group, state[:-1][same], state[1:][same]


def _within(observed: np.ndarray, expected: np.ndarray, n: np.ndarray | float) -> bool:
    """Elementwise agreement with a binomial 4.5-sigma band (plus a little float slack)."""
    band = 4.5 * np.sqrt(expected * (1 - expected) / n) + 1e-3
    return bool(np.all(np.abs(observed - expected) <= band))


def test_deterministic_by_seed(small: SimulatedLog) -> None:
    kwargs = dict(num_users=300, num_items=200, num_categories=6, mean_events=20.0,
                  min_events=5, max_events=40)
    again = simulate(**kwargs, seed=3)
    assert again.events.equals(small.events)
    assert again.users.equals(small.users)
    assert again.params == small.params
    other = simulate(**kwargs, seed=4)
    assert not other.events.equals(small.events)
    assert other.params != small.params


def test_schema_and_shapes(small: SimulatedLog) -> None:
    assert dict(small.events.schema) == EVENT_SCHEMA
    assert dict(small.users.schema) == USER_SCHEMA
    p = small.params
    assert p.transition.shape == (1, 10, 6, 6) and p.transition.dtype == np.float64  # one period
    assert p.initial.shape == (10, 6)
    assert p.item_category.shape == (200,) and p.item_category.dtype == np.int64
    assert p.item_popularity.shape == (1, 200) and p.period_starts.shape == (1,)
    assert p.behavior_names == ("pv", "cart", "fav", "buy")
    assert p.emission_matrix().shape == (1, 6, 200)


def test_user_attributes(small: SimulatedLog) -> None:
    u = small.users
    assert u["user_id"].to_list() == list(range(300))
    for col, hi in (("age_band", 4), ("gender", 1), ("region", 3), ("activity", 2), ("group", 9)):
        assert u[col].min() >= 0 and u[col].max() <= hi
    assert (u["group"] == u["age_band"] * 2 + u["gender"]).all()


def test_events_well_formed(small: SimulatedLog) -> None:
    ev, p = small.events, small.params
    assert ev.equals(ev.sort(["user_id", "timestamp"]))
    lengths = ev.group_by("user_id").len()
    assert lengths.height == 300
    assert lengths["len"].min() >= 5 and lengths["len"].max() <= 40
    uid, ts = ev["user_id"].to_numpy(), ev["timestamp"].to_numpy()
    same = uid[1:] == uid[:-1]
    assert np.all(np.diff(ts)[same] >= 1)
    first = ts[np.r_[True, ~same]]
    assert first.min() >= 1_700_000_000 and first.max() < 1_700_000_000 + 30 * 86_400
    item = ev["item_id"].to_numpy()
    assert item.min() >= 0 and item.max() < 200
    assert np.array_equal(ev["category_id"].to_numpy(), p.item_category[item])
    assert set(ev["behavior"].unique()) <= set(p.behavior_names)
    assert ev["state"].min() >= 0 and ev["state"].max() < 6


def test_parameters_are_valid_distributions(big: SimulatedLog) -> None:
    p = big.params
    np.testing.assert_allclose(p.transition.sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(p.initial.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(p.emission_matrix().sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(p.behavior_probs.sum(), 1.0)
    diag = np.diagonal(p.transition[0], axis1=1, axis2=2)
    stay = diag[:, :1]
    assert np.all(diag == stay), "diagonal must be the constant 1 - s_g within a group"
    switch = 1.0 - stay[:, 0]
    assert np.all((switch > 0) & (switch < 1))
    np.testing.assert_allclose(switch.mean(), 0.1, rtol=1e-9)
    assert switch[0] > switch[-1], "youngest band switches more than the oldest"
    cat = p.item_category
    assert np.all(np.diff(cat) >= 0) and np.array_equal(np.unique(cat), np.arange(10))
    np.testing.assert_allclose(np.bincount(cat, weights=p.item_popularity[0]), 1.0, atol=1e-12)


def test_emission_matrix_formula() -> None:
    p = simulate(num_users=5, num_items=30, num_categories=3, exploration=0.3, seed=1).params
    emission, cat, pop = p.emission_matrix()[0], p.item_category, p.item_popularity[0]
    for s in range(3):
        for i in (0, 14, 29):
            expected = pop[i] * (0.7 if cat[i] == s else 0.15)
            assert emission[s, i] == pytest.approx(expected)


def test_category_matches_state_at_rate_one_minus_exploration(big: SimulatedLog) -> None:
    ev = big.events
    agree = (ev["category_id"] == ev["state"]).mean()
    assert abs(agree - 0.8) < 0.01
    exact = simulate(num_users=50, exploration=0.0, seed=2).events
    assert (exact["category_id"] == exact["state"]).all()


def test_empirical_switch_rate(big: SimulatedLog) -> None:
    group, prev, nxt = _pairs(big)
    switch = 1.0 - big.params.transition[0, :, 0, 0]
    observed = np.mean(prev != nxt)
    expected = switch[group].mean()
    assert abs(observed - expected) < 0.005


def test_empirical_transitions_match_one_group(big: SimulatedLog) -> None:
    group, prev, nxt = _pairs(big)
    g = np.bincount(group).argmax()
    c = big.params.transition.shape[-1]
    counts = np.zeros((c, c))
    np.add.at(counts, (prev[group == g], nxt[group == g]), 1)
    visits = counts.sum(axis=1)
    rows = visits >= 500
    assert rows.sum() >= 3
    freq = counts[rows] / visits[rows, None]
    assert _within(freq, big.params.transition[0, g][rows], visits[rows, None])


def test_initial_state_and_item_distribution(big: SimulatedLog) -> None:
    ev, p = big.events, big.params
    first = ev.group_by("user_id", maintain_order=True).first()
    groups = big.users["group"].to_numpy()
    c = p.initial.shape[1]
    observed = np.bincount(first["state"].to_numpy(), minlength=c) / len(groups)
    assert _within(observed, p.initial[groups].mean(axis=0), len(groups))
    # P(item | state) for the most frequent hidden state against the emission matrix.
    state = ev["state"].to_numpy()
    s = np.bincount(state).argmax()
    items = ev["item_id"].to_numpy()[state == s]
    observed = np.bincount(items, minlength=p.item_category.size) / items.size
    assert _within(observed, p.emission_matrix()[0, s], items.size)


def test_lengths_and_gaps_follow_activity(big: SimulatedLog) -> None:
    ev = big.events.join(big.users.select("user_id", "activity"), on="user_id")
    per_user = big.events.group_by("user_id").len().join(big.users, on="user_id")
    assert abs(per_user["len"].mean() - 60.0) < 0.15 * 60.0
    mean_len = per_user.group_by("activity").agg(pl.col("len").mean()).sort("activity")["len"]
    assert mean_len[0] < mean_len[1] < mean_len[2]
    gaps = ev.with_columns(gap=pl.col("timestamp").diff().over("user_id")).drop_nulls("gap")
    median_gap = gaps.group_by("activity").agg(pl.col("gap").median()).sort("activity")["gap"]
    assert median_gap[0] > median_gap[1] > median_gap[2]
    shares = big.events["behavior"].value_counts(normalize=True)
    pv = shares.filter(pl.col("behavior") == "pv")["proportion"].item()
    assert abs(pv - 0.8) < 0.01


def test_params_save_load_round_trip(small: SimulatedLog, tmp_path) -> None:
    path = tmp_path / "params.bin"
    small.params.save(path)
    assert path.exists(), "save must write to the exact path given"
    loaded = SimulatorParams.load(path)
    assert loaded == small.params
    assert loaded.exploration == small.params.exploration
    assert loaded.item_category.dtype == np.int64
    np.testing.assert_array_equal(loaded.emission_matrix(), small.params.emission_matrix())
    with pytest.raises(ValueError):
        loaded.transition[0, 0, 0, 0] = 0.5


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"exploration": 1.5}, "exploration"),
    ({"exploration": 1.0}, "exploration"),
    ({"exploration": -0.1}, "exploration"),
    ({"num_categories": 1}, "num_categories"),
    ({"num_items": 5}, "num_items"),
    ({"min_events": 0}, "min_events"),
    ({"min_events": 50, "max_events": 20}, "max_events"),
    ({"switch_rate": 0.0}, "switch_rate"),
    ({"switch_rate": 1.0}, "switch_rate"),
    ({"mean_events": 0.0}, "mean_events"),
    ({"num_users": 0}, "num_users"),
    ({"zipf_exponent": -1.0}, "zipf_exponent"),
    ({"affinity_concentration": 0.0}, "affinity_concentration"),
    ({"num_users": 10.5}, "num_users"),
    ({"trend": 0.5}, "trend"),
    ({"drift_periods": 4, "item_churn": 1.0}, "item_churn"),
    ({"drift_periods": 4, "campaigns": -1}, "campaigns"),
    ({"gap_scale": 0.0}, "gap_scale"),
])
def test_bad_arguments_raise(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^simulator: {name} must be"):
        simulate(**kwargs)


def test_million_events_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    log = simulate(num_users=17_000, seed=11)
    assert 800_000 < log.events.height < 1_300_000
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


DRIFTING = dict(num_users=3000, num_items=300, num_categories=6, mean_events=40.0, gap_scale=60.0, drift_periods=8,
                period_days=4.0, trend=1.0, season_amplitude=0.5, season_days=16.0, campaigns=2, campaign_days=4.0,
                campaign_strength=0.6, item_churn=0.4, seed=5)


@pytest.fixture(scope="module")
def drifting() -> SimulatedLog:
    return simulate(**DRIFTING)


def test_a_world_of_one_period_is_the_stationary_log_bit_for_bit(small: SimulatedLog) -> None:
    again = simulate(num_users=300, num_items=200, num_categories=6, mean_events=20.0, min_events=5, max_events=40,
                     seed=3, drift_periods=1, period_days=7.0, campaign_strength=0.9)
    assert again.events.equals(small.events) and again.params == small.params


def test_a_drifting_world_keeps_the_parameters_of_every_period(drifting: SimulatedLog) -> None:
    p = drifting.params
    assert p.transition.shape == (8, 10, 6, 6) and p.item_popularity.shape == (8, 300)
    assert np.all(np.diff(p.period_starts) == 4 * 86_400)
    np.testing.assert_allclose(p.transition.sum(-1), 1.0, atol=1e-12)
    per_category = p.item_popularity @ np.eye(6)[p.item_category]
    np.testing.assert_allclose(per_category, 1.0, atol=1e-12)
    stay = np.diagonal(p.transition, axis1=2, axis2=3)
    np.testing.assert_allclose(stay, np.broadcast_to(stay[:1], stay.shape))  # how often users switch stays
    assert np.abs(p.transition[0] - p.transition[-1]).max() > 0.05  # where they switch to moves
    on_sale = p.item_popularity > 0
    assert not on_sale.all(1).any() and (on_sale[0] != on_sale[-1]).sum() > 30  # items launch and retire


def test_every_event_follows_the_parameters_of_its_period(drifting: SimulatedLog) -> None:
    ev, p = drifting.events, drifting.params
    period = p.period_of(ev["timestamp"].to_numpy())
    assert np.bincount(period, minlength=8).min() > 1000  # the population is active in every period
    assert (p.item_popularity[period, ev["item_id"].to_numpy()] > 0).all()  # nothing drawn off sale
    uid, state = ev["user_id"].to_numpy(), ev["state"].to_numpy()
    same = uid[1:] == uid[:-1]
    group = drifting.users["group"].to_numpy()[uid[:-1][same]]
    before, prev, nxt = period[:-1][same], state[:-1][same], state[1:][same]
    expected = {}
    for k in (0, 7):  # the chain leaves an event with the matrices of that event's period
        pick = before == k
        counts = np.zeros((6, 6))
        np.add.at(counts, (prev[pick], nxt[pick]), 1)
        rows = p.transition[k, group[pick], prev[pick]]  # each pair's own law, averaged per row
        law = np.stack([rows[prev[pick] == i].mean(0) for i in range(6)])
        visits = counts.sum(1)
        seen = visits >= 200
        assert seen.sum() >= 4
        assert _within(counts[seen] / visits[seen, None], law[seen], visits[seen, None])
        expected[k] = law
    assert np.abs(expected[0] - expected[7]).max() > 0.02  # and the two laws differ
