"""Amazon reviews + product metadata as released by McAuley et al. (2014: SIGIR 2015 files;
2018: Ni et al., EMNLP 2019), gzipped, one record per line.

* reviews: strict JSON lines with reviewerID, asin, unixReviewTime (both releases).
* metadata: 2014 `meta_*.json.gz` lines are Python literals ("loose JSON": single quotes), with
  `categories`: a list of category paths; 2018 lines are JSON with `category`: one path.
Every review is one event; an item's category is level `category_level` of its (first) path
(level 0 is the store's root, e.g. "Beauty"; default 1), -1 when the path is shorter or the
item has no metadata. Fields are pulled out with vectorised JSON paths / regular expressions,
never a Python loop per line.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from research.data.builders.table import read_lines
from research.data.cache import file_digest
from research.data.schema import BadInput, RawLog

NO_CATEGORY = "-1"
QUOTED = r"""(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")"""  # a Python string literal, either quote


def lines(path: Path) -> pl.DataFrame:
    frame = read_lines(path)
    if frame.height == 0:
        raise BadInput(f"{path}: empty file (no records)")
    return frame


class AmazonRawBuilder:
    def __init__(self, root: str, reviews: str, meta: str, name: str = "amazon", category_level: int = 1):
        self.root = Path(root).expanduser().resolve()
        self.reviews, self.meta = self.root / reviews, self.root / meta
        self.name, self.category_level = name, category_level
        for path in (self.reviews, self.meta):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: not found (data.root={root})")

    def fingerprint(self) -> dict:
        return {"builder": "amazon_raw", "reviews": file_digest(self.reviews), "meta": file_digest(self.meta),
                "category_level": self.category_level}

    def load(self) -> RawLog:
        fields = {"user_id": "reviewerID", "item_id": "asin", "timestamp": "unixReviewTime"}  # ours: the file's
        text = pl.col("text")
        reviews = lines(self.reviews).select(
            "line", *(text.str.json_path_match(f"$.{field}").alias(column) for column, field in fields.items()))
        reviews = reviews.with_columns(pl.col("timestamp").cast(pl.Int64, strict=False))
        for column, field in fields.items():
            bad = reviews.filter(pl.col(column).is_null())
            if bad.height:
                raise BadInput(f"{self.reviews}: line {bad['line'][0]}: no valid {field} ({bad.height} such lines)")
        categories = self.item_categories()
        events = reviews.drop("line").join(categories, on="item_id", how="left", maintain_order="left").with_columns(
            pl.col("category_id").fill_null(NO_CATEGORY), pl.int_range(pl.len(), dtype=pl.Int64).alias("order"))
        info = {"source": str(self.reviews), "items_without_category": int(
            events.filter(pl.col("category_id") == NO_CATEGORY)["item_id"].n_unique())}
        return RawLog(events=events, info=info)

    def item_categories(self) -> pl.DataFrame:
        meta = lines(self.meta)
        level = self.category_level
        if meta["text"][0].lstrip().startswith("{'") or "'asin'" in meta["text"][0]:  # 2014 Python literals
            asin = pl.coalesce(pl.col("text").str.extract(r"'asin':\s*" + QUOTED, 1),
                               pl.col("text").str.extract(r"'asin':\s*" + QUOTED, 2))
            # the first category path, e.g. [['Beauty', 'Skin Care', 'Face'], [...]]
            path = pl.col("text").str.extract(r"'categories':\s*\[\[([^\]]*)\]", 1)
            parts = path.str.extract_all(QUOTED).list.eval(pl.element().str.slice(1, pl.element().str.len_chars() - 2))
        else:
            asin = pl.col("text").str.json_path_match("$.asin")
            parts = pl.col("text").str.json_path_match("$.category").str.json_decode(pl.List(pl.Utf8))
        out = meta.select("line", asin.alias("item_id"), parts.list.get(level, null_on_oob=True).alias("category_id"))
        bad = out.filter(pl.col("item_id").is_null())
        if bad.height:
            raise BadInput(f"{self.meta}: line {bad['line'][0]}: no asin ({bad.height} such lines)")
        return out.drop("line").drop_nulls("category_id").unique("item_id", keep="first", maintain_order=True)
