"""Synthetic e-commerce logs whose users carry a hidden, migrating interest category.

Generative model (every parameter is returned, so the Bayes-optimal predictor is computable):

* Each user has a profile (age_band, gender, region, activity); group g = age_band * 2 + gender.
* The hidden interest state is a Markov chain per user: state_0 ~ initial[g] and
  state_{t+1} ~ transition[g, state_t], where transition[g] = (1 - s_g) I + s_g Q_g; s_g is the
  group's switch probability (younger bands switch more) and Q_g (zero diagonal) blends a shared
  category-affinity matrix with the group's category preferences (which are also initial[g]).
* Each event emits an item: its category is the hidden state with probability 1 - eps, otherwise
  uniform over the other C - 1 categories; the item inside that category follows Zipf popularity,
  so P(item | state) = SimulatorParams.emission_matrix()[state, item].
* Behaviour (pv/cart/fav/buy), sequence length and time gaps are independent of the hidden state;
  length and gaps depend on activity only.

A drifting world (`drift_periods` > 1): the clock is cut into periods of `period_days`, and the
jump matrices and the catalogue change from period to period, the way the source documents'
drivers move a whole population: a slow `trend` (the groups' preferences move toward new ones),
a `season` (each category's pull rises and falls on a cycle), `campaigns` (for a few days a
share of all switches goes to one promoted category) and `item_churn` (items launch and retire
during the log; the most popular item of each category stays). The chain moves with the
parameters in force at the user's previous event; an event's item is drawn from the catalogue
in force at its own time. Every period's parameters are kept (SimulatorParams), so the oracle
stays exact in every window. With one period the log is the stationary one, bit for bit.
"""

from __future__ import annotations

import math
import os
import typing
from dataclasses import dataclass, fields
from typing import Annotated, Any

import numpy as np
import polars as pl

from research.bounds import NON_NEGATIVE, POSITIVE, UNIT, Between, Count, Fraction, Rate, Seed

NUM_AGE_BANDS, NUM_GENDERS, NUM_REGIONS = 5, 2, 4
NUM_GROUPS = NUM_AGE_BANDS * NUM_GENDERS
AGE_PROBS = np.array([0.15, 0.30, 0.25, 0.18, 0.12])
AGE_SWITCH = np.linspace(1.5, 0.5, NUM_AGE_BANDS)  # mean 1, so mean over groups ~ switch_rate
GENDER_SWITCH = np.array([1.1, 0.9])
ACTIVITY_PROBS = np.array([0.3, 0.5, 0.2])  # low, mid, high
ACTIVITY_LENGTH = np.array([0.5, 1.0, 2.0])  # multiplies the expected sequence length
ACTIVITY_GAP_MEDIAN = np.array([1800.0, 600.0, 180.0])  # seconds; high activity -> shorter gaps
GAP_SIGMA = 1.5
LENGTH_DISPERSION = 3.0  # negative-binomial shape: over-dispersed lengths, as in real logs
START_WINDOW = 30 * 86_400
PREFERENCE_CONCENTRATION = 1.0
AFFINITY_WEIGHT = 0.5  # share of the shared affinity matrix in each group's jump matrix
BEHAVIOR_NAMES = ("pv", "cart", "fav", "buy")
BEHAVIOR_PROBS = np.array([0.80, 0.10, 0.05, 0.05])

_ARRAY_DTYPES = {"transition": np.float64, "initial": np.float64, "item_category": np.int64,
                 "item_popularity": np.float64, "behavior_probs": np.float64, "period_starts": np.int64}


