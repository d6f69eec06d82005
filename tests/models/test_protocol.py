"""Every sequence model in conf/model must be causal (or say it is not and hide what it
predicts) and padding-invariant. Parametrised over the config files, so a new model is
checked without a new test. Click-through models: tests/models/test_ctr_models.py."""

import math

import pytest
import torch
import yaml
from hydra.utils import instantiate

from research.data.schema import DatasetMeta
from research.losses import FullSoftmaxCE
from research.models import EncodesLatest, OwnObjective
from tests.conftest import CONF, model_class, models_supporting, options
from tests.models.conftest import NUM_BEHAVIORS, NUM_CATEGORIES, NUM_ITEMS

# window models; the oracle and the profile-tree models read whole histories instead
# (tests/models/test_oracle.py, tests/test_profiles.py)
WINDOW_MODELS = [m for m in models_supporting("next_item", "next_category")
                 if getattr(model_class(m), "reads_window", True)]


def variants(model: str) -> list[str]:
    """The model, and one entry per option of every config group its config file defaults to
    (e.g. each Transformer block: "sasrec model/block=pre_norm"): every variant is checked."""
    defaults = yaml.safe_load((CONF / "model" / f"{model}.yaml").read_text()).get("defaults", [])
    groups = [next(iter(d)) for d in defaults if isinstance(d, dict)]
    return [model] + [f"{model} model/{g}={o}" for g in groups for o in options(f"model/{g}")]


# constructor options that change the architecture's shape get a variant of their own
SHAPE_VARIANTS = ["gru model.embedding_size=16 model.hidden_size=24"]
SEQUENCE_MODELS = [v for m in WINDOW_MODELS for v in variants(m)] + SHAPE_VARIANTS
CAUSAL_MODELS = [v for v in SEQUENCE_MODELS if getattr(model_class(v.split()[0]), "causal", True)]


def build(name: str, meta: DatasetMeta, make_cfg) -> torch.nn.Module:
    model, *overrides = name.split()
    cfg = make_cfg(f"model={model}", *overrides, "datamodule.max_len=12")
    torch.manual_seed(0)
    return instantiate(cfg.model, meta=meta).eval()


def batch_of(items: torch.Tensor, meta: DatasetMeta) -> dict:
    return {
        "items": items,
        "categories": meta.item_category[items],
        "behaviors": torch.where(items > 0, items % NUM_BEHAVIORS + 1, 0),
    }


def left_pad(items: torch.Tensor, width: int) -> torch.Tensor:
    return torch.cat([torch.zeros(items.size(0), width - items.size(1), dtype=items.dtype), items], dim=1)


@pytest.mark.parametrize("name", CAUSAL_MODELS)
def test_future_events_cannot_change_a_past_prediction(name, meta, make_cfg):
    model = build(name, meta, make_cfg)
    items = left_pad(torch.randint(1, NUM_ITEMS + 1, (3, 8)), 12)
    changed = items.clone()
    changed[:, 9:] = torch.randint(1, NUM_ITEMS + 1, (3, 3))  # rewrite the last 3 events
    with torch.no_grad():
        h, h_changed = model(batch_of(items, meta)), model(batch_of(changed, meta))
    torch.testing.assert_close(h[:, :9], h_changed[:, :9])
    logits = model.heads.category_logits(h[:, 8])
    torch.testing.assert_close(logits, model.heads.category_logits(h_changed[:, 8]))


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_padding_does_not_change_outputs(name, meta, make_cfg):
    model = build(name, meta, make_cfg)
    rows = [torch.randint(1, NUM_ITEMS + 1, (n,)) for n in (3, 7, 10)]
    short = torch.stack([torch.cat([torch.zeros(10 - r.numel(), dtype=torch.long), r]) for r in rows])
    long = left_pad(short, 12)
    with torch.no_grad():
        h_short, h_long = model(batch_of(short, meta)), model(batch_of(long, meta))
    for i, r in enumerate(rows):
        n = r.numel()
        torch.testing.assert_close(h_short[i, -n:], h_long[i, -n:])
        torch.testing.assert_close(model.heads.item_scores(h_short[i, -1:], slice(None)),
                                   model.heads.item_scores(h_long[i, -1:], slice(None)))


