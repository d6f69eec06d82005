"""Build a dataset once, keyed by a hash of the builder's fingerprint and the preprocessing
settings; later runs load the parquet files. Writes go to a temporary directory that is
renamed into place, so an interrupted build never leaves a half-written cache entry; the
temporary directory of a build killed outright (kill -9) is removed by the next build."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from research.data import pipeline, transforms
from research.data.schema import BadInput, Builder, StagingBuilder
from research.io import os_error

log = logging.getLogger(__name__)

# Bump when preprocessing changes meaning, so stale caches are not reused.
PREPROCESS_VERSION = 4


@dataclass
class ProcessedData:
    """Dense events sorted by (user, time) plus id maps and the build report."""

    directory: Path
    events: pl.DataFrame  # user, item, category, timestamp, order[, behavior][, state]
    items: pl.DataFrame  # raw, dense, category
    categories: pl.DataFrame  # raw, dense
    users: pl.DataFrame  # raw, dense[, profile attributes]
    behaviors: pl.DataFrame | None
    meta: dict


def file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()[:32]


SALT_ENV = "RESEARCH_USER_SALT"


def user_salt() -> bytes:
    salt = os.environ.get(SALT_ENV, "")
    if len(salt) < 16:
        raise BadInput(f"data.anonymize=true needs a secret of at least 16 characters in ${SALT_ENV} "
                       "(never in a config file: configs are logged)")
    return salt.encode()


def anonymized(users: pl.DataFrame) -> pl.DataFrame:
    """Raw user ids replaced by a keyed BLAKE2b hash (HMAC-like: without the salt an id cannot be
    recovered by hashing candidate ids). One hash per user, once per build."""
    salt = user_salt()
    digest = users["raw"].cast(pl.Utf8).map_elements(
        lambda raw: hashlib.blake2b(raw.encode(), key=salt[:64], digest_size=12).hexdigest(), return_dtype=pl.Utf8)
    return users.with_columns(digest.alias("raw"))


def cache_key(fingerprint: dict, min_user_events: int, anonymize: bool = False) -> str:
    payload = {"builder": fingerprint, "min_user_events": min_user_events, "version": PREPROCESS_VERSION}
    if anonymize:  # a different salt gives different ids: its digest (never the salt) keys the entry
        payload["anonymize"] = hashlib.sha256(user_salt()).hexdigest()[:16]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def build(builder: Builder, fingerprint: dict, min_user_events: int, target: Path, anonymize: bool = False) -> None:
    """Run the builder and the polars pipeline, writing every artefact into `target`."""
    t0 = time.perf_counter()
    # builders of large logs stage typed events on disk and hand over a lazy scan of them
    staging, work = target / ".staging", target / ".work"
    raw = builder.stage(staging) if isinstance(builder, StagingBuilder) else builder.load()
    events = raw.events.lazy()
    transforms.check_columns(events, builder.name)
    source = raw.info.get("source", builder.name)
    report, maps = pipeline.preprocess(events, min_user_events, target / "events.parquet", work, source)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    if report["events"] == 0:
        raise BadInput(f"{source}: no user has at least {min_user_events} events (datamodule.min_user_events); "
                       f"{report['dropped_short_users']} users were all shorter")
    for name, count in report.items():
        log.info("%s: %s = %d", builder.name, name, count)
    maps["item"].write_parquet(target / "items.parquet")
    maps["category"].write_parquet(target / "categories.parquet")
    users = maps["user"]
    if raw.users is not None:
        users = users.join(raw.users.rename({"user_id": "raw"}), on="raw", how="left")
    if anonymize:
        users = anonymized(users)
    users.write_parquet(target / "users.parquet")
    if "behavior" in maps:
        maps["behavior"].write_parquet(target / "behaviors.parquet")
    if raw.save_artefacts is not None:
        raw.save_artefacts(target)
    meta = {
        "builder": builder.name,
        "fingerprint": fingerprint,
        "report": report,
        "info": raw.info,
        "num_users": users.height,
        "num_items": maps["item"].height,
        "num_categories": maps["category"].height,
        "num_behaviors": maps["behavior"].height if "behavior" in maps else 0,
        "has_state": "state" in events.collect_schema().names(),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    (target / "meta.json").write_text(json.dumps(meta, indent=2, default=str))


def ensure_built(builder: Builder, cache_dir: str | Path, min_user_events: int = 3, anonymize: bool = False) -> Path:
    """The cache entry's directory, building it first when it does not exist."""
    cache_dir = Path(cache_dir).expanduser().resolve()
    fingerprint = builder.fingerprint()  # may hash large source files: once per call
    directory = cache_dir / f"{builder.name}-{cache_key(fingerprint, min_user_events, anonymize)}"
    problem = damage(directory) if directory.is_dir() else None
    if problem:  # e.g. a parquet file truncated by a full disk or a copy: rebuild, never half-read
        log.warning("%s: cache entry %s is damaged (%s): rebuilding it", builder.name, directory, problem)
        shutil.rmtree(directory, ignore_errors=True)
    if directory.is_dir():
        log.info("%s: reusing cached dataset %s", builder.name, directory)
    else:
        log.info("%s: building dataset into %s", builder.name, directory)
        cache_dir.mkdir(parents=True, exist_ok=True)
        remove_abandoned(cache_dir)
        # named by host and process, so a later build can tell an abandoned one from a running one
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}+{socket.gethostname()}+{os.getpid()}+", dir=cache_dir))
        try:
            build(builder, fingerprint, min_user_events, tmp, anonymize)
            os.replace(tmp, directory)
        except BaseException as err:
            shutil.rmtree(tmp, ignore_errors=True)
            # the rename fails when a concurrent run finished the same entry first: use theirs
            if isinstance(err, OSError) and directory.is_dir():
                return directory
            failed_write = os_error(err, directory)  # a full disk met by polars: the entry and why
            if failed_write is None:
                raise
            raise failed_write from err
    return directory


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_abandoned(cache_dir: Path) -> None:
    """Delete the temporary directories of builds on this host whose process is gone."""
    host = socket.gethostname()
    for path in cache_dir.glob(".*+*+*+*"):
        _, owner, pid, _ = path.name.split("+", 3)
        if owner == host and pid.isdigit() and not alive(int(pid)):
            log.info("removing %s, left by a build that was killed", path)
            shutil.rmtree(path, ignore_errors=True)


