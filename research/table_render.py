"""Write a summarised table (records of row, dataset, metric, mean, std, n) as markdown, CSV,
LaTeX (booktabs) and a PNG bar chart with error bars. Best of our rows in bold, second
underlined; published rows (n = 0), the `relative_to` reference row, ceiling rows (an oracle) and
the `time/` columns (costs) are shown, never ranked."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from research.io import atomic_path, write_text  # noqa: E402
from research.markdown import table  # noqa: E402


def columns(spec: dict) -> list[tuple[str, str]]:
    return [(dataset, metric) for dataset in spec["datasets"] for metric in spec["metrics"]]


def row_labels(spec: dict) -> list[str]:
    return [r["label"] for r in spec["rows"]] + [p["label"] for p in spec.get("published", [])]


def ceilings(spec: dict) -> set[str]:
    """Rows marked `ceiling: true` (an oracle): shown for comparison, never ranked, dashed in curves."""
    return {row["label"] for row in spec["rows"] if row.get("ceiling")}


def ranks(spec: dict, records: list[dict]) -> dict[tuple[str, str, str], int]:
    """(row, dataset, metric) -> 0 for the best of our rows in that column, 1 for the second."""
    out = {}
    lower = set(spec.get("lower_is_better", []))
    # the `relative_to` reference and the ceilings (the oracle) are shown, not ranked
    shown = {spec.get("relative_to", {}).get("row"), *ceilings(spec)}
    for dataset, metric in columns(spec):
        if metric.startswith("time/"):  # a cost (seconds, epochs), reported beside the scores, not a score
            continue
        ours = [r for r in records if r["dataset"] == dataset and r["metric"] == metric and r["n"] > 0
                and r["row"] not in shown]
        ours.sort(key=lambda r: r["mean"], reverse=metric not in lower)
        for place, r in enumerate(ours[:2]):
            out[(r["row"], dataset, metric)] = place
    return out


def cell_text(record: dict | None, place: int | None, bold: tuple[str, str], second: tuple[str, str]) -> str:
    if record is None:
        return ""
    text = f"{record['mean']:.4f}" if record["n"] <= 1 else f"{record['mean']:.4f} ± {record['std']:.4f}"
    if place == 0:
        return bold[0] + text + bold[1]
    if place == 1:
        return second[0] + text + second[1]
    return text


def grid_columns(spec: dict) -> list:
    return spec["metrics"] if long_layout(spec) else columns(spec)


def long_layout(spec: dict) -> bool:
    """`layout: long`: one row per (dataset, model), one column per metric; for many datasets
    (a grid of simulator settings) that would not fit side by side."""
    return spec.get("layout", "wide") == "long"


def grid(spec: dict, records: list[dict], bold, second) -> list[list[str]]:
    index = {(r["row"], r["dataset"], r["metric"]): r for r in records}
    place = ranks(spec, records)
    published = {p["label"] for p in spec.get("published", [])}

    def cells(label: str, pairs) -> list[str]:
        return [cell_text(index.get((label, d, m)), place.get((label, d, m)), bold, second) for d, m in pairs]

    body = []
    if long_layout(spec):
        for dataset in spec["datasets"]:
            for label in row_labels(spec):
                if any((label, dataset, m) in index for m in spec["metrics"]):
                    body.append([dataset, label, *cells(label, [(dataset, m) for m in spec["metrics"]])])
        return body
    for label in row_labels(spec):
        name = f"{label} (published)" if label in published else label
        body.append([name, *cells(label, columns(spec))])
    return body


def header(spec: dict) -> list[str]:
    if long_layout(spec):
        return ["data", "model", *spec["metrics"]]
    return ["model"] + [f"{d} {m}".strip() for d, m in columns(spec)]



def markdown(spec: dict, records: list[dict], command: str) -> str:
    lines = [f"# {spec.get('title', spec['name'])}", "",
             *table(header(spec), grid(spec, records, ("**", "**"), ("<u>", "</u>")))]
    seeds = ", ".join(map(str, spec["seeds"]))
    spread = f"Mean ± sample std over seeds {seeds}" if len(spec["seeds"]) > 1 else f"One seed ({seeds}), no spread"
    lines += ["", f"{spread}; best of our rows in bold, second underlined; "
                  "published rows are quoted, not rerun.", ""]
    if spec.get("fewer_seeds"):
        lines[-2] += " Fewer seeds (cells not finished yet): " + "; ".join(
            f"{label}: seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds)) or 'none'}"
            for label, seeds in spec["fewer_seeds"].items()) + "."
    if spec.get("relative_to"):
        ref = spec["relative_to"]["row"]
        lines[-2] += f" The {ref} row is the reference of the `_vs_` columns and is not ranked."
    if spec.get("protocol"):
        lines += [spec["protocol"].strip(), ""]
    if any(m.split("/")[-1].split("@")[0] in ("hit", "ndcg", "mrr") for m in spec["metrics"]):
        masking = ", ".join(map(str, spec.get("mask_history", ["?"])))
        lines += [f"Ranking: full ranking over all items; history masking (`eval.mask_history`): {masking}.", ""]
    lines += [f"Command: `{command}`", ""]
    return "\n".join(lines)


def latex(spec: dict, records: list[dict]) -> str:
    def escape(text: str) -> str:
        return text.replace("_", r"\_").replace("@", "@").replace("±", r"$\pm$").replace("%", r"\%")

    body = grid(spec, records, (r"\textbf{", "}"), (r"\underline{", "}"))
    lines = [r"\begin{tabular}{" + "l" * (len(header(spec)) - len(grid_columns(spec))) + "r" * len(grid_columns(spec))
             + "}", r"\toprule",
             " & ".join(escape(h) for h in header(spec)) + r" \\", r"\midrule"]
    lines += [" & ".join(escape(c) for c in row) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def save_figure(fig, spec: dict, path: Path) -> None:
    """Titled, laid out, written atomically."""
    fig.suptitle(spec.get("title", spec["name"]), fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def heatmaps(spec: dict, records: list[dict], path: Path) -> None:
    """Long layout: one heatmap per metric, models down, datasets across, values written in."""
    labels, datasets = row_labels(spec), list(spec["datasets"])
    index = {(r["row"], r["dataset"], r["metric"]): r["mean"] for r in records}
    metrics = spec["metrics"]
    size = (0.9 * len(datasets) * len(metrics) + 2.5, 0.45 * len(labels) + 2)
    fig, axes = plt.subplots(1, len(metrics), figsize=size, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        values = [[index.get((label, d, metric), math.nan) for d in datasets] for label in labels]
        image = ax.imshow(values, cmap="viridis_r" if metric in spec.get("lower_is_better", []) else "viridis",
                          aspect="auto")
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                if not math.isnan(v):
                    ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=7, color="white")
        ax.set_xticks(range(len(datasets)), datasets, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_title(metric, fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    save_figure(fig, spec, path)


def curves(spec: dict, records: list[dict], path: Path) -> None:
    """`layout: curves`: each score against the window (mean ± std over seeds), a line per row, a
    panel per dataset (down) and score (across); ceiling rows dashed."""
    index = {(r["row"], r["dataset"], r["metric"]): r for r in records}
    windows = sorted({int(r["metric"].split("/")[1]) for r in records if r["metric"].startswith("window/")})
    per_window = {r["metric"].split("/", 2)[2] for r in records if r["metric"].startswith("window/")}
    scores = [m for m in spec["metrics"] if m in per_window and not m.startswith("time/")]  # not the _vs_ ratios
    datasets = list(spec["datasets"])
    fig, axes = plt.subplots(len(datasets), len(scores), figsize=(4.2 * len(scores) + 1, 3.4 * len(datasets)),
                             squeeze=False)
    dashed = ceilings(spec)
    for ax, (dataset, metric) in zip(axes.flat, [(d, m) for d in datasets for m in scores]):
        for label in (row["label"] for row in spec["rows"]):
            found = [(w, index[(label, dataset, f"window/{w}/{metric}")]) for w in windows
                     if (label, dataset, f"window/{w}/{metric}") in index]
            if not found:
                continue
            x = [w for w, _ in found]
            mean = [r["mean"] for _, r in found]
            std = [0.0 if math.isnan(r["std"]) else r["std"] for _, r in found]
            style = {"color": "black", "linestyle": "--"} if label in dashed else {}
            line, = ax.plot(x, mean, marker="o", markersize=3, label=label, **style)
            ax.fill_between(x, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color=line.get_color(), alpha=0.15)
        ax.set_xlabel("window")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # windows are whole numbers
        ax.set_title(f"{dataset} {metric}".strip(), fontsize=9)
        ax.legend(fontsize=7)
    save_figure(fig, spec, path)


def chart(spec: dict, records: list[dict], path: Path) -> None:
    if long_layout(spec):
        heatmaps(spec, records, path)
        return
    if spec.get("layout") == "curves":
        curves(spec, records, path)
        return
    cols = columns(spec)
    labels = row_labels(spec)
    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols) + 1, 3.6), squeeze=False)
    index = {(r["row"], r["dataset"], r["metric"]): r for r in records}
    for ax, (dataset, metric) in zip(axes[0], cols):
        found = [(label, index[(label, dataset, metric)]) for label in labels if (label, dataset, metric) in index]
        means = [r["mean"] for _, r in found]
        errors = [0.0 if math.isnan(r["std"]) else r["std"] for _, r in found]
        bars = ax.bar(range(len(found)), means, yerr=errors, capsize=3, color="tab:blue")
        for bar, (_, r) in zip(bars, found):
            if r["n"] == 0:  # published figure
                bar.set_color("lightgray")
                bar.set_hatch("//")
        ax.set_xticks(range(len(found)), [label for label, _ in found], rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{dataset} {metric}".strip(), fontsize=9)
    save_figure(fig, spec, path)


def render(spec: dict, records: list[dict], base: Path, command: str) -> list[Path]:
    base.parent.mkdir(parents=True, exist_ok=True)
    md, csv_path, tex, png = (base.with_suffix(s) for s in (".md", ".csv", ".tex", ".png"))
    write_text(md, markdown(spec, records, command))
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["row", "dataset", "metric", "mean", "std", "n"])
        writer.writeheader()
        writer.writerows(records)
    write_text(tex, latex(spec, records))
    chart(spec, records, png)
    return [md, csv_path, tex, png]
