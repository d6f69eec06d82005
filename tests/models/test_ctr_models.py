"""Click-through models (task=ctr): one logit per (history, target) example, unchanged by
history padding, computed from the history and the target only. AUGRU's two limits, and
DIEN's auxiliary loss learning. Parametrised over conf/model, so a new CTR model is checked
without a new test."""

import csv

import pytest
import torch
from hydra.utils import instantiate

from research.models.components.augru import AUGRU, AUGRUCell
from research.models.components.ctr import CTROutput
from research.train import run
from tests.conftest import TINY_SYNTHETIC, models_supporting
from tests.models.conftest import NUM_ITEMS
from tests.models.test_protocol import left_pad

CTR_MODELS = models_supporting("ctr")


def build(name, meta, make_cfg):
    torch.manual_seed(0)
    return instantiate(make_cfg(f"model={name}", "task=ctr").model, meta=meta)


def ctr_batch(history: torch.Tensor, targets: torch.Tensor, meta) -> dict:
    return {"items": history, "categories": meta.item_category[history], "behaviors": (history > 0).long(),
            "target_item": targets, "target_category": meta.item_category[targets]}


def test_there_are_ctr_models():
    assert {"base_model", "din", "gru_attention", "dien"} <= set(CTR_MODELS)


@pytest.mark.parametrize("name", CTR_MODELS)
def test_padding_does_not_change_the_click_logit(name, meta, make_cfg):
    model = build(name, meta, make_cfg).eval()
    rows = [torch.randint(1, NUM_ITEMS + 1, (n,)) for n in (1, 4, 10)]
    short = torch.stack([torch.cat([torch.zeros(10 - r.numel(), dtype=torch.long), r]) for r in rows])
    targets = torch.randint(1, NUM_ITEMS + 1, (3,))
    with torch.no_grad():
        out = model(ctr_batch(short, targets, meta))
        padded = model(ctr_batch(left_pad(short, 16), targets, meta))
    assert isinstance(out, CTROutput) and out.logits.shape == (3,) and bool(torch.isfinite(out.logits).all())
    torch.testing.assert_close(out.logits, padded.logits)


@pytest.mark.parametrize("name", CTR_MODELS)
def test_click_logit_depends_on_history_and_target_only(name, meta, make_cfg):
    """Rows are independent (eval mode), and the target changes the score."""
    model = build(name, meta, make_cfg).eval()
    history = left_pad(torch.randint(1, NUM_ITEMS + 1, (4, 6)), 8)
    targets = torch.randint(1, NUM_ITEMS + 1, (4,))
    with torch.no_grad():
        full = model(ctr_batch(history, targets, meta)).logits
        alone = model(ctr_batch(history[:1], targets[:1], meta)).logits
        other = model(ctr_batch(history, targets % NUM_ITEMS + 1, meta)).logits
    torch.testing.assert_close(full[:1], alone)
    assert not torch.allclose(full, other)


def test_augru_with_zero_attention_keeps_the_state():
    torch.manual_seed(0)
    cell = AUGRUCell(6, 5)
    x, h = torch.randn(3, 6), torch.randn(3, 5)
    torch.testing.assert_close(cell(x, h, torch.zeros(3)), h)


def test_augru_with_full_attention_is_a_gru_step():
    torch.manual_seed(0)
    cell, gru = AUGRUCell(6, 5), torch.nn.GRUCell(6, 5)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(gru, name).copy_(getattr(cell, name))
    x, h = torch.randn(3, 6), torch.randn(3, 5)
    torch.testing.assert_close(cell(x, h, torch.ones(3)), gru(x, h))
    # in between, the update gate is scaled: attention a moves the state a of the way to the GRU step
    torch.testing.assert_close(cell(x, h, torch.full((3,), 0.25)), h + 0.25 * (gru(x, h) - h))


def test_augru_skips_leading_steps_with_zero_attention():
    torch.manual_seed(0)
    augru = AUGRU(4, 3)
    x, attention = torch.randn(2, 5, 4), torch.rand(2, 5)
    padded_x = torch.cat([torch.randn(2, 3, 4), x], dim=1)  # garbage under zero attention
    padded_attention = torch.cat([torch.zeros(2, 3), attention], dim=1)
    torch.testing.assert_close(augru(x, attention), augru(padded_x, padded_attention))


def test_dien_auxiliary_loss_falls_during_training(make_cfg, tmp_path):
    run(make_cfg("model=dien", "task=ctr", "logger=csv", "trainer.max_epochs=4", "datamodule.batch_size=64",
                 *TINY_SYNTHETIC))
    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    aux = [float(r["train/aux_loss"]) for r in rows if r.get("train/aux_loss")]
    assert len(aux) == 4
    assert aux[-1] < aux[0] - 0.02, aux  # failed before the aux net normalised its tiny inputs