META_KEYS = ("builder", "fingerprint", "report", "num_users", "num_items", "num_categories")
REQUIRED_FILES = ("meta.json", "events.parquet", "items.parquet", "categories.parquet", "users.parquet")


def damage(directory: Path) -> str | None:
    """Why a cache entry cannot be read (a missing file, a truncated meta.json or parquet), or
    None. Reads meta.json and each parquet footer only: cheap, and a truncated file has lost its footer."""
    for name in REQUIRED_FILES:
        if not (directory / name).is_file():
            return f"{name} is missing"
    try:
        meta = json.loads((directory / "meta.json").read_text())
    except (ValueError, OSError) as err:  # truncated, not UTF-8, unreadable
        return f"meta.json is unreadable: {type(err).__name__}"
    if not isinstance(meta, dict) or not set(META_KEYS) <= meta.keys():
        return "meta.json lacks " + ", ".join(k for k in META_KEYS if not isinstance(meta, dict) or k not in meta)
    for path in sorted(directory.glob("*.parquet")):
        try:
            pl.read_parquet_schema(path)
        except Exception as err:  # polars raises several kinds for a bad footer
            return f"{path.name} is unreadable: {type(err).__name__}"
    return None


def load_or_build(builder: Builder, cache_dir: str | Path, min_user_events: int = 3) -> ProcessedData:
    return read(ensure_built(builder, cache_dir, min_user_events))


def id_map(directory: Path, name: str) -> pl.DataFrame:
    """One id map of a built dataset ("items", "categories", "users"), in dense-id order:
    raw, dense and the map's own columns (an item's category, a user's profile)."""
    return pl.read_parquet(directory / f"{name}.parquet").sort("dense")


def read(directory: Path) -> ProcessedData:
    behaviors = directory / "behaviors.parquet"
    return ProcessedData(
        directory=directory,
        events=pl.read_parquet(directory / "events.parquet"),
        items=pl.read_parquet(directory / "items.parquet"),
        categories=pl.read_parquet(directory / "categories.parquet"),
        users=pl.read_parquet(directory / "users.parquet"),
        behaviors=pl.read_parquet(behaviors) if behaviors.exists() else None,
        meta=json.loads((directory / "meta.json").read_text()),
    )
