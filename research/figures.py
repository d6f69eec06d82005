"""Figures of interest migration: category-to-category migration matrices (simulator truth,
what is observed, what a model predicts; Beauty), one user's interest trajectory (true state,
the oracle's and a model's predicted distributions), and stay-vs-shift accuracy per model.
The notebook (notebooks/interest_migration.ipynb) draws them on small data; the command writes
them as PNGs:

    python -m research.figures --model-run RUN_DIR [--table results/oracle_gap_synthetic.csv]
                               [--beauty-root ../shared/datasets/amazon-beauty] [--out results/figures]

RUN_DIR is a finished `research.train` run on the simulator (its data is reused for the oracle).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import torch

from research import CONF
from research.cli import one_line_errors
from research.data.builders.synthetic import PARAMS_FILE
from research.data.cache import id_map
from research.data.sequences import EvalTargets
from research.data.simulator import SimulatorParams
from research.data.splits import event_positions
from research.models import latest_output
from research.runs import load_run


def observed_transitions(events: pl.DataFrame, num_categories: int, column: str = "category") -> np.ndarray:
    """(C, C) P(next event's `column` = j | this event's = i) over consecutive events of a user."""
    pairs = (events.select("user", pl.col(column).alias("a"), pl.col(column).shift(-1).over("user").alias("b"))
             .drop_nulls().group_by("a", "b").len())
    counts = np.zeros((num_categories + 1, num_categories + 1))
    counts[pairs["a"].to_numpy(), pairs["b"].to_numpy()] = pairs["len"].to_numpy()
    counts = counts[1:, 1:]
    return counts / np.maximum(counts.sum(1, keepdims=True), 1)


def hidden_transitions(directory: Path, num_categories: int) -> np.ndarray:
    """(C, C) the simulator's true transition matrix of hidden interests, in dense category
    order, averaged over profile groups weighted by their number of users (and over the periods
    of a drifting world)."""
    params = SimulatorParams.load(directory / PARAMS_FILE)
    raw = id_map(directory, "categories")["raw"].cast(pl.Int64).to_numpy()
    groups = id_map(directory, "users")["group"].to_numpy()
    weights = np.bincount(groups, minlength=params.transition.shape[1]) / groups.size
    mean = np.einsum("g,pgij->ij", weights, params.transition) / params.transition.shape[0]
    return mean[raw][:, raw][:num_categories, :num_categories]


@torch.no_grad()
def predict_targets(module, store, targets: torch.Tensor, max_len: int, batch_size: int = 1024) -> torch.Tensor:
    """(K, C+1) P(category of the target) for (user, position) targets, exactly as evaluation
    predicts them (the same window, model and category head)."""
    module.eval()
    data = EvalTargets(store, targets, max_len)
    order = torch.argsort(targets[:, 1].clamp(max=max_len), stable=True)  # EvalTargets' own row order
    out = torch.empty(targets.size(0), module.num_categories + 1)
    for start in range(0, len(data), batch_size):
        batch = data.__getitems__(list(range(start, min(start + batch_size, len(data)))))
        h = latest_output(module.model, batch)
        out[order[start:start + batch_size]] = module.next_category_log_probs(h).exp()
    return out


def predicted_transitions(module, datamodule) -> np.ndarray:
    """(C, C) the model's mean predicted next-category distribution after an event of category i."""
    store = datamodule.store
    users, positions = event_positions(store.offsets)
    keep = positions >= 1
    targets = torch.stack([users[keep], positions[keep]], 1)
    probs = predict_targets(module, store, targets, datamodule.max_len)[:, 1:].numpy()
    last = store.categories[store.offsets[targets[:, 0]] + targets[:, 1] - 1].numpy() - 1
    c = module.num_categories
    sums = np.zeros((c, c))
    np.add.at(sums, last, probs)
    return sums / np.maximum(np.bincount(last, minlength=c)[:, None], 1)