@pytest.mark.parametrize("name", [m for m in SEQUENCE_MODELS if issubclass(model_class(m.split()[0]), EncodesLatest)])
def test_the_latest_output_alone_equals_the_full_pass(name, meta, make_cfg):
    """Evaluation computes only the latest position's output (EncodesLatest): the same vector
    as the full pass, for rows of every length."""
    model = build(name, meta, make_cfg)
    items = torch.stack([left_pad(torch.randint(1, NUM_ITEMS + 1, (1, n)), 12)[0] for n in (1, 5, 12)])
    with torch.no_grad():
        full, latest = model(batch_of(items, meta))[:, -1], model.latest(batch_of(items, meta))
    torch.testing.assert_close(latest, full)


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_model_interface(name, meta, make_cfg):
    model = build(name, meta, make_cfg)
    assert model.supported_tasks, "a model must declare the tasks it supports"
    items = left_pad(torch.randint(1, NUM_ITEMS + 1, (2, 5)), 12)
    with torch.no_grad():
        h = model(batch_of(items, meta))
        assert h.shape[:2] == (2, 12)
        item_logits = model.heads.item_scores(h[:, -1], slice(None)).T
        category_logits = model.heads.category_logits(h[:, -1])
    assert item_logits.shape == (2, NUM_ITEMS + 1) and category_logits.shape == (2, NUM_CATEGORIES + 1)
    assert bool((item_logits[:, 0] == float("-inf")).all()) and bool((category_logits[:, 0] == float("-inf")).all())
    assert bool(torch.isfinite(item_logits[:, 1:]).all())


NON_CAUSAL_MODELS = [m for m in SEQUENCE_MODELS if m not in CAUSAL_MODELS]


@pytest.mark.parametrize("name", NON_CAUSAL_MODELS)
def test_a_non_causal_model_lets_later_events_reach_earlier_outputs(name, meta, make_cfg):
    """`causal = False` takes a model off the causality test and onto single-target training
    (or its own objective): the declaration must be true."""
    model = build(name, meta, make_cfg)
    items = left_pad(torch.randint(1, NUM_ITEMS + 1, (3, 8)), 12)
    changed = items.clone()
    changed[:, 9:] = torch.randint(1, NUM_ITEMS + 1, (3, 3))
    with torch.no_grad():
        assert not torch.allclose(model(batch_of(items, meta))[:, :9], model(batch_of(changed, meta))[:, :9])


@pytest.mark.parametrize("name", [m for m in NON_CAUSAL_MODELS if issubclass(model_class(m.split()[0]), OwnObjective)])
def test_non_causal_models_hide_every_event_they_are_trained_to_predict(name, meta, make_cfg):
    """A bidirectional model with a training objective of its own (`training_batch`): the
    identity of an event it must predict never reaches its input. (Non-causal models without
    one train on single-target prefixes: tests/test_training_batches.py.)"""
    model = build(name, meta, make_cfg)
    items = left_pad(torch.randint(1, NUM_ITEMS + 1, (4, 9)), 12)
    window = batch_of(items[:, :-1], meta) | {
        "target_items": items[:, 1:] * (items[:, :-1] > 0),
        "target_categories": meta.item_category[items[:, 1:]] * (items[:, :-1] > 0),
        "target_behaviors": torch.where(items[:, 1:] > 0, items[:, 1:] % NUM_BEHAVIORS + 1, 0) * (items[:, :-1] > 0),
    }
    torch.manual_seed(1)
    batch = model.training_batch(window)
    hidden = batch["cloze_mask"]
    assert bool(hidden.any(1).all()), "every row predicts at least one event"
    assert torch.equal(batch["target_items"] > 0, hidden)
    changed = dict(batch)
    replacement = torch.randint(1, NUM_ITEMS + 1, batch["items"].shape)
    changed["items"] = torch.where(hidden, replacement, batch["items"])
    changed["categories"] = torch.where(hidden, meta.item_category[replacement], batch["categories"])
    changed["behaviors"] = torch.where(hidden, replacement % NUM_BEHAVIORS + 1, batch["behaviors"])
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(changed))


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_stacked_layers_start_from_different_weights(name, meta, make_cfg):
    """Every layer of a stack is initialised on its own (nn.TransformerEncoder's deep copy
    would start them identical)."""
    model = build(name, meta, make_cfg)
    stacks = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 1
              and len({type(layer) for layer in m}) == 1]
    for stack in stacks:
        first = torch.nn.utils.parameters_to_vector(stack[0].parameters())
        for layer in stack[1:]:
            assert not torch.equal(first, torch.nn.utils.parameters_to_vector(layer.parameters()))


def offers(name: str, key: str) -> bool:
    return key in yaml.safe_load((CONF / "model" / f"{name.split()[0]}.yaml").read_text())


