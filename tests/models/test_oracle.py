"""The simulator oracle is the exact Bayesian predictive distribution: checked against brute
-force enumeration of every hidden-state path on a tiny simulator, stationary and drifting
(every step with the parameters of its own period)."""

import itertools

import numpy as np
import polars as pl
import pytest
import torch
from hydra.utils import instantiate

from research.data.builders.synthetic import PARAMS_FILE
from research.data.simulator import SimulatorParams
from research.train import build_datamodule

TINY = ["model=oracle", "data.builder.num_users=40", "data.builder.num_items=12", "data.builder.num_categories=3",
        "data.builder.mean_events=5", "data.builder.min_events=3", "data.builder.max_events=7",
        "data.builder.switch_rate=0.3", "data.builder.exploration=0.25"]
# four 10-day periods with every kind of drift; users' events days apart, so histories cross periods
DRIFT = ["+data.builder.drift_periods=4", "+data.builder.period_days=10", "+data.builder.gap_scale=1000",
         "+data.builder.trend=0.8", "+data.builder.season_amplitude=0.5", "+data.builder.season_days=20",
         "+data.builder.campaigns=2", "+data.builder.campaign_days=10", "+data.builder.item_churn=0.4"]


def enumerate_next(params: SimulatorParams, group: int, items: list[int], times: list[int], target_time: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """P(category, item of the next event | items) by summing over all C^(n+1) state paths; the
    chain leaves event t with the transition of t's period and emits t from t's catalogue."""
    c = params.transition.shape[-1]
    emission = params.emission_matrix()
    period = params.period_of(np.array(times))
    trans = params.transition[:, group]
    next_state = np.zeros(c)
    for path in itertools.product(range(c), repeat=len(items) + 1):
        p = params.initial[group, path[0]]
        for t, item in enumerate(items):
            p *= emission[period[t], path[t], item] * trans[period[t], path[t], path[t + 1]]
        next_state[path[-1]] += p
    next_state /= next_state.sum()
    eps = params.exploration
    observed = np.full((c, c), eps / (c - 1))
    np.fill_diagonal(observed, 1 - eps)
    return next_state @ observed, next_state @ emission[params.period_of(target_time)]  # by raw id


@pytest.fixture(params=[[], DRIFT], ids=["stationary", "drifting"])
def tiny(make_cfg, request):
    cfg = make_cfg(*TINY, *request.param)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup()
    return cfg, datamodule


def test_the_oracle_equals_brute_force_enumeration_of_hidden_paths(tiny):
    cfg, datamodule = tiny
    model = instantiate(cfg.model, meta=datamodule.meta)
    batch = datamodule.test_set.__getitems__(list(range(len(datamodule.test_set))))
    with torch.no_grad():
        h = model(batch)[:, -1]
        category, item = model.heads.category_logits(h).exp(), model.heads.item_scores(h, slice(None)).T.exp()
    directory = datamodule.meta.artefact_dir
    params = SimulatorParams.load(directory / PARAMS_FILE)
    raw_item = pl.read_parquet(directory / "items.parquet").sort("dense")["raw"].to_numpy()
    group = pl.read_parquet(directory / "users.parquet").sort("dense")["group"].to_numpy()
    raw_category = [int(n) for n in datamodule.meta.category_names]
    rows, items = batch["history"]
    periods = set()
    for r in range(batch["user"].numel()):
        history = [int(raw_item[i - 1]) for i in items[rows == r]]
        times = batch["history_time"][rows == r].tolist()
        assert len(history) >= 2
        periods |= set(params.period_of(np.array(times)).tolist())
        expected_category, expected_item = enumerate_next(params, int(group[batch["user"][r]]), history, times,
                                                          int(batch["target_time"][r]))
        np.testing.assert_allclose(category[r, 1:].numpy(), expected_category[raw_category], rtol=1e-4)
        np.testing.assert_allclose(item[r, 1:].numpy(), expected_item[raw_item], rtol=1e-4, atol=1e-12)
    assert len(periods) == params.period_starts.size  # the drifting histories do cross periods


def test_the_oracle_reads_the_whole_history_not_the_window(tiny):
    cfg, datamodule = tiny
    model = instantiate(cfg.model, meta=datamodule.meta)
    batch = datamodule.test_set.__getitems__(list(range(8)))
    scrambled = batch | {"items": torch.zeros_like(batch["items"]), "categories": torch.zeros_like(batch["items"])}
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(scrambled))


def test_the_oracle_refuses_data_without_simulator_parameters(meta):  # noqa: F811
    from research.models.oracle import Oracle

    with pytest.raises(ValueError, match="model=oracle needs the simulator's parameters"):
        Oracle(meta)
