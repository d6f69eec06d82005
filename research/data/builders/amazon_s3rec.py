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

from research.bounds import Fraction
from research.data.builders.table import read_lines
from research.data.cache import file_digest
from research.data.schema import BadInput, RawLog

NO_CATEGORY = -1


class AmazonS3RecBuilder:
    def __init__(self, root: str, name: str = "Beauty", max_attribute_coverage: Fraction = 0.5):
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
        listed = read_lines(self.sequences_path).select(pl.col("text").str.strip_chars().str.split(" ")
                                                        .list.first().n_unique()).item()
        categories, info = item_categories(self.attributes_path, self.max_attribute_coverage)
        events = events.join(categories, on="item_id", how="left").with_columns(
            pl.col("category_id").fill_null(NO_CATEGORY)
        )
        info["items_without_category"] = int(
            events.filter(pl.col("category_id") == NO_CATEGORY)["item_id"].drop_nulls().n_unique()
        )
        if info["categories"] == 0:  # every item in category -1: category metrics would read 1.0
            raise BadInput(f"{self.attributes_path}: gives no item of {self.sequences_path.name} a category "
                           f"(no attribute covering at most {self.max_attribute_coverage:.0%} of the items)")
        info["users_without_items"] = listed - events["user_id"].n_unique()  # a line with a user id only
        info["source"] = str(self.sequences_path)  # names the file in the build's messages
        return RawLog(events=events, info=info)


def read_sequences(path: Path) -> pl.DataFrame:
    """One row per event: user_id, item_id, timestamp (position in the line), order. Tokens are
    separated by any run of whitespace (the published files use one space)."""
    lines = read_lines(path)
    if lines.height == 0:
        raise BadInput(f"{path}: empty file (expected one line per user: user item item ...)")
    tokens = lines.select(pl.col("text").str.strip_chars().str.replace_all(r"\s+", " ").str.split(" ").alias("tokens"))
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


def read_attributes(path: Path) -> dict:
    """The item -> attribute ids JSON object; anything else is one BadInput naming the file."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise BadInput(f"{path}: line {line}: not UTF-8 text") from None
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadInput(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(mapping, dict):
        raise BadInput(f"{path}: expected a JSON object of item id -> list of attribute ids, "
                       f"found a {type(mapping).__name__}")
    return mapping


def first_bad_entry(mapping: dict) -> str:
    """What is wrong with the first entry that is not `"<integer id>": [<integer>, ...]` (a
    pass over the entries, run only after the vectorised read has failed)."""
    def fine(key, value) -> bool:
        return key.strip().lstrip("-").isdigit() and (value is None or (isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value)))
    bad = [(k, v) for k, v in mapping.items() if not fine(k, v)]
    key, value = bad[0]
    return f"entry {key!r}: {json.dumps(value)[:60]} ({len(bad)} such entries): expected an integer item id " \
           "and a list of integer attribute ids"


def item_categories(path: Path, max_coverage: float) -> tuple[pl.DataFrame, dict]:
    """item_id -> category_id by the rule in the module docstring."""
    mapping = read_attributes(path)
    try:
        pairs = pl.DataFrame(
            {"item_id": list(mapping.keys()), "attribute": list(mapping.values())},
            schema={"item_id": pl.Utf8, "attribute": pl.List(pl.Int64)},
        ).with_columns(pl.col("item_id").str.strip_chars().cast(pl.Int64))
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        raise BadInput(f"{path}: {first_bad_entry(mapping)}") from None
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
