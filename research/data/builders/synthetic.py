"""The embedded default dataset: logs from the interest-migration simulator
(research/data/simulator.py), with the true hidden state of every event and the simulator's
parameters kept beside the processed data as ground truth."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from research.bounds import Seed, forwards_keywords
from research.data.schema import RawLog
from research.data.simulator import simulate

PARAMS_FILE = "simulator_params.npz"


class SyntheticBuilder:
    @forwards_keywords(simulate)  # the simulator's settings and their ranges
    def __init__(self, seed: Seed = 0, **simulator_kwargs):
        self.name = "synthetic"
        self.seed = seed
        self.simulator_kwargs = dict(simulator_kwargs)

    def fingerprint(self) -> dict:
        # params_layout: the stored parameters have a period axis (older cache entries do not)
        return {"builder": "synthetic", "params_layout": "periods", "seed": self.seed, **self.simulator_kwargs}

    def load(self) -> RawLog:
        sim = simulate(seed=self.seed, **self.simulator_kwargs)
        events = sim.events.with_columns(pl.int_range(0, pl.len(), dtype=pl.Int64).alias("order"))
        return RawLog(
            events=events,
            users=sim.users,
            info={"simulator": self.fingerprint()},
            save_artefacts=lambda directory: sim.params.save(Path(directory) / PARAMS_FILE),
        )