def plot_matrices(matrices: dict[str, np.ndarray], names: list[str], title: str):
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 4.0), squeeze=False)
    for ax, (label, m) in zip(axes[0], matrices.items()):
        image = ax.imshow(m, cmap="magma", vmin=0, vmax=max(float(m.max()), 1e-9))
        ax.set_title(label, fontsize=9)
        ax.set_xticks(range(len(names)), names, fontsize=7, rotation=90)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("next category", fontsize=8)
        ax.set_ylabel("current category", fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.75)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_trajectory(true_state: np.ndarray, distributions: dict[str, np.ndarray], names: list[str], title: str):
    """true_state: (P,) dense category of each target; distributions: label -> (P, C) predicted."""
    colors = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")(np.arange(len(names)) % 20)
    fig, axes = plt.subplots(len(distributions) + 1, 1, figsize=(10, 1.9 * (len(distributions) + 1)), sharex=True)
    steps = np.arange(true_state.size)
    axes[0].scatter(steps, true_state - 1, c=colors[true_state - 1], s=12)
    axes[0].set_yticks(range(len(names)), names, fontsize=6)
    axes[0].set_title("true hidden interest of each event", fontsize=9)
    for ax, (label, probs) in zip(axes[1:], distributions.items()):
        ax.stackplot(steps, probs.T, colors=colors, labels=names)
        ax.set_ylim(0, 1)
        ax.set_ylabel("P", fontsize=8)
        ax.set_title(f"{label}: predicted distribution of the next category", fontsize=9)
    axes[-1].set_xlabel("event index of the user", fontsize=8)
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, title="category")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_stay_shift(rows: list[dict], title: str):
    """rows: {model, stay, shift} (category acc@1 on stay / shift targets)."""
    fig, ax = plt.subplots(figsize=(1.0 * len(rows) + 2.5, 3.6))
    x = np.arange(len(rows))
    for offset, key, text in ((-0.2, "stay", "stay (category seen in the last 5 events)"),
                              (0.2, "shift", "shift (a category not among them)")):
        bars = ax.bar(x + offset, [r[key] for r in rows], 0.4, label=text)
        ax.bar_label(bars, fmt="%.2f", fontsize=6)  # a zero bar is still read as 0.00
    ax.set_xticks(x, [r["model"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("category acc@1")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def stay_shift_rows(table_csv: Path) -> list[dict]:
    """From a research.table CSV: each row's mean stay and shift category acc@1."""
    with open(table_csv) as f:
        wanted = ("test/stay/category_acc@1", "test/shift/category_acc@1")
        records = [r for r in csv.DictReader(f) if r["metric"] in wanted]
    rows: dict[str, dict] = {}
    for r in records:
        slice_name = "stay" if "/stay/" in r["metric"] else "shift"
        rows.setdefault(r["row"], {"model": r["row"]})[slice_name] = float(r["mean"])
    return [r for r in rows.values() if {"stay", "shift"} <= set(r)]


def trajectory(model_module, oracle_module, datamodule, user: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    store = datamodule.store
    positions = torch.arange(1, int(store.lengths[user]))
    targets = torch.stack([torch.full_like(positions, user), positions], 1)
    true_state = store.states[store.offsets[user] + positions].numpy()
    out = {}
    for label, module in (("oracle", oracle_module), ("model", model_module)):
        out[label] = predict_targets(module, store, targets, datamodule.max_len)[:, 1:].numpy()
    return true_state, out


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-run", type=Path, required=True, help="a finished research.train run on the simulator")
    parser.add_argument("--table", type=Path, default=Path("results/oracle_gap_synthetic.csv"))
    parser.add_argument("--beauty-root", type=Path)
    parser.add_argument("--user", type=int, default=None, help="user of the trajectory (default: most switches)")
    parser.add_argument("--out", type=Path, default=Path("results/figures"))
    args = parser.parse_args(argv)
    matplotlib.use("Agg")  # files only; the notebook keeps its inline backend
    args.out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name: str) -> None:
        path = args.out / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    model, datamodule = load_run(args.model_run)
    oracle, _ = load_run(args.model_run, model="oracle")
    meta, events = datamodule.meta, datamodule.data.events
    names = list(meta.category_names)
    label = type(model.model).__name__
    save(plot_matrices({"simulator truth: hidden-interest transitions": hidden_transitions(meta.artefact_dir,
                                                                                        meta.num_categories),
                        "observed: category of consecutive events": observed_transitions(events, meta.num_categories),
                        f"{label}: mean predicted next category": predicted_transitions(model, datamodule)},
                       names, "Category-to-category migration on the simulator"), "migration_matrix_simulator.png")
    user = args.user
    if user is None:  # the user whose hidden interest switches most often: the most telling trajectory
        switches = events.group_by("user").agg((pl.col("state") != pl.col("state").shift(1)).sum().alias("n"))
        user = int(switches.sort(["n", "user"], descending=[True, False])["user"][0])
    true_state, predicted = trajectory(model, oracle, datamodule, user)
    save(plot_trajectory(true_state, {"Oracle": predicted["oracle"], label: predicted["model"]}, names,
                         f"Interest trajectory of simulator user {user}"), "trajectory_simulator.png")
    if args.table.is_file():
        save(plot_stay_shift(stay_shift_rows(args.table), f"Stay vs shift accuracy ({args.table.stem})"),
             "stay_shift_simulator.png")
    if args.beauty_root:
        from hydra import compose, initialize_config_dir

        from research.train import build_datamodule

        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=["data=amazon_beauty", f"data.root={args.beauty_root.resolve()}",
                                              "paths.output_dir=."])
        beauty = build_datamodule(cfg)
        save(plot_matrices({"observed: category of consecutive events": observed_transitions(
            beauty.data.events, beauty.meta.num_categories)}, list(beauty.meta.category_names),
            "Category-to-category migration on Amazon Beauty"), "migration_matrix_beauty.png")
    print("\n".join(map(str, written)))


if __name__ == "__main__":
    main()
