"""Any delimited text or parquet event log, given a column mapping; the Taobao UserBehavior
format is this builder with a config (conf/data/taobao.yaml).

Strict by design: an empty file, a line with the wrong number of fields, a non-integer id or
timestamp, or a behaviour outside `behaviors` stops the build with one line naming the file,
the line and the column. Rows outside `time_range` (the public Taobao file has some) are
dropped and counted in the build report.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from research.data.cache import file_digest
from research.data.schema import BadInput, RawLog

CANONICAL = ("user_id", "item_id", "category_id", "timestamp", "behavior")
INTEGER_COLUMNS = ("user_id", "item_id", "category_id", "timestamp")


def unix_seconds(value: str | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return int(datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp())


def read_lines(path: Path, encoding: str = "utf8") -> pl.DataFrame:
    """(line: 1-based number, text) for every line of a text file, gzipped or not; empty -> no rows."""
    if path.stat().st_size == 0:
        return pl.DataFrame(schema={"line": pl.UInt32, "text": pl.Utf8})
    # a separator that never occurs: one text column, so a bad line can be named by its number
    return pl.read_csv(path, has_header=False, new_columns=["text"], separator="\x1f", quote_char=None,
                       schema={"text": pl.Utf8}, encoding=encoding).with_row_index("line", offset=1)


def read_fields(path: Path, columns: dict, separator: str, has_header: bool = False,
                encoding: str = "utf8") -> pl.DataFrame:
    """Every line of a delimited file as text fields, so a bad line is reported by its number:
    (line, one text column per entry of `columns`: name -> header name or 0-based index)."""
    lines = read_lines(path, encoding)
    if lines.height <= int(has_header):
        raise BadInput(f"{path}: empty file (no events)")
    fields = lines.with_columns(pl.col("text").str.strip_chars("\r").str.split(separator).alias("fields"))
    header: list[str] = []
    if has_header:
        header = fields["fields"][0].to_list()
        fields = fields.slice(1)
    width = len(header) if header else max(int(i) for i in columns.values()) + 1
    bad = fields.filter(pl.col("fields").list.len() != width if header else pl.col("fields").list.len() < width)
    if bad.height:
        row = bad.row(0, named=True)
        raise BadInput(f"{path}: line {row['line']}: {len(row['fields'])} fields, expected {width}")
    index = {}
    for name, src in columns.items():
        if header:
            if src not in header:
                raise BadInput(f"{path}: no column '{src}' (for {name}) in the header {header}")
            index[name] = header.index(src)
        else:
            index[name] = int(src)
    return fields.select("line", *(pl.col("fields").list.get(i).alias(name) for name, i in index.items()))


def parse_integers(frame: pl.DataFrame, columns: tuple[str, ...], path: Path) -> pl.DataFrame:
    """Casts text columns to Int64; the first non-integer stops with its line and column."""
    out = frame.with_columns(pl.col(c).str.strip_chars().cast(pl.Int64, strict=False).alias(f"_{c}") for c in columns)
    for column in columns:
        bad = out.filter(pl.col(f"_{column}").is_null())
        if bad.height:
            row = bad.row(0, named=True)
            raise BadInput(f"{path}: line {row['line']}, column {column}: {row[column]!r} is not an integer "
                           f"({bad.height} such rows)")
    return out.with_columns(pl.col(f"_{c}").alias(c) for c in columns).drop(f"_{c}" for c in columns)


class TableBuilder:
    def __init__(self, path: str, columns: dict, name: str = "table", separator: str = ",", has_header: bool = True,
                 behaviors: list[str] | None = None, time_range: list | None = None, string_ids: bool = False):
        """columns: canonical name -> source column (a header name, or a 0-based index when
        has_header is false); user_id, item_id, category_id and timestamp (unix seconds,
        integer) are required, behavior is optional. time_range: [first, last] unix seconds or
        ISO dates (UTC), inclusive of `first`, exclusive of `last`. string_ids: keep user, item and
        category ids as text (they must still be non-empty); otherwise they must be integers."""
        self.path = Path(path).expanduser().resolve()
        self.name, self.separator, self.has_header = name, separator, has_header
        missing = [c for c in INTEGER_COLUMNS if c not in columns]
        unknown = [c for c in columns if c not in CANONICAL]
        if missing or unknown:
            raise ValueError(f"data.builder.columns: missing {missing}, unknown {unknown}; expected {list(CANONICAL)}")
        self.columns = dict(columns)
        self.behaviors = list(behaviors) if behaviors is not None else None
        self.time_range = [unix_seconds(t) for t in time_range] if time_range else None
        self.integer_columns = ("timestamp",) if string_ids else INTEGER_COLUMNS
        self.string_ids = string_ids
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: not found (data.builder.path)")

    def fingerprint(self) -> dict:
        return {"builder": "table", "name": self.name, "file": file_digest(self.path), "columns": self.columns,
                "separator": self.separator, "has_header": self.has_header, "behaviors": self.behaviors,
                "time_range": self.time_range, "string_ids": self.string_ids}

    def load(self) -> RawLog:
        events = self.read_fast() if self.path.suffix != ".parquet" else None
        if events is None:  # a parquet file, or text the fast reader refused: find the bad line
            raw = self.read_parquet() if self.path.suffix == ".parquet" else self.read_text()
            events = self.typed(raw)
        info = {"source": str(self.path)}
        if self.time_range:
            first, last = self.time_range
            inside = events.filter((pl.col("timestamp") >= first) & (pl.col("timestamp") < last))
            info["dropped_outside_time_range"] = events.height - inside.height
            events = inside
        return RawLog(events=events.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("order")), info=info)

    def read_fast(self) -> pl.DataFrame | None:
        """polars' native, multithreaded CSV reader with a strict schema; None on any problem,
        which the line-by-line reader then locates and reports."""
        if self.path.stat().st_size == 0:
            return None
        kinds = {name: pl.Int64 if name in self.integer_columns else pl.Utf8 for name in CANONICAL}
        try:
            if self.has_header:
                frame = pl.read_csv(self.path, separator=self.separator, quote_char=None,
                                    columns=list(self.columns.values()),
                                    schema_overrides={src: kinds[name] for name, src in self.columns.items()})
                frame = frame.select(pl.col(src).alias(name) for name, src in self.columns.items())
            else:  # by position (headerless column names differ between polars versions)
                order = sorted(self.columns.items(), key=lambda kv: int(kv[1]))
                frame = pl.read_csv(self.path, has_header=False, separator=self.separator, quote_char=None,
                                    columns=[int(src) for _, src in order],
                                    schema_overrides=[kinds[name] for name, _ in order])
                frame.columns = [name for name, _ in order]
        except (pl.exceptions.PolarsError, ValueError):
            return None
        if frame.height == 0 or frame.select(pl.any_horizontal(pl.col(INTEGER_COLUMNS).is_null()).any()).item():
            return None  # short lines become nulls: let the careful reader name them
        if self.behaviors is not None and "behavior" in frame.columns and \
                not frame["behavior"].is_in(self.behaviors).all():
            return None
        if self.integer_columns != INTEGER_COLUMNS:
            frame = frame.with_columns(pl.col(c).str.strip_chars() for c in INTEGER_COLUMNS
                                       if c not in self.integer_columns)
            if frame.select(pl.any_horizontal(pl.col(c) == "" for c in INTEGER_COLUMNS
                                              if c not in self.integer_columns).any()).item():
                return None
        return frame.select(*INTEGER_COLUMNS, *(["behavior"] if "behavior" in frame.columns else []))

    def read_parquet(self) -> pl.DataFrame:
        try:
            frame = pl.read_parquet(self.path)
        except pl.exceptions.PolarsError as err:
            raise BadInput(f"{self.path}: not a readable parquet file ({type(err).__name__})") from None
        absent = [src for src in self.columns.values() if src not in frame.columns]
        if absent:
            raise BadInput(f"{self.path}: no column(s) {absent}; it has {frame.columns}")
        if frame.height == 0:
            raise BadInput(f"{self.path}: empty file (no events)")
        return frame.select(pl.col(src).cast(pl.Utf8).alias(name) for name, src in self.columns.items()) \
            .with_row_index("line", offset=1)

    def read_text(self) -> pl.DataFrame:
        return read_fields(self.path, self.columns, self.separator, self.has_header)

    def typed(self, raw: pl.DataFrame) -> pl.DataFrame:
        out = parse_integers(raw, self.integer_columns, self.path)
        for column in (c for c in INTEGER_COLUMNS if c not in self.integer_columns):  # text ids
            out = out.with_columns(pl.col(column).str.strip_chars())
            bad = out.filter(pl.col(column).is_null() | (pl.col(column) == ""))
            if bad.height:
                raise BadInput(f"{self.path}: line {bad['line'][0]}, column {column}: empty id ({bad.height} such rows)")
        result = out.select(*INTEGER_COLUMNS,
                            *([pl.col("behavior").str.strip_chars()] if "behavior" in out.columns else []), "line")
        if self.behaviors is not None and "behavior" in result.columns:
            bad = result.filter(~pl.col("behavior").is_in(self.behaviors))
            if bad.height:
                row = bad.row(0, named=True)
                raise BadInput(f"{self.path}: line {row['line']}, column behavior: unknown type {row['behavior']!r} "
                               f"(expected one of {self.behaviors}; {bad.height} such rows)")
        return result.drop("line")