@dataclass(frozen=True)
class SimulatorParams:
    """The generative model's parameters in every period p of the clock (one period: stationary)."""

    transition: np.ndarray  # (P, G, C, C): P(state_{t+1}=j | state_t=i, group g) in period p
    initial: np.ndarray  # (G, C): P(state_0 | group)
    item_category: np.ndarray  # (I,): category of each item
    item_popularity: np.ndarray  # (P, I): P(item | its category) in period p, 0 while not on sale
    exploration: float  # P(the event's category differs from the hidden state)
    behavior_names: tuple[str, ...]
    behavior_probs: np.ndarray
    period_starts: np.ndarray  # (P,): first second of each period (earlier times: period 0)

    def __post_init__(self) -> None:
        # Private read-only copies: a frozen params object must not change under a predictor.
        for name, dtype in _ARRAY_DTYPES.items():
            arr = np.array(vars(self)[name], dtype=dtype)
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "exploration", float(self.exploration))
        object.__setattr__(self, "behavior_names", tuple(str(n) for n in self.behavior_names))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SimulatorParams):
            return NotImplemented
        return all(np.array_equal(vars(self)[f.name], vars(other)[f.name]) for f in fields(self))

    def period_of(self, timestamps: np.ndarray) -> np.ndarray:
        """The period in force at each time."""
        last = self.period_starts.size - 1
        return np.clip(np.searchsorted(self.period_starts, timestamps, side="right") - 1, 0, last)

    def emission_matrix(self) -> np.ndarray:
        """(P, C, I) P(item | hidden state) in each period."""
        c = self.transition.shape[-1]
        same = self.item_category[None, :] == np.arange(c)[:, None]
        weight = np.where(same, 1.0 - self.exploration, self.exploration / (c - 1))
        return weight[None] * self.item_popularity[:, None, :]

    def save(self, path: str | os.PathLike) -> None:
        arrays = {name: vars(self)[name] for name in _ARRAY_DTYPES}
        # A file handle stops np.savez from appending ".npz" to the caller's path.
        with open(path, "wb") as fh:
            np.savez(fh, **arrays, exploration=np.float64(self.exploration),
                     behavior_names=np.array(self.behavior_names, dtype=np.str_))

    @classmethod
    def load(cls, path: str | os.PathLike) -> SimulatorParams:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in _ARRAY_DTYPES}
            return cls(**arrays, exploration=float(z["exploration"]),
                       behavior_names=tuple(z["behavior_names"].tolist()))


@dataclass(frozen=True)
class SimulatedLog:
    events: pl.DataFrame
    users: pl.DataFrame
    params: SimulatorParams


def _validate(a: dict[str, Any]) -> None:
    """For callers from Python (the config is checked when it is composed): each argument against
    the range simulate() declares, then the relations between arguments."""
    def is_int(x: Any) -> bool:
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

    def is_num(x: Any) -> bool:
        real = isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
        return real and math.isfinite(x)

    def refuse(name: str, rule: str):
        raise ValueError(f"simulator: {name} must be {rule}, got {a[name]!r}")

    for name, hint in typing.get_type_hints(simulate, include_extras=True).items():
        kind, *declared = typing.get_args(hint) if typing.get_origin(hint) is typing.Annotated else (hint,)
        if name != "return" and not ((is_int if kind is int else is_num)(a[name])
                                     and all(b.admits(a[name]) for b in declared)):
            refuse(name, " ".join(["an integer" if kind is int else "a finite number", *map(str, declared)]))
    if a["num_items"] < a["num_categories"]:
        refuse("num_items", f"an integer >= num_categories ({a['num_categories']})")
    if a["max_events"] < a["min_events"]:
        refuse("max_events", f"an integer >= min_events ({a['min_events']})")
    for name in ("trend", "season_amplitude", "campaigns", "item_churn"):
        if a[name] and a["drift_periods"] < 2:
            refuse(name, "0 in a world of one period (set drift_periods >= 2 for drift)")


def _make_items(rng: np.random.Generator, num_items: int, c: int, zipf_exponent: float
                ) -> tuple[np.ndarray, np.ndarray]:
    # Contiguous category blocks of varying size, each with at least one item.
    sizes = 1 + rng.multinomial(num_items - c, rng.dirichlet(np.full(c, 2.0)))
    item_category = np.repeat(np.arange(c), sizes)
    starts = np.cumsum(sizes) - sizes
    # Shuffle popularity ranks inside each block so that popularity is not tied to item id.
    order = np.lexsort((rng.random(num_items), item_category))
    rank = np.empty(num_items, dtype=np.int64)
    rank[order] = np.arange(num_items) - starts[item_category]
    weight = (rank + 1.0) ** -zipf_exponent
    popularity = weight / np.bincount(item_category, weights=weight, minlength=c)[item_category]
    return item_category, popularity


