"""Migration detection latency on the simulator, from the true hidden state of every event.

A switch happens at position p when the hidden interest of event p differs from that of event
p-1. Its latency is the number of events of the new interest the model had seen when its
most-likely next category first equalled the new interest: the prediction for event p + k is
made from events before p + k, so k = 0 means it was anticipated, k = 3 that three events of
the new interest were needed. A switch is missed when the next switch arrives first, and
censored (left out of both) when the user's sequence ends first, or a gap in the targets
(a partial evaluation pass) hides what came next. Trajectories need consecutive targets:
split=user_holdout makes every position of a held-out user one.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric


def switch_latencies(user: torch.Tensor, position: torch.Tensor, predicted: torch.Tensor, state: torch.Tensor,
                     previous_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """Per switch: (latency in events, or -1 when not detected; True when it was missed, i.e.
    followed by another switch before detection). Censored switches are dropped. Also (false
    alarms, chances): over the events after a model has found the current interest, how often
    its most-likely category leaves it again although the interest has not moved. A predictor
    that jumps at every noisy event detects fast and raises many false alarms. All inputs are
    per target, in any order."""
    if user.numel() == 0:
        return user.new_zeros(0), user.new_zeros(0, dtype=torch.bool), (0, 0)
    order = torch.argsort(user * (int(position.max()) + 1) + position)
    user, position, predicted, state, previous_state = (t[order] for t in (user, position, predicted, state,
                                                                             previous_state))
    # a run: consecutive targets of one user; a gap (targets left out) cuts a run like a new user
    new_run = torch.ones_like(user, dtype=torch.bool)
    new_run[1:] = (user[1:] != user[:-1]) | (position[1:] - position[:-1] != 1)
    switch = (state != previous_state) & (position > 0)
    segment = torch.cumsum(switch | new_run, 0) - 1  # one hidden state within one run
    start = torch.zeros(int(segment[-1]) + 1, dtype=position.dtype).scatter_reduce(
        0, segment, position, reduce="amin", include_self=False)
    offset = position - start[segment]
    big = int(position.max()) + 1
    first_hit = torch.full_like(start, big).scatter_reduce(
        0, segment, torch.where(predicted == state, offset, big), reduce="amin", include_self=True)
    is_switch = torch.zeros_like(start, dtype=torch.bool).index_fill_(0, segment[switch], True)
    # a segment ends in a switch when the next segment starts with one inside the same run
    starts_run = torch.zeros_like(is_switch).index_fill_(0, segment[new_run], True)
    followed = torch.zeros_like(is_switch)
    followed[:-1] = ~starts_run[1:]
    detected = first_hit < big
    keep = is_switch & (detected | followed)
    after = offset > first_hit[segment]  # events of a segment after its interest was found
    false_alarms = int((after & (predicted != state)).sum())
    return torch.where(detected, first_hit, -1)[keep], (~detected & followed)[keep], (false_alarms, int(after.sum()))


def latency_summary(latency: torch.Tensor, missed: torch.Tensor, alarms: tuple[int, int] = (0, 0)) -> dict[str, float]:
    found = latency[latency >= 0].double()
    nan = float("nan")
    return {
        "false_alarm_rate": alarms[0] / alarms[1] if alarms[1] else nan,
        "switches": float(latency.numel()),
        "latency_median": float(found.quantile(0.5)) if found.numel() else nan,
        "latency_p90": float(found.quantile(0.9)) if found.numel() else nan,
        "latency_mean": float(found.mean()) if found.numel() else nan,
        "missed_rate": float(missed.double().mean()) if missed.numel() else nan,
    }


class MigrationLatency(Metric):
    """Collects (user, position, predicted category, true state, previous state) per target;
    gathered across processes under DDP before the trajectories are cut into switches."""

    full_state_update = False

    def __init__(self):
        super().__init__()
        for name in ("user", "position", "predicted", "state", "previous_state"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, user, position, predicted, state, previous_state) -> None:
        self.user.append(user)
        self.position.append(position)
        self.predicted.append(predicted)
        self.state.append(state)
        self.previous_state.append(previous_state)

    def compute(self) -> dict[str, float]:
        def cat(state):
            return torch.cat(state) if isinstance(state, list) else state

        latency, missed, alarms = switch_latencies(cat(self.user), cat(self.position), cat(self.predicted),
                                                   cat(self.state), cat(self.previous_state))
        return latency_summary(latency, missed, alarms)
