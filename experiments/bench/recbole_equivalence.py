"""Does our SASRec compute what RecBole 1.2.1's SASRec computes? Weights copied from RecBole's
model into ours (`model=sasrec` at its defaults, item ids only), the same sequences in each
side's layout (RecBole pads on the right, ours on the left), then:

1. evaluation: each row's output at its latest event and its full-ranking scores;
2. training with dropout off: the loss and every parameter's gradient;
3. training with dropout off: both sides stepped by Adam (lr 1e-3, RecBole's default) on the
   same batches; the largest parameter difference after every step;
4. initialisation: each parameter's spread at construction, ours against RecBole's.

RecBole's training softmax also holds the padding item (column 0 of its logits, a row of its
item table that it initialises and trains); ours scores real items only. Checks 2 and 3 compare
ours with RecBole's model scored as ours (column 0 dropped), and report separately how much the
padding column moves RecBole's loss. Dropout draws cannot match across the two codes, so with
dropout on the sides can agree only in distribution; that is left to the side-by-side runs
(recbole_compare.py).

    python experiments/bench/recbole_equivalence.py [--num-items 12101] [--batch 256] [--steps 20] \
        [--out results/recbole_sasrec_equivalence.md]

CPU only, a few seconds; needs the bench extra (RecBole 1.2.1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from recbole_compare import _recbole_shims  # noqa: E402

from research.data.schema import DatasetMeta  # noqa: E402
from research.models import latest_output  # noqa: E402

MAX_LEN = 50  # RecBole's MAX_ITEM_LIST_LENGTH default, ours datamodule.max_len


def recbole_sasrec(num_items: int) -> nn.Module:
    """RecBole's SASRec with its own model yaml (properties/model/SASRec.yaml)."""
    _recbole_shims()
    import recbole
    from recbole.config import Config
    from recbole.model.sequential_recommender.sasrec import SASRec

    # RecBole's own yaml loader: plain YAML reads its 1e-12 as a string
    loader = Config._build_yaml_loader(None)
    props = yaml.load((Path(recbole.__file__).parent / "properties/model/SASRec.yaml").read_text(), Loader=loader)
    config = props | {"USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list",
                      "ITEM_LIST_LENGTH_FIELD": "item_length", "NEG_PREFIX": "neg_",
                      "MAX_ITEM_LIST_LENGTH": MAX_LEN, "device": torch.device("cpu")}

    class Dataset:  # what SequentialRecommender reads from a dataset: the item count, padding included
        @staticmethod
        def num(field: str) -> int:
            return num_items + 1

    return SASRec(config, Dataset())


def our_sasrec(num_items: int, overrides: list[str]) -> tuple[nn.Module, nn.Module, dict]:
    """Our model and loss from the project's configs (model=sasrec loss=ce, item ids only)."""
    meta = DatasetMeta(name="equivalence", num_items=num_items, num_categories=1, num_behaviors=0,
                       item_category=torch.ones(num_items + 1, dtype=torch.long).index_fill_(0, torch.tensor([0]), 0),
                       train_item_counts=torch.ones(num_items + 1), train_category_counts=torch.ones(2),
                       category_names=("all",))
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["model=sasrec", "loss=ce", f"datamodule.max_len={MAX_LEN}",
                                          "model.use_category=false", "model.use_behavior=false", *overrides])
    hparams = {k: cfg.model[k] for k in ("hidden_size", "num_layers", "num_heads", "dropout", "attention_dropout",
                                         "init_std")} | {"block": cfg.model.block._target_.rsplit(".", 1)[1],
                                                         "ffn": cfg.model.block.inner_factor * cfg.model.hidden_size,
                                                         "activation": cfg.model.block.activation,
                                                         "eps": cfg.model.block.eps}
    return instantiate(cfg.model, meta=meta), instantiate(cfg.loss.item, meta=meta), hparams


def parameter_map(ours: nn.Module, theirs: nn.Module) -> dict[str, str]:
    """Our parameter name -> RecBole's, for every parameter the two share. Raises if either side
    has a parameter the map leaves out (other than our category head, unused by next-item)."""
    pairs = {"embedding.items.weight": "item_embedding.weight", "positions.weight": "position_embedding.weight",
             "encoder.input_norm.weight": "LayerNorm.weight", "encoder.input_norm.bias": "LayerNorm.bias"}
    sub = {"attention.query": "multi_head_attention.query", "attention.key": "multi_head_attention.key",
           "attention.value": "multi_head_attention.value", "attention.output": "multi_head_attention.dense",
           "norm1": "multi_head_attention.LayerNorm", "ffn.0": "feed_forward.dense_1",
           "ffn.3": "feed_forward.dense_2", "norm2": "feed_forward.LayerNorm"}
    for i in range(len(ours.encoder.layers)):
        for mine, rb in sub.items():
            for kind in ("weight", "bias"):
                pairs[f"encoder.layers.{i}.{mine}.{kind}"] = f"trm_encoder.layer.{i}.{rb}.{kind}"
    our_names = {n for n, _ in ours.named_parameters() if not n.startswith("heads.category")}
    their_names = {n for n, _ in theirs.named_parameters()}
    if set(pairs) != our_names or set(pairs.values()) != their_names:
        raise RuntimeError(f"unmapped parameters: ours {sorted(our_names - set(pairs))}, "
                           f"RecBole {sorted(their_names - set(pairs.values()))}")
    return pairs