def _make_chain(rng: np.random.Generator, c: int, switch_rate: float, concentration: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (switch prob per group, jump matrices Q with zero diagonal, preferences, affinity)."""
    affinity = rng.dirichlet(np.full(c, concentration), size=c)
    preference = rng.dirichlet(np.full(c, PREFERENCE_CONCENTRATION), size=NUM_GROUPS)
    age, gender = np.divmod(np.arange(NUM_GROUPS), NUM_GENDERS)
    switch = np.clip(switch_rate * AGE_SWITCH[age] * GENDER_SWITCH[gender], 1e-6, 1.0 - 1e-6)
    return switch, _jump(affinity, preference), preference, affinity


def _jump(affinity: np.ndarray, preference: np.ndarray) -> np.ndarray:
    """(G, C, C) where a switch goes: the shared affinity blended with the group's preferences."""
    c = affinity.shape[0]
    jump = AFFINITY_WEIGHT * affinity[None] + (1.0 - AFFINITY_WEIGHT) * preference[:, None, :]
    jump[:, np.arange(c), np.arange(c)] = 0.0
    return jump / jump.sum(axis=2, keepdims=True)


@dataclass(frozen=True)
class Drift:
    """How the world changes from period to period (see the module docstring)."""

    periods: int = 1
    period_days: float = 1.0
    trend: float = 0.0  # share of the way to new group preferences reached in the last period
    season_amplitude: float = 0.0  # a category's pull varies by this factor around 1
    season_days: float = 14.0
    campaigns: int = 0
    campaign_days: float = 3.0
    campaign_strength: float = 0.5  # share of switches that go to the promoted category
    item_churn: float = 0.0  # share of items launched during the log, and share retired

    def make(self, rng: np.random.Generator, jump: np.ndarray, affinity: np.ndarray, item_category: np.ndarray,
             popularity: np.ndarray, start_time: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(period_starts (P,), jump matrices (P, G, C, C), item popularity (P, I))."""
        p, c = self.periods, jump.shape[-1]
        day = np.arange(p) * self.period_days  # each period's start, in days
        starts = start_time + np.round(day * 86_400).astype(np.int64)
        if p == 1:
            return starts, jump[None], popularity[None]
        later = _jump(affinity, rng.dirichlet(np.full(c, PREFERENCE_CONCENTRATION), size=NUM_GROUPS))
        share = self.trend * np.arange(p) / (p - 1)
        pulled = (1 - share)[:, None, None, None] * jump[None] + share[:, None, None, None] * later[None]
        phase = 2 * np.pi * np.arange(c) / c
        pull = 1 + self.season_amplitude * np.sin(2 * np.pi * day[:, None] / self.season_days + phase[None])
        span = p * self.period_days
        first = rng.uniform(0, max(span - self.campaign_days, 0), size=self.campaigns)
        promoted = np.eye(c)[rng.integers(0, c, size=self.campaigns)]  # (K, C)
        on = (day[:, None] + self.period_days > first[None]) & (day[:, None] < first[None] + self.campaign_days)
        campaign = on.astype(np.float64) @ promoted  # (P, C): campaigns running for each category
        target = campaign / np.maximum(campaign.sum(1, keepdims=True), 1.0)
        strength = self.campaign_strength * (campaign.sum(1) > 0)
        weights = pulled * pull[:, None, None, :]
        weights = weights / weights.sum(-1, keepdims=True)
        strength = strength[:, None, None, None]
        weights = (1 - strength) * weights + strength * target[:, None, None, :]
        weights[..., np.arange(c), np.arange(c)] = 0.0  # a switch leaves the current category
        jumps = weights / weights.sum(-1, keepdims=True)
        return starts, jumps, self._catalogue(rng, item_category, popularity, day, span)

    def _catalogue(self, rng: np.random.Generator, item_category: np.ndarray, popularity: np.ndarray,
                   day: np.ndarray, span: float) -> np.ndarray:
        """(P, I) popularity of the items on sale in each period, renormalised per category."""
        n = item_category.size
        launch = np.where(rng.random(n) < self.item_churn, rng.uniform(0, span, n), -np.inf)
        retire = np.where(rng.random(n) < self.item_churn, rng.uniform(0, span, n), np.inf)
        retire = np.maximum(retire, launch + self.period_days)  # on sale for at least one period
        order = np.lexsort((-popularity, item_category))  # by category, most popular first
        top = order[np.r_[0, np.flatnonzero(np.diff(item_category[order])) + 1]]
        launch[top], retire[top] = -np.inf, np.inf  # every category keeps an item on sale
        live = (launch[None] <= day[:, None]) & (day[:, None] < retire[None])
        weight = popularity[None] * live
        total = weight @ np.eye(item_category.max() + 1)[item_category]  # (P, C)
        return weight / total[:, item_category]


def _inverse_cdf(cdf_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index of the first cdf entry >= u, row by row (cdf rows end at exactly 1)."""
    return (cdf_rows < u[:, None]).sum(axis=1)


def _draw_lengths(rng: np.random.Generator, activity: np.ndarray, mean_events: float,
                  min_events: int, max_events: int) -> np.ndarray:
    # Shifted negative binomial; the activity multiplier averages to 1 over the population.
    target = mean_events * ACTIVITY_LENGTH[activity] / float(ACTIVITY_PROBS @ ACTIVITY_LENGTH)
    extra = np.maximum(target - min_events, 0.0)
    p_success = LENGTH_DISPERSION / (LENGTH_DISPERSION + extra)
    counts = rng.negative_binomial(LENGTH_DISPERSION, p_success)
    return np.clip(min_events + counts, min_events, max_events).astype(np.int64)


def _run_chain(rng: np.random.Generator, params: SimulatorParams, switch: np.ndarray,
               jump: np.ndarray, group: np.ndarray, activity: np.ndarray, lengths: np.ndarray,
               start_time: int, start_window: int, gap_scale: float) -> dict[str, np.ndarray]:
    """Simulate all users step by step in time; each step is vectorised over active users.
    jump: (P, G, C, C), the jump matrices of each period."""
    num_users, total = lengths.size, int(lengths.sum())
    c, eps = params.transition.shape[-1], params.exploration
    # Longest users first, so the users still active at step t are always a prefix.
    order = np.argsort(-lengths, kind="stable")
    offsets = (np.cumsum(lengths) - lengths)[order]
    active = num_users - np.cumsum(np.bincount(lengths, minlength=int(lengths.max()) + 1))[:-1]
    g, s = group[order], switch[group[order]]
    log_gap = np.log(ACTIVITY_GAP_MEDIAN * gap_scale)[activity[order]]
    jump_cdf, init_cdf = np.cumsum(jump, axis=-1), np.cumsum(params.initial, axis=1)
    jump_cdf[..., -1] = init_cdf[..., -1] = 1.0
    # every period's catalogue in one sorted array: period p's block spans (p C, (p + 1) C]
    periods, num_items = params.item_popularity.shape
    pop_cdf = np.concatenate([_category_offset_cdf(params.item_category, row) + k * c
                              for k, row in enumerate(params.item_popularity)])  # one row per period
    last_item = np.cumsum(np.bincount(params.item_category, minlength=c)) - 1
    beh_cdf = np.cumsum(params.behavior_probs)[:-1]

    small = np.int16 if c <= np.iinfo(np.int16).max else np.int32
    out = {"state": np.empty(total, small), "item": np.empty(total, np.int32),
           "behavior": np.empty(total, np.int8), "timestamp": np.empty(total, np.int64)}
    cur = _inverse_cdf(init_cdf[g], rng.random(num_users)).astype(small)
    clock = start_time + rng.integers(0, start_window, size=num_users, dtype=np.int64)
    for t, n in enumerate(active):
        cur, clock = cur[:n], clock[:n]
        if t > 0:
            # P = (1-s)I + sQ: stay with prob 1-s, else jump via Q (same law, far cheaper), with
            # the period in force at the previous event
            moves = np.flatnonzero(rng.random(n) < s[:n])
            period = params.period_of(clock[moves])
            cur[moves] = _inverse_cdf(jump_cdf[period, g[moves], cur[moves]], rng.random(moves.size))
            clock += np.ceil(rng.lognormal(log_gap[:n], GAP_SIGMA)).astype(np.int64)
        cat = cur.astype(np.int64)
        explore = np.flatnonzero(rng.random(n) < eps)
        cat[explore] = (cat[explore] + rng.integers(1, c, size=explore.size)) % c
        period = params.period_of(clock) if periods > 1 else 0  # the catalogue at the event's own time
        item = np.searchsorted(pop_cdf, cat + period * c + rng.random(n), side="right") - period * num_items
        pos = offsets[:n] + t
        out["state"][pos] = cur
        out["item"][pos] = np.minimum(item, last_item[cat])
        out["behavior"][pos] = np.searchsorted(beh_cdf, rng.random(n), side="right")
        out["timestamp"][pos] = clock
    return out


def _category_offset_cdf(item_category: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """Within-category popularity CDF shifted by the category id: block c spans (c, c+1]."""
    cum = np.cumsum(popularity)
    ends = np.cumsum(np.bincount(item_category)) - 1
    before = np.concatenate(([0.0], cum[ends[:-1]]))
    cdf = cum - before[item_category] + item_category
    # exact block ends keep c + u inside block c; items after the last one on sale share its end,
    # so a draw never lands on them
    index = np.arange(cum.size)
    last_on_sale = np.maximum.reduceat(np.where(popularity > 0, index, -1), np.r_[0, ends[:-1] + 1])  # (C,)
    tail = index >= last_on_sale[item_category]
    cdf[tail] = item_category[tail] + 1.0
    return cdf


def simulate(*, num_users: Count = 2000, num_items: Count = 1000, num_categories: Annotated[int, Between(low=2)] = 10,
             mean_events: Annotated[float, POSITIVE] = 60.0, min_events: Count = 10, max_events: Count = 200,
             switch_rate: Fraction = 0.1, exploration: Rate = 0.2, zipf_exponent: Annotated[float, NON_NEGATIVE] = 1.1,
             affinity_concentration: Annotated[float, POSITIVE] = 0.5, start_time: int = 1_700_000_000,
             gap_scale: Annotated[float, POSITIVE] = 1.0, drift_periods: Count = 1,
             period_days: Annotated[float, POSITIVE] = 1.0, trend: Annotated[float, UNIT] = 0.0,
             season_amplitude: Rate = 0.0, season_days: Annotated[float, POSITIVE] = 14.0,
             campaigns: Annotated[int, NON_NEGATIVE] = 0, campaign_days: Annotated[float, POSITIVE] = 3.0,
             campaign_strength: Annotated[float, UNIT] = 0.5, item_churn: Rate = 0.0,
             seed: Seed = 0) -> SimulatedLog:
    """Simulate a behaviour log; fully determined by the arguments (one generator, fixed order;
    the drift draws from a second one, so a stationary log is the same with or without it).
    `gap_scale` stretches the time between a user's events (users then span more periods).
    The declared ranges are checked at compose time (research.config); the relations between
    arguments (num_items >= num_categories, max_events >= min_events, drift needs periods) here."""
    _validate(locals())
    rng = np.random.default_rng(seed)
    item_category, popularity = _make_items(rng, num_items, num_categories, zipf_exponent)
    switch, jump, preference, affinity = _make_chain(rng, num_categories, switch_rate, affinity_concentration)
    drift = Drift(drift_periods, period_days, trend, season_amplitude, season_days, campaigns, campaign_days,
                  campaign_strength, item_churn)
    period_starts, jumps, popularities = drift.make(np.random.default_rng([seed, 1]), jump, affinity, item_category,
                                                    popularity, start_time)
    eye = np.eye(num_categories)
    params = SimulatorParams(
        transition=(1.0 - switch)[None, :, None, None] * eye + switch[None, :, None, None] * jumps,
        initial=preference, item_category=item_category, item_popularity=popularities,
        exploration=exploration, behavior_names=BEHAVIOR_NAMES, behavior_probs=BEHAVIOR_PROBS,
        period_starts=period_starts)

    age = rng.choice(NUM_AGE_BANDS, size=num_users, p=AGE_PROBS)
    gender = rng.integers(0, NUM_GENDERS, size=num_users)
    region = rng.integers(0, NUM_REGIONS, size=num_users)
    activity = rng.choice(ACTIVITY_PROBS.size, size=num_users, p=ACTIVITY_PROBS)
    group = age * NUM_GENDERS + gender
    lengths = _draw_lengths(rng, activity, mean_events, min_events, max_events)
    start_window = max(START_WINDOW, round(drift_periods * period_days * 86_400))  # users arrive all along
    out = _run_chain(rng, params, switch, jumps, group, activity, lengths, start_time, start_window, gap_scale)

    users = pl.DataFrame({"user_id": np.arange(num_users), "age_band": age, "gender": gender,
                          "region": region, "activity": activity, "group": group}).cast(pl.Int64)
    item = out["item"]
    events = pl.DataFrame([
        pl.Series("user_id", np.repeat(np.arange(num_users, dtype=np.int64), lengths)),
        pl.Series("item_id", item).cast(pl.Int64),
        pl.Series("category_id", params.item_category[item]),
        pl.Series(list(params.behavior_names)).gather(out["behavior"]).alias("behavior"),
        pl.Series("timestamp", out["timestamp"]),
        pl.Series("state", out["state"]).cast(pl.Int64),
    ])
    return SimulatedLog(events=events, users=users, params=params)