@pytest.mark.parametrize("name", [m for m in SEQUENCE_MODELS if offers(m, "item_dropout")])
def test_item_dropout_acts_on_the_scoring_table_in_training_only(name, meta, make_cfg):
    """`model.item_dropout` reaches the table every item loss scores against (p=1 zeroes it:
    the full softmax is then uniform, log N) and leaves inference untouched."""
    model = build(f"{name} model.item_dropout=1.0", meta, make_cfg)
    items = left_pad(torch.randint(1, NUM_ITEMS + 1, (2, 5)), 12)
    with torch.no_grad():
        h = model(batch_of(items, meta))[:, -1]
        scores = model.heads.item_scores(h, slice(None)).T
        torch.testing.assert_close(scores[:, 1:], h @ model.embedding.items.weight[1:].T)
        model.train()
        assert bool((model.heads.item_scores(h, slice(None)).T[:, 1:] == 0).all())
        loss = FullSoftmaxCE()(h, items[:, -1], model.heads)
    torch.testing.assert_close(loss, torch.full((2,), math.log(NUM_ITEMS)))


@pytest.mark.parametrize("name", [m for m in SEQUENCE_MODELS if offers(m, "tie_item_table")])
def test_an_untied_output_table_is_what_items_are_scored_against_and_trained(name, meta, make_cfg):
    """`model.tie_item_table=false`: ranking and every item loss use a table of the heads' own,
    which the loss trains, and the input table is no longer what outputs are scored against."""
    model = build(f"{name} model.tie_item_table=false", meta, make_cfg)
    table = model.heads.item_table
    assert table.data_ptr() != model.embedding.items.weight.data_ptr()
    assert not table[0].any()  # padding row zero, as the input table's
    items = left_pad(torch.randint(1, NUM_ITEMS + 1, (2, 5)), 12)
    h = model(batch_of(items, meta))[:, -1]
    with torch.no_grad():
        torch.testing.assert_close(model.heads.item_scores(h, slice(None)).T[:, 1:], h @ table[1:].T)
    FullSoftmaxCE()(h, items[:, -1], model.heads).sum().backward()
    assert model.heads.items.weight.grad[1:].abs().sum() > 0
    tied = build(name, meta, make_cfg)
    assert tied.heads.item_table.data_ptr() == tied.embedding.items.weight.data_ptr()


@pytest.mark.parametrize("name", [m for m in SEQUENCE_MODELS if offers(m, "item_bias")])
def test_a_learned_item_bias_is_added_to_every_score(name, meta, make_cfg):
    """`model.item_bias=true`: ranking and the full softmax score h . item + bias[item]; the
    bias starts at zero and never lifts the padding item."""
    model = build(f"{name} model.item_bias=true", meta, make_cfg)
    bias = model.heads.item_bias
    assert not bias.any()
    with torch.no_grad():
        bias.copy_(torch.randn_like(bias))
    items = left_pad(torch.randint(1, NUM_ITEMS + 1, (2, 5)), 12)
    h = model(batch_of(items, meta))[:, -1]
    expected = h @ model.embedding.items.weight[1:].T + bias[1:]
    with torch.no_grad():
        scores = model.heads.item_scores(h, slice(None)).T
        torch.testing.assert_close(scores[:, 1:], expected)
        assert bool((scores[:, 0] == float("-inf")).all())
        torch.testing.assert_close(FullSoftmaxCE()(h, items[:, -1], model.heads),
                                   torch.nn.functional.cross_entropy(expected, items[:, -1] - 1, reduction="none"))


@pytest.mark.parametrize("name", [m for m in SEQUENCE_MODELS if offers(m, "last_only_prob")])
def test_last_only_windows_mask_exactly_their_latest_event(name, meta, make_cfg):
    items = left_pad(torch.randint(1, NUM_ITEMS + 1, (64, 9)), 12)
    window = batch_of(items[:, :-1], meta) | {
        "target_items": items[:, 1:], "target_categories": meta.item_category[items[:, 1:]],
        "target_behaviors": items[:, 1:] % NUM_BEHAVIORS + 1}
    torch.manual_seed(0)
    only_last = build(f"{name} model.last_only_prob=1.0 model.mask_prob=0.5", meta, make_cfg).training_batch(window)
    expected = torch.zeros_like(only_last["cloze_mask"])
    expected[:, -1] = True
    assert torch.equal(only_last["cloze_mask"], expected)
    cloze = build(f"{name} model.last_only_prob=0.0 model.mask_prob=0.5", meta, make_cfg).training_batch(window)
    assert 0.4 < cloze["cloze_mask"][:, -9:].float().mean() < 0.6  # the cloze share, not the latest event only