def copy_weights(ours: nn.Module, theirs: nn.Module, pairs: dict[str, str]) -> None:
    mine, rb = dict(ours.named_parameters()), dict(theirs.named_parameters())
    with torch.no_grad():
        for name, their_name in pairs.items():
            mine[name].copy_(rb[their_name])


def dropout_off(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        if "attention_dropout" in vars(module):  # ours: SDPA's dropout_p
            module.attention_dropout = 0.0


def batches(num_items: int, batch: int, count: int, seed: int):
    """`count` batches of random sequences of 1..MAX_LEN items (a quarter at full length, as the
    truncated long histories) with a target each, in both layouts."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(count):
        lengths = torch.randint(1, MAX_LEN + 1, (batch,), generator=g)
        lengths[: batch // 4] = MAX_LEN
        items = torch.randint(1, num_items + 1, (batch, MAX_LEN), generator=g)
        positions = torch.arange(MAX_LEN)
        right = items * (positions < lengths[:, None])  # RecBole: events first, padding after
        shifted = positions - (MAX_LEN - lengths[:, None])  # ours: padding first, the same events after
        left = torch.where(shifted >= 0, right.gather(1, shifted.clamp(min=0)), 0)
        targets = torch.randint(1, num_items + 1, (batch,), generator=g)
        yield right, lengths, left, targets


def our_loss(ours: nn.Module, loss: nn.Module, left: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Our training loss for one target per row (task.train_rows=prefixes), per-target mean."""
    h = ours({"items": left})[:, -1]  # (B, D): the row's target follows its latest event
    return loss(h, targets, ours.heads).mean()


def their_loss(theirs: nn.Module, right: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
               padding_column: bool) -> torch.Tensor:
    """RecBole's CE (calculate_loss) with or without the padding item in the softmax."""
    logits = theirs(right, lengths) @ theirs.item_embedding.weight.T  # (B, N+1)
    return F.cross_entropy(logits, targets) if padding_column else F.cross_entropy(logits[:, 1:], targets - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-items", type=int, default=12101, help="catalogue size (Amazon Beauty: 12101)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20, help="Adam steps for check 3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the report here (markdown) as well as printing it")
    parser.add_argument("overrides", nargs="*", help="extra overrides for our model (e.g. model/block=pre_norm)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)

    theirs = recbole_sasrec(args.num_items)
    ours, loss, hparams = our_sasrec(args.num_items, args.overrides)
    pairs = parameter_map(ours, theirs)
    mine, rb = dict(ours.named_parameters()), dict(theirs.named_parameters())
    settings = ", ".join(f"{k}={v}" for k, v in hparams.items())
    lines = [f"# Our SASRec against RecBole 1.2.1's, weight for weight (N = {args.num_items} items, "
             f"batch {args.batch}, max_len {MAX_LEN})", "",
             f"`python experiments/bench/recbole_equivalence.py --num-items {args.num_items} --batch {args.batch} "
             f"--steps {args.steps} --seed {args.seed}{''.join(' ' + o for o in args.overrides)}` (CPU, 1 thread, "
             f"torch {torch.__version__}, float32).", "",
             f"Ours: {settings}. RecBole: its SASRec.yaml. {len(pairs)} parameter tensors shared (every one "
             "of RecBole's; ours also has the category head, which next-item training does not use).", ""]

    # 4. initialisation (before copying): spread of each kind of parameter on each side
    lines += ["## Initialisation, before any copy (std of each group; for LayerNorm weights, the mean)", "",
              "| parameters | ours | RecBole |", "|---|---|---|"]
    groups = {"item table, real rows": (lambda n: n == "embedding.items.weight", slice(1, None)),
              "item table, padding row": (lambda n: n == "embedding.items.weight", slice(0, 1)),
              "positions": (lambda n: n == "positions.weight", slice(None)),
              "linear weights": (lambda n: n.startswith("encoder.layers") and "norm" not in n
                                 and n.endswith("weight"), slice(None)),
              "linear biases": (lambda n: n.startswith("encoder.layers") and "norm" not in n
                                and n.endswith("bias"), slice(None)),
              "LayerNorm weights (mean)": (lambda n: "norm" in n and n.endswith("weight"), slice(None))}
    for label, (pick, rows) in groups.items():
        stat = (lambda t: t.mean()) if "mean" in label else (lambda t: t.std() if t.numel() > 1 else t.abs().max())
        a = torch.cat([mine[n].detach()[rows].flatten() for n in pairs if pick(n)])
        b = torch.cat([rb[pairs[n]].detach()[rows].flatten() for n in pairs if pick(n)])
        lines.append(f"| {label} | {stat(a):.4f} | {stat(b):.4f} |")
    first = [mine[f"encoder.layers.{i}.attention.query.weight"] for i in range(len(ours.encoder.layers))]
    lines += ["", f"Our layers start different: max |layer0 - layer1| of the query weights = "
              f"{(first[0] - first[1]).abs().max():.4f}.", ""]

    copy_weights(ours, theirs, pairs)
    data = list(batches(args.num_items, args.batch, args.steps, args.seed))
    right, lengths, left, targets = data[0]

    # 1. evaluation
    ours.eval(), theirs.eval()
    with torch.no_grad():
        h_ours, h_theirs = latest_output(ours, {"items": left}), theirs(right, lengths)
        s_ours = ours.heads.item_scores(h_ours, slice(1, None)).T  # (B, N)
        s_theirs = theirs.full_sort_predict({"item_id_list": right, "item_length": lengths})[:, 1:]
    lines += ["## 1. Evaluation (dropout off, the model's own inference path)", "",
              "| quantity | max abs difference | scale (max abs) |", "|---|---|---|",
              f"| latest output (B, D) | {(h_ours - h_theirs).abs().max():.2e} | {h_theirs.abs().max():.2f} |",
              f"| full-ranking scores (B, N) | {(s_ours - s_theirs).abs().max():.2e} | {s_theirs.abs().max():.2f} |",
              f"| top-10 lists identical | {bool((s_ours.topk(10).indices == s_theirs.topk(10).indices).all())} | |",
              ""]

    # 2. training loss and gradients, dropout off
    ours.train(), theirs.train()
    dropout_off(ours), dropout_off(theirs)
    l_ours = our_loss(ours, loss, left, targets)
    l_theirs = their_loss(theirs, right, lengths, targets, padding_column=False)
    with torch.no_grad():
        l_padded = their_loss(theirs, right, lengths, targets, padding_column=True)
    l_ours.backward(), l_theirs.backward()
    grad_diff = max((mine[n].grad - rb[t].grad).abs().max().item() for n, t in pairs.items())
    grad_scale = max(rb[t].grad.abs().max().item() for t in pairs.values())
    worst = max(pairs, key=lambda n: (mine[n].grad - rb[pairs[n]].grad).abs().max().item())
    lines += ["## 2. One training batch, dropout off", "",
              "| quantity | ours | RecBole (scored as ours) | difference |", "|---|---|---|---|",
              f"| CE loss | {l_ours.item():.6f} | {l_theirs.item():.6f} | {abs(l_ours - l_theirs).item():.2e} |",
              f"| gradients, all {len(pairs)} tensors (max abs) | | scale {grad_scale:.2e} | {grad_diff:.2e} "
              f"(largest: `{worst}`) |", "",
              f"RecBole's own loss, padding item in the softmax: {l_padded.item():.6f} "
              f"({(l_padded - l_theirs).item():+.2e} against the same model without it).", ""]

    # 3. Adam steps on the same batches, dropout off
    for model in (ours, theirs):
        model.zero_grad()
    opt_ours, opt_theirs = torch.optim.Adam(ours.parameters(), lr=1e-3), torch.optim.Adam(theirs.parameters(), lr=1e-3)
    start = {n: p.detach().clone() for n, p in mine.items()}
    drift = []
    for right, lengths, left, targets in data:
        for opt in (opt_ours, opt_theirs):
            opt.zero_grad()
        our_loss(ours, loss, left, targets).backward()
        their_loss(theirs, right, lengths, targets, padding_column=False).backward()
        opt_ours.step(), opt_theirs.step()
        drift.append(max(((mine[n] - rb[t]).abs().max().item(), n) for n, t in pairs.items()))
    lines += [f"## 3. {args.steps} Adam steps (lr 1e-3) on the same batches, dropout off", "",
              "Largest parameter difference after steps 1, 5, 10, ...: "
              + ", ".join(f"{drift[i][0]:.1e}" for i in sorted({0, *range(4, len(drift), 5), len(drift) - 1}))
              + f" (largest in `{drift[-1][1]}`)"
              + f"; over the same steps the parameters moved up to "
              f"{max((mine[n] - start[n]).abs().max().item() for n in pairs):.1e} from where they started.", ""]

    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
