"""Any delimited text or parquet event log, given a column mapping; the Taobao UserBehavior
format is this builder with a config (conf/data/taobao.yaml).

Strict by design: an empty file, a line with the wrong number of fields, a non-integer id or
timestamp, or a behaviour outside `behaviors` stops the build with one line naming the file,
the line and the column. Rows outside `time_range` (the public Taobao file has some) are
dropped and counted in the build report.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from research.data.cache import file_digest
from research.data.schema import BadInput, RawLog

CANONICAL = ("user_id", "item_id", "category_id", "timestamp", "behavior")
INTEGER_COLUMNS = ("user_id", "item_id", "category_id", "timestamp")
CAREFUL_BATCH_LINES = 2_000_000  # lines per batch of the careful reader (bounded memory)
IN_MEMORY_BYTES = 512 * 2**20  # a text log up to this size skips the on-disk staging (about 15M Taobao rows)


def unix_seconds(value: str | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return int(datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp())


def scan_lines(path: Path, encoding: str = "utf8") -> pl.LazyFrame:
    """(line: 1-based number, text) for every line of a text file, gzipped or not."""
    # a separator that never occurs: one text column, so a bad line can be named by its number
    return pl.scan_csv(path, has_header=False, new_columns=["text"], separator="\x1f", quote_char=None,
                       schema={"text": pl.Utf8}, encoding=encoding).with_row_index("line", offset=1)


def read_lines(path: Path, encoding: str = "utf8") -> pl.DataFrame:
    """scan_lines, collected; an empty file gives no rows."""
    if path.stat().st_size == 0:
        return pl.DataFrame(schema={"line": pl.UInt32, "text": pl.Utf8})
    with text_errors(path):
        return scan_lines(path, encoding).collect()


@contextmanager
def text_errors(path: Path) -> Iterator[None]:
    """Reading a text file: bytes that are not UTF-8 and a cut-short gzip stream become one BadInput
    naming the file (and the first bad line), instead of polars' or zlib's bare message."""
    try:
        yield
    except pl.exceptions.PolarsError as err:
        if "utf-8" in str(err).lower():
            raise BadInput(f"{path}: line {first_non_utf8_line(path)}: not UTF-8 text") from None
        raise BadInput(f"{path}: not readable as lines of text ({type(err).__name__})") from None
    except (EOFError, OSError) as err:  # gzip.BadGzipFile is an OSError
        if isinstance(err, OSError) and err.filename:  # missing, a directory, no permission: not the content
            raise
        kind = "gzip file" if path.name.endswith(".gz") else "file (compressed?)"
        raise BadInput(f"{path}: truncated or corrupt {kind} ({err})") from None


def first_non_utf8_line(path: Path) -> int:
    """The 1-based number of the first line that is not UTF-8 (0 if none). Runs only after a read
    has failed, so a line-by-line pass is affordable here."""
    with (gzip.open if path.name.endswith(".gz") else open)(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def split_fields(lines: pl.DataFrame, path: Path, columns: dict, separator: str, header: list[str]) -> pl.DataFrame:
    """(line, one text column per entry of `columns`: name -> header name, or 0-based index when
    `header` is empty). A line with a wrong number of fields stops with its number."""
    fields = lines.with_columns(pl.col("text").str.strip_chars("\r").str.split(separator).alias("fields"))
    width = len(header) if header else max(int(i) for i in columns.values()) + 1
    count = pl.col("fields").list.len().fill_null(0)  # an empty line has no field
    bad = fields.filter(count != width if header else count < width)
    if bad.height:
        row = bad.row(0, named=True)
        raise BadInput(f"{path}: line {row['line']}: {len(row['fields'] or [])} fields, expected {width}")
    index = {}
    for name, src in columns.items():
        if header:
            if src not in header:
                raise BadInput(f"{path}: no column '{src}' (for {name}) in the header {header}")
            index[name] = header.index(src)
        else:
            index[name] = int(src)
    return fields.select("line", *(pl.col("fields").list.get(i).alias(name) for name, i in index.items()))


def as_text(frame: pl.DataFrame, column: str) -> pl.Expr:
    """A column as text for the integer checks: a whole float (a parquet column with a null is
    often float) reads as its integer, a fraction keeps its digits, so it is named, not truncated."""
    col = pl.col(column)
    if not frame.schema[column].is_float():
        return col.cast(pl.Utf8)
    return pl.when(col == col.floor()).then(col.cast(pl.Int64).cast(pl.Utf8)).otherwise(col.cast(pl.Utf8))


def check_header(header: list[str], path: Path) -> None:
    """A column named twice would be read from its first occurrence without a word: refuse it."""
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise BadInput(f"{path}: line 1: column(s) {twice} appear more than once in the header")


def header_of(lines: pl.DataFrame, separator: str) -> list[str]:
    """The field names on the first line of `lines`."""
    return lines["text"][0].strip("\r").split(separator)


def read_fields(path: Path, columns: dict, separator: str, has_header: bool = False,
                encoding: str = "utf8") -> pl.DataFrame:
    """Every line of a small delimited file as text fields (see split_fields)."""
    lines = read_lines(path, encoding)
    if lines.height <= int(has_header):
        raise BadInput(f"{path}: empty file (no events)")
    header = header_of(lines, separator) if has_header else []
    return split_fields(lines.slice(int(has_header)), path, columns, separator, header)


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


SEPARATOR_ESCAPES = {"\\t": "\t", "tab": "\t"}


def one_byte_separator(separator: str) -> str:
    """The separator as typed on a command line (`\\t` or `tab` for a tab) -> one byte."""
    separator = SEPARATOR_ESCAPES.get(separator, separator)
    if len(separator.encode()) != 1:
        raise ValueError(f"data.builder.separator: {separator!r} is not one character of one byte "
                         f"(write a tab as \\t or tab)")
    return separator


class TableBuilder:
    def __init__(self, path: str, columns: dict, name: str = "table", separator: str = ",", has_header: bool = True,
                 behaviors: list[str] | None = None, time_range: list | None = None, string_ids: bool = False):
        """columns: canonical name -> source column (a header name, or a 0-based index when
        has_header is false); user_id, item_id, category_id and timestamp (unix seconds,
        integer) are required, behavior is optional. time_range: [first, last] unix seconds or
        ISO dates (UTC), inclusive of `first`, exclusive of `last`. string_ids: keep user, item and
        category ids as text (they must still be non-empty); otherwise they must be integers."""
        self.path = Path(path).expanduser().resolve()
        self.name, self.separator, self.has_header = name, one_byte_separator(separator), has_header
        missing = [c for c in INTEGER_COLUMNS if c not in columns]
        unknown = [c for c in columns if c not in CANONICAL]
        if missing or unknown:
            raise ValueError(f"data.builder.columns: missing {missing}, unknown {unknown}; expected {list(CANONICAL)}")
        self.columns = dict(columns)
        if not has_header and not all(str(src).isdigit() for src in self.columns.values()):
            raise ValueError(f"data.builder.columns={self.columns}: without a header (data.builder.has_header="
                             "false) each column is a 0-based position")
        self.behaviors = list(behaviors) if behaviors is not None else None
        if self.behaviors is not None and "behavior" not in self.columns:  # a filter that would filter nothing
            raise ValueError(f"data.builder.behaviors={self.behaviors}: the log has no behavior column "
                             f"(data.builder.columns: {self.columns})")
        try:
            self.time_range = [unix_seconds(t) for t in time_range] if time_range else None
        except ValueError:
            raise ValueError(f"data.builder.time_range={list(time_range)}: expected [first, last) as unix seconds "
                             "or ISO dates (2017-11-25)") from None
        self.integer_columns = ("timestamp",) if string_ids else INTEGER_COLUMNS
        self.string_ids = string_ids
        if self.path.is_dir():
            raise ValueError(f"{self.path}: a directory (data.builder.path must be a file)")
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: not found (data.builder.path)")

    def fingerprint(self) -> dict:
        return {"builder": "table", "name": self.name, "file": file_digest(self.path), "columns": self.columns,
                "separator": self.separator, "has_header": self.has_header, "behaviors": self.behaviors,
                "time_range": self.time_range, "string_ids": self.string_ids}

    def stage(self, directory: Path) -> RawLog:
        """Typed events as a lazy frame, with the time range applied and its strays counted: in
        memory for a text log up to IN_MEMORY_BYTES, else staged as parquet in `directory` by
        polars' streaming engine (bounded memory at any size)."""
        directory.mkdir(parents=True, exist_ok=True)
        if self.has_header and self.path.suffix != ".parquet" and self.path.stat().st_size:
            with text_errors(self.path):
                check_header(header_of(scan_lines(self.path).head(1).collect(), self.separator), self.path)
        staged = directory / "events.parquet"
        events = self.stage_fast(staged)
        if events is None:
            staged.unlink(missing_ok=True)
            events = pl.scan_parquet(self.stage_carefully(directory))
        info = {"source": str(self.path)}
        if self.time_range:
            first, last = self.time_range
            inside = (pl.col("timestamp") >= first) & (pl.col("timestamp") < last)
            counts = events.select(pl.len(), (~inside).sum()).collect(engine="streaming")
            total, info["dropped_outside_time_range"] = counts.item(0, 0), counts.item(0, 1)
            if total and info["dropped_outside_time_range"] == total:
                raise BadInput(f"{self.path}: all {total} rows fall outside data.builder.time_range "
                               f"[{self.time_range[0]}, {self.time_range[1]})")
            events = events.filter(inside)
        return RawLog(events=events, info=info)

    def load(self) -> RawLog:
        """The events in memory (small files; the cache builds through `stage`)."""
        with tempfile.TemporaryDirectory() as directory:
            raw = self.stage(Path(directory))
            return RawLog(events=raw.events.collect(), info=raw.info)

    def stage_fast(self, staged: Path) -> pl.LazyFrame | None:
        """polars' native multithreaded reader with a strict schema: a text log up to
        IN_MEMORY_BYTES is read into memory, a larger one streamed to `staged`. None on any
        problem, which the careful reader then locates and reports."""
        size = self.path.stat().st_size
        if size == 0:
            return None
        kinds = {name: pl.Int64 if name in self.integer_columns else pl.Utf8 for name in CANONICAL}
        if self.path.suffix == ".parquet":
            try:
                schema = pl.read_parquet_schema(self.path)
            except (pl.exceptions.PolarsError, OSError):
                return None  # the careful reader names the file
            if any(schema.get(src, pl.Utf8).is_float() for src in self.columns.values()):
                return None  # the careful reader tells whole numbers from fractions, row by row
            scan = pl.scan_parquet(self.path).select(pl.col(src).cast(kinds[name], strict=True).alias(name)
                                                     for name, src in self.columns.items())
        elif self.has_header:
            scan = pl.scan_csv(self.path, separator=self.separator, quote_char=None,
                               schema_overrides={src: kinds[name] for name, src in self.columns.items()})
            scan = scan.select(pl.col(src).alias(name) for name, src in self.columns.items())
        else:  # fields by position; extra trailing fields are allowed, as in the careful reader
            width = max(int(src) for src in self.columns.values()) + 1
            names = {int(src): name for name, src in self.columns.items()}
            scan = pl.scan_csv(self.path, has_header=False, separator=self.separator, quote_char=None,
                               new_columns=[names.get(i, f"_unused{i}") for i in range(width)],
                               schema_overrides=[kinds[names[i]] if i in names else pl.Utf8 for i in range(width)],
                               extra_columns="ignore")
        present = [name for name in CANONICAL if name in self.columns]
        text = [c for c in present if c not in self.integer_columns]
        problems = [pl.col(c).is_null() for c in INTEGER_COLUMNS]
        problems += [pl.col(c) == "" for c in INTEGER_COLUMNS if c not in self.integer_columns]
        if self.behaviors is not None and "behavior" in present:
            problems.append(~pl.col("behavior").is_in(self.behaviors))
        typed = scan.select(present).with_columns(pl.col(text).str.strip_chars()).with_row_index("order") \
            .with_columns(pl.col("order").cast(pl.Int64))
        try:
            if size <= IN_MEMORY_BYTES and self.path.suffix != ".parquet":
                events = typed.collect().lazy()
            else:
                typed.sink_parquet(staged, compression="lz4")
                events = pl.scan_parquet(staged)
            bad = events.select(pl.len(), pl.any_horizontal(problems).any()).collect(engine="streaming")
        except (pl.exceptions.PolarsError, ValueError, OSError, EOFError):  # OSError: a cut-short gzip
            return None
        return events if bad.item(0, 0) > 0 and not bad.item(0, 1) else None

    def stage_carefully(self, directory: Path) -> Path:
        """The file line by line in batches: the first bad line stops with its number and column;
        otherwise (e.g. padded numbers) the typed batches are staged and their glob returned."""
        if self.path.suffix == ".parquet":
            raw = self.read_parquet()
            self.typed(raw).write_parquet(directory / "careful-00000.parquet")
            return directory / "careful-*.parquet"
        if self.path.stat().st_size == 0:
            raise BadInput(f"{self.path}: empty file (no events)")
        header, written = [], 0
        with text_errors(self.path):
            for index, lines in enumerate(scan_lines(self.path).collect_batches(chunk_size=CAREFUL_BATCH_LINES)):
                if index == 0 and self.has_header:
                    header = header_of(lines, self.separator)
                    lines = lines.slice(1)
                typed = self.typed(split_fields(lines, self.path, self.columns, self.separator, header))
                typed.write_parquet(directory / f"careful-{index:05d}.parquet")
                written += typed.height
        if written == 0:
            raise BadInput(f"{self.path}: empty file (no events)")
        return directory / "careful-*.parquet"

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
        return frame.select(as_text(frame, src).alias(name) for name, src in self.columns.items()) \
            .with_row_index("line", offset=1)

    def typed(self, raw: pl.DataFrame) -> pl.DataFrame:
        out = parse_integers(raw, self.integer_columns, self.path)
        for column in (c for c in INTEGER_COLUMNS if c not in self.integer_columns):  # text ids
            out = out.with_columns(pl.col(column).str.strip_chars())
            bad = out.filter(pl.col(column).is_null() | (pl.col(column) == ""))
            if bad.height:
                raise BadInput(f"{self.path}: line {bad['line'][0]}, column {column}: empty id "
                               f"({bad.height} such rows)")
        result = out.select(*INTEGER_COLUMNS,
                            *([pl.col("behavior").str.strip_chars()] if "behavior" in out.columns else []), "line")
        if self.behaviors is not None and "behavior" in result.columns:
            bad = result.filter(~pl.col("behavior").is_in(self.behaviors))
            if bad.height:
                row = bad.row(0, named=True)
                raise BadInput(f"{self.path}: line {row['line']}, column behavior: unknown type {row['behavior']!r} "
                               f"(expected one of {self.behaviors}; {bad.height} such rows)")
        # the data row's 0-based position, as the fast reader numbers it
        header = int(self.has_header and self.path.suffix != ".parquet")
        return result.with_columns((pl.col("line").cast(pl.Int64) - 1 - header).alias("order")).drop("line")
