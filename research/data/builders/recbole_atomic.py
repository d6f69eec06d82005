"""RecBole's atomic files, read as they are: `<root>/<name>.inter` and, optionally,
`<root>/<name>.item` (Zhao et al., CIKM 2021; recbole.io, "Atomic Files").

Both are tab-separated with a header of `field:type` (`user_id:token	item_id:token
rating:float	timestamp:float`). Every line of `.inter` is one event; ids stay text (RecBole
tokens). The time is `time_field` in whole seconds (a float such as 978300760.0 is read as its
integer; a fraction is refused with its line); without that field the file order is the time,
as in RecBole. An item's category is the first token of `category_field` in `.item` (a token
or a space-separated token_seq, e.g. `categories` or `class`). Without `.item` or that field
every item falls in one category, "-1": the run then skips the category metrics and the
stay/shift slices and says so (research/train.py), and category tasks are refused.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from research.data.builders.table import check_header, header_of, read_lines, split_fields
from research.data.cache import file_digest
from research.data.schema import BadInput, RawLog

NO_CATEGORY = "-1"
CATEGORY_FIELDS = ("categories", "category", "class", "genre")  # RecBole's own datasets use these names


def field_names(lines: pl.DataFrame, path: Path) -> dict[str, str]:
    """field name (without `:type`) -> the header's full text for it."""
    header = header_of(lines, "\t")
    check_header([h.split(":", 1)[0] for h in header], path)
    untyped = [h for h in header if ":" not in h]
    if untyped:
        raise BadInput(f"{path}: line 1: header field(s) {untyped} have no ':type' (a RecBole atomic file's "
                       "header is field:type, tab-separated)")
    return {h.split(":", 1)[0]: h for h in header}


class RecBoleAtomicBuilder:
    def __init__(self, root: str, name: str, user_field: str = "user_id", item_field: str = "item_id",
                 time_field: str = "timestamp", category_field: str | None = None):
        self.root = Path(root).expanduser().resolve()
        self.name = name
        self.inter, self.item = self.root / f"{name}.inter", self.root / f"{name}.item"
        self.user_field, self.item_field, self.time_field = user_field, item_field, time_field
        self.category_field = category_field
        if not self.inter.is_file():
            raise FileNotFoundError(f"{self.inter}: not found (data.root={root}, data.name={name})")
        if category_field is not None and not self.item.is_file():
            raise FileNotFoundError(f"{self.item}: not found (data.builder.category_field={category_field} "
                                    "needs the .item file)")

    def fingerprint(self) -> dict:
        files = [p for p in (self.inter, self.item) if p.is_file()]
        return {"builder": "recbole_atomic", "fields": [self.user_field, self.item_field, self.time_field,
                                                        self.category_field],
                **{p.name: file_digest(p) for p in files}}

    def load(self) -> RawLog:
        lines = read_lines(self.inter)
        if lines.height <= 1:
            raise BadInput(f"{self.inter}: empty file (no events)")
        names = field_names(lines, self.inter)
        for role, field in (("user_field", self.user_field), ("item_field", self.item_field)):
            if field not in names:
                raise BadInput(f"{self.inter}: no field '{field}' (data.builder.{role}) in the header {list(names)}")
        timed = self.time_field in names
        wanted = {"user_id": names[self.user_field], "item_id": names[self.item_field],
                  **({"timestamp": names[self.time_field]} if timed else {})}
        fields = split_fields(lines.slice(1), self.inter, wanted, "\t", header_of(lines, "\t"))
        events = fields.with_columns(pl.col("user_id", "item_id").str.strip_chars())
        empty = events.filter((pl.col("user_id") == "") | (pl.col("item_id") == ""))
        if empty.height:
            raise BadInput(f"{self.inter}: line {empty['line'][0]}: empty user or item id ({empty.height} such lines)")
        if timed:
            events = events.with_columns(self.whole_seconds(events))
        else:  # RecBole's rule: without a time field the order of the file is the order of events
            events = events.with_columns(pl.col("line").cast(pl.Int64).alias("timestamp"))  # its line number
        categories, info = self.item_categories()
        events = events.join(categories, on="item_id", how="left", maintain_order="left").with_columns(
            pl.col("category_id").fill_null(NO_CATEGORY), pl.int_range(pl.len(), dtype=pl.Int64).alias("order"))
        info |= {"source": str(self.inter), "time": f"field {self.time_field}" if timed else "file order",
                 "items_without_category": int(events.filter(pl.col("category_id") == NO_CATEGORY)["item_id"]
                                               .n_unique())}
        return RawLog(events=events.select("user_id", "item_id", "category_id", "timestamp", "order"), info=info)

    def whole_seconds(self, events: pl.DataFrame) -> pl.Expr:
        seconds = pl.col("timestamp").str.strip_chars().cast(pl.Float64, strict=False)
        bad = events.filter(seconds.is_null() | (seconds != seconds.floor()) | seconds.is_infinite())
        if bad.height:
            raise BadInput(f"{self.inter}: line {bad['line'][0]}, field {self.time_field}: {bad['timestamp'][0]!r} "
                           f"is not a whole number of seconds ({bad.height} such lines)")
        return seconds.cast(pl.Int64).alias("timestamp")

    def item_categories(self) -> tuple[pl.DataFrame, dict]:
        """item_id -> category_id (text), and how it was found."""
        none = pl.DataFrame(schema={"item_id": pl.Utf8, "category_id": pl.Utf8})
        if not self.item.is_file():
            return none, {"category": f"none ({self.item.name} absent): every item in one category"}
        lines = read_lines(self.item)
        if lines.height == 0:
            raise BadInput(f"{self.item}: empty file (expected a header and one line per item)")
        names = field_names(lines, self.item)
        if self.item_field not in names:
            raise BadInput(f"{self.item}: no field '{self.item_field}' (data.builder.item_field) in the header "
                           f"{list(names)}")
        field = self.category_field or next((f for f in CATEGORY_FIELDS if f in names), None)
        if field is None:
            return none, {"category": f"none (no field of {list(CATEGORY_FIELDS)} in {self.item.name}; "
                                      "data.builder.category_field names another): every item in one category"}
        if field not in names:
            raise BadInput(f"{self.item}: no field '{field}' (data.builder.category_field) in the header "
                           f"{list(names)}")
        fields = split_fields(lines.slice(1), self.item, {"item_id": names[self.item_field],
                                                          "category_id": names[field]}, "\t", header_of(lines, "\t"))
        first = pl.col("category_id").str.strip_chars().str.split(" ").list.first()
        items = fields.select(pl.col("item_id").str.strip_chars(), first.alias("category_id")) \
            .filter(pl.col("category_id") != "")
        twice = items.filter(pl.col("item_id").is_duplicated())
        if twice.height:
            raise BadInput(f"{self.item}: item {twice['item_id'][0]!r} is listed more than once "
                           f"({twice['item_id'].n_unique()} such items)")
        return items, {"category": f"first token of {field} in {self.item.name}"}
