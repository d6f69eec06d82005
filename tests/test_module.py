"""The LightningModule's evaluation: category distributions derived from item scores are
proper, incompatible model/task pairs fail. (Ranks and history masking: tests/test_ranking.py.)"""

import pytest
import torch

from research.train import build_datamodule, build_module
from tests.conftest import TINY_SYNTHETIC


def build(make_cfg, *overrides):
    cfg = make_cfg(*TINY_SYNTHETIC, *overrides)
    dm = build_datamodule(cfg)
    dm.setup()
    torch.manual_seed(0)
    module = build_module(cfg, dm.meta).eval()
    return module, dm


def test_category_distribution_from_item_scores_is_normalised(make_cfg):
    module, dm = build(make_cfg, "model=gru", "task=next_item")
    batch = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        h = module.model(batch)[:, -1]
        log_probs = module.next_category_log_probs(h)
    torch.testing.assert_close(log_probs.exp().sum(1), torch.ones(h.size(0)))
    assert bool((log_probs[:, 0] == float("-inf")).all())
    # the mass of a category is the summed probability of its items
    probs = torch.softmax(module.model.heads.item_scores(h, slice(None)).T, dim=-1)
    c = 2
    torch.testing.assert_close(log_probs[:, c].exp(), probs[:, dm.meta.item_category == c].sum(1))


def test_baseline_on_multi_task_fails_with_one_line(make_cfg):
    with pytest.raises(ValueError, match=r"^model Majority does not support task 'multi_task' \(supported: "):
        build(make_cfg, "model=majority", "task=multi_task")
