"""experiments/seed_table.py: one row per cell, mean and sample std over its seeds."""

import importlib.util
import json

import pytest
import yaml

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("seed_table", ROOT / "experiments" / "seed_table.py")
seed_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seed_table)


def test_cells_are_averaged_over_their_seeds(tmp_path):
    for label, model, values in [("din", "DIN", [0.70, 0.74, 0.72]), ("dien", "DIEN", [0.80, 0.78])]:
        for seed, value in enumerate(values):
            run = tmp_path / label / f"seed{seed}"
            run.mkdir(parents=True)
            (run / "config.yaml").write_text(yaml.safe_dump({"model": {"_target_": f"research.models.x.{model}"}}))
            (run / "metrics.json").write_text(json.dumps({"test/auc": value}))
    table = {r["cell"]: r for r in seed_table.summarise(seed_table.collect(tmp_path), ["test/auc"])}
    assert table["din"]["seeds"] == 3 and table["din"]["model"] == "DIN"
    assert table["din"]["test/auc"] == pytest.approx(0.72)
    assert table["din"]["test/auc std"] == pytest.approx(0.02)  # sample std (n - 1)
    assert table["dien"]["test/auc std"] == pytest.approx(2 ** 0.5 * 0.01)
    assert "| din | DIN | 3 | 0.7200 ± 0.0200 |" in seed_table.markdown(list(table.values()), ["test/auc"])
