"""Migration detection latency: switches, latencies, misses and censoring on hand-made
trajectories, and the metric end to end on the simulator with held-out users."""

import json

import pytest
import torch

from research.migration import latency_summary, switch_latencies
from tests.conftest import TINY_SYNTHETIC


def trajectories():
    """(user, position, predicted, state, previous_state) of every target, shuffled."""
    rows = []

    def user(u, states, predicted, positions=None):
        for p in positions or range(1, len(states)):
            rows.append((u, p, predicted[p], states[p], states[p - 1]))

    # switches at 2 (to 2: first predicted at 4 -> latency 2), at 5 (to 3: never predicted before
    # the switch at 7 -> missed), at 7 (to 1: never predicted before the end -> censored)
    user(0, states=[1, 1, 2, 2, 2, 3, 3, 1, 1], predicted=[0, 1, 1, 1, 2, 2, 2, 3, 3])
    # a switch at position 1, predicted at once (latency 0), then one false alarm at position 2
    user(1, states=[2, 3, 3, 3], predicted=[0, 3, 1, 3])
    # a switch at 2, then a gap in the targets (position 3 missing): censored, not missed
    user(2, states=[1, 1, 2, 2, 2, 2], predicted=[0, 1, 1, 2, 2, 2], positions=[1, 2, 4, 5])
    t = torch.tensor(rows)
    t = t[torch.randperm(t.size(0), generator=torch.Generator().manual_seed(0))]
    return t.unbind(1)


def test_latency_counts_events_of_the_new_interest_seen_before_it_is_predicted():
    latency, missed, alarms = switch_latencies(*trajectories())
    assert latency.tolist() == [2, -1, 0]
    assert missed.tolist() == [False, True, False]
    # events after an interest was found: user 1 at positions 2 and 3 (one wrong leader), user 2
    # at position 5 (after its second run found state 2 at position 4); user 0 has none
    assert alarms == (1, 3)
    summary = latency_summary(latency, missed, alarms)
    assert summary["false_alarm_rate"] == pytest.approx(1 / 3)
    assert summary["switches"] == 3 and summary["missed_rate"] == pytest.approx(1 / 3)
    assert summary["latency_median"] == 1.0 and summary["latency_mean"] == 1.0


def test_no_targets_give_no_switches():
    empty = torch.zeros(0, dtype=torch.long)
    latency, missed, _ = switch_latencies(empty, empty, empty, empty, empty)
    assert latency.numel() == 0 and latency_summary(latency, missed)["switches"] == 0


def test_migration_latency_is_reported_on_held_out_users_of_the_simulator(make_cfg, tmp_path):
    from research.train import run

    cfg = make_cfg("model=oracle", "task=next_category", "split=user_holdout", "eval.migration_latency=true",
                   *TINY_SYNTHETIC)
    results = run(cfg)
    for split in ("val", "test"):
        assert results[f"{split}/migration/switches"] > 10
        assert 0 <= results[f"{split}/migration/latency_median"] <= results[f"{split}/migration/latency_p90"]
        assert 0 <= results[f"{split}/migration/missed_rate"] < 1
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test/migration/switches"] > 10


def test_migration_latency_refuses_leave_one_out_before_building_data(make_cfg, tmp_path):
    from research.errors import IncompatibleConfig
    from research.train import run

    with pytest.raises(IncompatibleConfig, match="split=user_holdout"):
        run(make_cfg("model=gru", "eval.migration_latency=true"))
    assert not (tmp_path / "cache").exists()


def test_re_evaluating_a_run_reproduces_its_metrics_and_adds_new_ones(make_cfg, tmp_path):
    from research.evaluate import evaluate
    from research.train import run

    cfg = make_cfg("model=gru", "task=next_category", "split=user_holdout", "eval.migration_latency=true",
                   "trainer.max_epochs=2", *TINY_SYNTHETIC)
    first = run(cfg)
    metrics = tmp_path / "run" / "metrics.json"
    metrics.write_text(json.dumps({k: v for k, v in first.items() if "false_alarm" not in k}))  # an older run
    again = evaluate(tmp_path / "run")
    assert again == pytest.approx(first)  # same checkpoint, same numbers, and the missing metric is back
