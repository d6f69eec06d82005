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
"""

from __future__ import annotations

import math
import os
import typing
from dataclasses import dataclass, fields
from typing import Annotated, Any

import numpy as np
import polars as pl

from research.bounds import NON_NEGATIVE, POSITIVE, Between, Count, Fraction, Rate, Seed

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
                 "item_popularity": np.float64, "behavior_probs": np.float64}


@dataclass(frozen=True)
class SimulatorParams:
    transition: np.ndarray  # (G, C, C): P(state_{t+1}=j | state_t=i, group g)
    initial: np.ndarray  # (G, C): P(state_0 | group)
    item_category: np.ndarray  # (I,): category of each item
    item_popularity: np.ndarray  # (I,): P(item | its category), Zipf within each category
    exploration: float  # P(the event's category differs from the hidden state)
    behavior_names: tuple[str, ...]
    behavior_probs: np.ndarray

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

    def emission_matrix(self) -> np.ndarray:
        """(C, I) matrix of P(item | hidden state)."""
        c = self.transition.shape[1]
        same = self.item_category[None, :] == np.arange(c)[:, None]
        weight = np.where(same, 1.0 - self.exploration, self.exploration / (c - 1))
        return weight * self.item_popularity[None, :]

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
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (switch prob per group, jump matrices Q with zero diagonal, preferences)."""
    affinity = rng.dirichlet(np.full(c, concentration), size=c)
    preference = rng.dirichlet(np.full(c, PREFERENCE_CONCENTRATION), size=NUM_GROUPS)
    jump = AFFINITY_WEIGHT * affinity[None] + (1.0 - AFFINITY_WEIGHT) * preference[:, None, :]
    jump[:, np.arange(c), np.arange(c)] = 0.0
    jump /= jump.sum(axis=2, keepdims=True)
    age, gender = np.divmod(np.arange(NUM_GROUPS), NUM_GENDERS)
    switch = np.clip(switch_rate * AGE_SWITCH[age] * GENDER_SWITCH[gender], 1e-6, 1.0 - 1e-6)
    return switch, jump, preference


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
               start_time: int) -> dict[str, np.ndarray]:
    """Simulate all users step by step in time; each step is vectorised over active users."""
    num_users, total = lengths.size, int(lengths.sum())
    c, eps = params.transition.shape[1], params.exploration
    # Longest users first, so the users still active at step t are always a prefix.
    order = np.argsort(-lengths, kind="stable")
    offsets = (np.cumsum(lengths) - lengths)[order]
    active = num_users - np.cumsum(np.bincount(lengths, minlength=int(lengths.max()) + 1))[:-1]
    g, s = group[order], switch[group[order]]
    log_gap = np.log(ACTIVITY_GAP_MEDIAN)[activity[order]]
    jump_cdf, init_cdf = np.cumsum(jump, axis=2), np.cumsum(params.initial, axis=1)
    jump_cdf[..., -1] = init_cdf[..., -1] = 1.0
    pop_cdf = _category_offset_cdf(params.item_category, params.item_popularity)
    last_item = np.cumsum(np.bincount(params.item_category, minlength=c)) - 1
    beh_cdf = np.cumsum(params.behavior_probs)[:-1]

    small = np.int16 if c <= np.iinfo(np.int16).max else np.int32
    out = {"state": np.empty(total, small), "item": np.empty(total, np.int32),
           "behavior": np.empty(total, np.int8), "timestamp": np.empty(total, np.int64)}
    cur = _inverse_cdf(init_cdf[g], rng.random(num_users)).astype(small)
    clock = start_time + rng.integers(0, START_WINDOW, size=num_users, dtype=np.int64)
    for t, n in enumerate(active):
        cur, clock = cur[:n], clock[:n]
        if t > 0:
            # P = (1-s)I + sQ: stay with prob 1-s, else jump via Q (same law, far cheaper).
            moves = np.flatnonzero(rng.random(n) < s[:n])
            cur[moves] = _inverse_cdf(jump_cdf[g[moves], cur[moves]], rng.random(moves.size))
            clock += np.ceil(rng.lognormal(log_gap[:n], GAP_SIGMA)).astype(np.int64)
        cat = cur.astype(np.int64)
        explore = np.flatnonzero(rng.random(n) < eps)
        cat[explore] = (cat[explore] + rng.integers(1, c, size=explore.size)) % c
        item = np.searchsorted(pop_cdf, cat + rng.random(n), side="right")
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
    cdf[ends] = np.arange(ends.size) + 1.0  # exact block ends keep c + u inside block c
    return cdf


def simulate(*, num_users: Count = 2000, num_items: Count = 1000, num_categories: Annotated[int, Between(low=2)] = 10,
             mean_events: Annotated[float, POSITIVE] = 60.0, min_events: Count = 10, max_events: Count = 200,
             switch_rate: Fraction = 0.1, exploration: Rate = 0.2, zipf_exponent: Annotated[float, NON_NEGATIVE] = 1.1,
             affinity_concentration: Annotated[float, POSITIVE] = 0.5, start_time: int = 1_700_000_000,
             seed: Seed = 0) -> SimulatedLog:
    """Simulate a behaviour log; fully determined by the arguments (one generator, fixed order).
    The declared ranges are checked at compose time (research.config); the relations between
    arguments (num_items >= num_categories, max_events >= min_events) here."""
    _validate(locals())
    rng = np.random.default_rng(seed)
    item_category, popularity = _make_items(rng, num_items, num_categories, zipf_exponent)
    switch, jump, preference = _make_chain(rng, num_categories, switch_rate, affinity_concentration)
    eye = np.eye(num_categories)
    params = SimulatorParams(
        transition=(1.0 - switch)[:, None, None] * eye + switch[:, None, None] * jump,
        initial=preference, item_category=item_category, item_popularity=popularity,
        exploration=exploration, behavior_names=BEHAVIOR_NAMES, behavior_probs=BEHAVIOR_PROBS)

    age = rng.choice(NUM_AGE_BANDS, size=num_users, p=AGE_PROBS)
    gender = rng.integers(0, NUM_GENDERS, size=num_users)
    region = rng.integers(0, NUM_REGIONS, size=num_users)
    activity = rng.choice(ACTIVITY_PROBS.size, size=num_users, p=ACTIVITY_PROBS)
    group = age * NUM_GENDERS + gender
    lengths = _draw_lengths(rng, activity, mean_events, min_events, max_events)
    out = _run_chain(rng, params, switch, jump, group, activity, lengths, start_time)

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
