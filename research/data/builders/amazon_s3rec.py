"""Amazon review datasets in the S3-Rec preprocessed format (Zhou et al., CIKM 2020).

`<root>/<name>.txt`: one user per line, `user item item ...` in chronological order (no
timestamps; the position is the time). `<root>/<name>_item2attributes.json`:
`{item: [attribute, ...]}` (brand, then sub-categories).

Coarse interest category per item (documented rule): among the attributes that cover at most
`max_attribute_coverage` of the catalogue, take the item's attribute that is most frequent
over all items (ties: smallest attribute id). Items without such an attribute get category -1.
On Beauty this yields 7 categories (no attribute exceeds 50% coverage; the largest covers 31.5%).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from research.data.cache import file_digest
from research.data.schema import RawLog

NO_CATEGORY = -1


class AmazonS3RecBuilder:
    def __init__(self, root: str, name: str = "Beauty", max_attribute_coverage: float = 0.5):
        self.root = Path(root).expanduser().resolve()
        self.dataset = name
        self.name = f"amazon_s3rec_{name}"
        self.max_attribute_coverage = max_attribute_coverage
        self.sequences_path = self.root / f"{name}.txt"
        self.attributes_path = self.root / f"{name}_item2attributes.json"
        for path in (self.sequences_path, self.attributes_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: not found (data.root={root}, data.name={name})")

    def fingerprint(self) -> dict:
        return {
            "builder": "amazon_s3rec",
            "name": self.dataset,
            "max_attribute_coverage": self.max_attribute_coverage,
            "sequences": file_digest(self.sequences_path),
            "attributes": file_digest(self.attributes_path),
        }

    def load(self) -> RawLog:
        events = read_sequences(self.sequences_path)
        categories, info = item_categories(self.attributes_path, self.max_attribute_coverage)
        events = events.join(categories, on="item_id", how="left").with_columns(
            pl.col("category_id").fill_null(NO_CATEGORY)
        )
        info["items_without_category"] = int(
            events.filter(pl.col("category_id") == NO_CATEGORY)["item_id"].drop_nulls().n_unique()
        )
        return RawLog(events=events, info=info)


def read_sequences(path: Path) -> pl.DataFrame:
    """One row per event: user_id, item_id, timestamp (position in the line), order."""
    lines = pl.read_csv(
        path, has_header=False, new_columns=["line"], separator="\x1f", quote_char=None, schema={"line": pl.Utf8}
    )
    tokens = lines.select(pl.col("line").str.strip_chars().str.split(" ").alias("tokens"))
    events = (
        tokens.select(
            pl.col("tokens").list.first().alias("user_id"),
            pl.col("tokens").list.slice(1).alias("item_id"),
        )
        .with_columns(pl.int_ranges(0, pl.col("item_id").list.len()).alias("timestamp"))
        .explode("item_id", "timestamp")
        .filter(pl.col("item_id").is_not_null())
    )
    # Non-numeric tokens become nulls, which cleaning counts as malformed rows.
    return events.with_columns(
        pl.col("user_id").cast(pl.Int64, strict=False),
        pl.col("item_id").cast(pl.Int64, strict=False),
        pl.col("timestamp").cast(pl.Int64),
        pl.int_range(0, pl.len(), dtype=pl.Int64).alias("order"),
    )


def item_categories(path: Path, max_coverage: float) -> tuple[pl.DataFrame, dict]:
    """item_id -> category_id by the rule in the module docstring."""
    try:
        mapping = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    pairs = pl.DataFrame(
        {"item_id": list(mapping.keys()), "attribute": list(mapping.values())},
        schema={"item_id": pl.Utf8, "attribute": pl.List(pl.Int64)},
    ).with_columns(pl.col("item_id").cast(pl.Int64))
    pairs = pairs.explode("attribute").drop_nulls().unique()
    num_items = len(mapping)
    coverage = pairs.group_by("attribute").len().with_columns((pl.col("len") / num_items).alias("coverage"))
    kept = coverage.filter(pl.col("coverage") <= max_coverage)
    categories = (
        pairs.join(kept, on="attribute")
        .sort(["item_id", "len", "attribute"], descending=[False, True, False])
        .unique(subset="item_id", keep="first", maintain_order=True)
        .select("item_id", pl.col("attribute").alias("category_id"))
    )
    info = {
        "category_rule": f"most frequent attribute with coverage <= {max_coverage}",
        "attributes_dropped_for_coverage": coverage.height - kept.height,
        "categories": categories["category_id"].n_unique(),
    }
    return categories, info
