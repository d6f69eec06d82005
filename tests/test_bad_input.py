"""The bad-input and fault suite: every case is a real `python -m research.train` command line
(`research.windows` for the cases named windows-)
(run in this process through the same entry point, so ninety cases take a minute or two, not ten) over
a bad setting, a bad file of some builder, or a fault of the cache or the run folder. Each must
end with a non-zero exit and exactly one stderr line, `error:` and what names the problem (file,
line, field or setting key), with no traceback; and nothing may be left that a later run would
trust: no metrics.json or checkpoint in the run folder, and every cache entry whole. The
full-disk cases run a child process whose files the kernel keeps small (a real write failure,
in every library alike); a killed run is tests/test_resume.py's."""

from __future__ import annotations

import gzip
import json
import resource
import runpy
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import torch

from research.data import cache
from tests.conftest import ROOT, TINY_SYNTHETIC
from tests.conftest import train_in_process as run

TABLE = "user_id,item_id,category_id,timestamp\n" + "".join(
    f"{u},{10 + (u * 7 + t) % 9},{100 + t % 3},{t}\n" for u in (1, 2, 3) for t in range(5))
S3_SEQUENCES = "1 1 2 3 4\n2 2 3 5 6 1\n3 6 5 4 3\n"
S3_ATTRIBUTES = json.dumps({"1": [7, 3], "2": [9, 7], "3": [3, 5], "5": [8, 2], "6": [9]})


def table(content: bytes | str, name: str = "log.csv"):
    def write(root: Path) -> list[str]:
        path = root / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return ["data=table", f"data.builder.path={path}"]
    return write


def gzipped_half(root: Path) -> list[str]:
    packed = gzip.compress(TABLE.encode() * 200)
    (root / "log.csv.gz").write_bytes(packed[: len(packed) // 2])
    return ["data=table", f"data.builder.path={root / 'log.csv.gz'}"]


def parquet(timestamps: list) -> callable:
    def write(root: Path) -> list[str]:
        pl.DataFrame({"user_id": [1, 1, 1, 2, 2, 2], "item_id": [1, 2, 3, 1, 2, 3], "category_id": [1, 2, 1, 2, 1, 2],
                      "timestamp": timestamps}).write_parquet(root / "log.parquet")
        return ["data=table", f"data.builder.path={root / 'log.parquet'}"]
    return write


def s3rec(sequences: bytes | str | None = None, attributes: bytes | str | None = None):
    def write(root: Path) -> list[str]:
        for name, content, default in (("Toy.txt", sequences, S3_SEQUENCES),
                                       ("Toy_item2attributes.json", attributes, S3_ATTRIBUTES)):
            content = default if content is None else content
            if content is not False:
                (root / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        return ["data=amazon_s3rec", f"data.root={root}", "data.name=Toy"]
    return write


ML_DATA = "".join(f"{u}\t{i}\t{1 + (u + i) % 5}\t{880000000 + 60 * t}\n"
                  for u in (1, 2, 3) for t, i in enumerate((1, 2, 3, 1, 2)))
ML_ITEM = "".join(f"{i}|Film {i} (1995)|01-Jan-1995||http://x|" + "|".join("1" if g == i else "0" for g in range(19))
                  + "\n" for i in (1, 2, 3))
ML_USER = "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n"


def movielens(data: bytes | str | None = None, items: str | None | bool = None, users: str | bool = False,
              layout: str = "100k"):
    """An ml-100k folder (u.data, u.item, optional u.user), or `layout="dat"`: ratings.dat only."""
    def write(root: Path) -> list[str]:
        folder = root / "ml"
        folder.mkdir()
        if layout == "dat":
            (folder / "ratings.dat").write_bytes(data if isinstance(data, bytes) else data.encode())
            (folder / "movies.dat").write_text("1::Film (1995)::Comedy\n2::Other (1996)::Drama\n")
            return ["data=movielens", f"data.root={folder}"]
        for name, content, default in (("u.data", data, ML_DATA), ("u.item", items, ML_ITEM), ("u.user", users, None)):
            content = default if content is None else content
            if content not in (False, None):
                (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        return ["data=movielens", f"data.root={folder}"]
    return write


REVIEWS = "".join(json.dumps({"reviewerID": f"U{u}", "asin": f"A{(u + t) % 4}", "unixReviewTime": 1400000000 + t})
                  + "\n" for u in range(3) for t in range(4))
META = "".join(str({"asin": f"A{i}", "categories": [["Beauty", ["Skin", "Hair"][i % 2]]]}) + "\n" for i in range(4))


def amazon_raw(reviews: bytes | str | None = None, meta: bytes | str | None = None, cut: bool = False):
    """A 2014-release pair of gzipped files; `cut`: the reviews file cut in half."""
    def write(root: Path) -> list[str]:
        for name, content, default in (("reviews.json.gz", reviews, REVIEWS), ("meta.json.gz", meta, META)):
            content = default if content is None else content
            packed = gzip.compress(content if isinstance(content, bytes) else content.encode())
            (root / name).write_bytes(packed[: len(packed) // 2] if cut and name.startswith("reviews") else packed)
        return ["data=amazon_raw", f"data.root={root}", "data.builder.reviews=reviews.json.gz",
                "data.builder.meta=meta.json.gz"]
    return write


def recbole(root: Path, extra: str = "", header: str = "user_id:token\titem_id:token\ttimestamp:float") -> list[str]:
    (root / "toy.inter").write_text(f"{header}\nu1\ti2\t96\n{extra}u2\ti1\t95\n")
    return ["data=recbole", f"data.root={root}", "data.name=toy"]


def file_at(name: str, key: str):
    def write(root: Path) -> list[str]:
        (root / name).write_text("not a directory")
        return [f"{key}={root / name}"]
    return write


def previous_run(config: str | None = None):
    """A finished run folder (a no-training model), or one whose config.yaml is `config`."""
    def write(root: Path) -> list[str]:
        if config is None:
            assert run(["model=majority", "task=next_category", *TINY_SYNTHETIC], root)[0] == 0
        else:
            (root / "run").mkdir()
            (root / "run" / "config.yaml").write_text(config)
        return ["resume=true"]
    return write


# id -> (setup writing files under the case's folder and returning overrides, overrides, expected text)
CASES = {
    # settings: types, ranges, choices, names
    "bool-word": (None, ["eval.mask_history=maybe"], "eval.mask_history=maybe"),
    "bool-in-datamodule": (None, ["datamodule.bucket_by_length=sometimes"], "datamodule.bucket_by_length"),
    "int-as-text": (None, ["datamodule.max_len=ten"], "datamodule.max_len=ten"),
    "int-as-float": (None, ["datamodule.max_len=1.5"], "datamodule.max_len=1.5"),
    "max-len-zero": (None, ["datamodule.max_len=0"], "datamodule.max_len=0: must be an integer >= 1"),
    "batch-zero": (None, ["datamodule.batch_size=0"], "datamodule.batch_size=0"),
    "batch-unit-choice": (None, ["datamodule.batch_unit=users"], "datamodule.batch_unit='users': must be one of"),
    "target-batch-below-a-window": (None, ["datamodule.batch_unit=targets", "datamodule.batch_size=10"],
                                    "datamodule.batch_size=10 targets: must hold the longest training window"),
    "train-rows-choice": (None, ["task.train_rows=users"], "task.train_rows='users': must be one of"),
    "min-events-one": (None, ["datamodule.min_user_events=1"], "datamodule.min_user_events=1"),
    "lr-negative": (None, ["optimizer.lr=-1"], "optimizer.lr=-1: must be a number > 0"),
    "epochs-zero": (None, ["trainer.max_epochs=0"], "trainer.max_epochs=0"),
    "ks-zero": (None, ["eval.ks=[0]"], "eval.ks=[0]"),
    "ks-text": (None, ["eval.ks=[abc]"], "eval.ks=[abc]"),
    "ks-without-monitor": (None, ["eval.ks=[5]"], "its cut-off 10 is not computed (eval.ks: [5])"),
    "slice-negative": (None, ["eval.slice_window=-3"], "eval.slice_window=-3"),
    "threads-zero": (None, ["threads=0"], "threads=0"),
    "seed-text": (None, ["seed=abc"], "seed=abc"),
    "weighting-choice": (None, ["loss.weighting=user"], "loss.weighting=user: must be one of target, window, batch"),
    "dropout-above-one": (None, ["model.dropout=1.5"], "model.dropout=1.5"),
    "attention-dropout": (None, ["model=sasrec", "model.attention_dropout=1.5"], "model.attention_dropout=1.5"),
    "hidden-zero": (None, ["model.hidden_size=0"], "model.hidden_size=0"),
    "layers-negative": (None, ["model=sasrec", "model.num_layers=-1"], "model.num_layers=-1"),
    "model-window-short": (None, ["model=sasrec", "model.max_len=10"], "model.max_len=10"),
    "negatives-zero": (None, ["loss=sampled_softmax", "loss.item.num_negatives=0"], "loss.item.num_negatives=0"),
    "negatives-negative": (None, ["loss=bpr", "loss.item.num_negatives=-2"], "loss.item.num_negatives=-2"),
    "task-weight-negative": (None, ["task=multi_task", "task.category_weight=-1"], "task.category_weight=-1"),
    "label-smoothing": (None, ["task=multi_task", "loss.category.label_smoothing=2"], "label_smoothing=2"),
    "precision-choice": (None, ["trainer.precision=nonsense"], "trainer.precision='nonsense': must be one of"),
    "monitor-unknown": (None, ["task.monitor=val/foo"], "task.monitor=val/foo"),
    "patience-negative": (None, ["callbacks.early_stopping.patience=-1"], "callbacks.early_stopping.patience=-1"),
    "patience-steps-negative": (None, ["callbacks.early_stopping.patience_steps=-5"], "patience_steps=-5"),
    "loss-patience-steps-negative": (None, ["loss=gbce", "loss.patience_steps=-5"], "loss.patience_steps=-5"),
    "warmup-negative": (None, ["scheduler=warmup", "scheduler.warmup_steps=-1"],
                        "scheduler.warmup_steps=-1: must be an integer >= 0"),
    "decay-choice": (None, ["scheduler=warmup", "scheduler.decay=exponential"],
                     "scheduler.decay='exponential': must be one of constant, linear, cosine"),
    "devices-zero": (None, ["trainer.devices=0"], "trainer: MisconfigurationException"),
    "mode-choice": (None, ["task.mode=maxx"], "task.mode='maxx': must be one of max, min"),
    "ctr-negatives-choice": (None, ["model=din", "task=ctr", "task.negatives=popular"],
                             "task.negatives='popular': must be one of popularity, uniform"),
    "ctr-has-no-item-weight": (None, ["model=din", "task=ctr", "+task.item_weight=1"],
                               "task.item_weight: not a setting of research.tasks.ClickThrough"),
    "group-misspelled": (None, ["modle=gru"], "did you mean 'model'?"),
    "key-misspelled": (None, ["datamodule.max_lne=20"], "did you mean 'max_len'?"),
    "added-key-typed": (None, ["+eval.kss=[5]"], "did you mean 'ks'?"),
    "added-key-top": (None, ["+foo=bar"], "'foo' is not a setting or config group"),
    "added-argument": (None, ["+model.hiden_size=32"], "model.hiden_size: not a setting of research.models.gru"),
    "option-unknown": (None, ["model=nonexistent"], "Could not find 'model/nonexistent'"),
    "loss-unused-by-ctr": (None, ["model=din", "task=ctr", "loss=bpr"],
                           "loss=bpr: task ctr trains no item scores (a click-through task trains binary "
                           "cross-entropy on its labels), so this item loss would never be used"),
    "loss-unused-by-category-task": (None, ["task=next_category", "loss=sampled_softmax"],
                                     "loss=sampled_softmax: task next_category trains no item scores"),
    "model-task-mismatch": (None, ["model=din", "task=next_item"], "model DIN does not support task 'next_item'"),
    "simulator-rate": (None, ["data.builder.switch_rate=2"], "data.builder.switch_rate=2: must be a number in (0, 1)"),
    "simulator-misspelled-key": (None, ["+data.builder.swich_rate=0.2"], "did you mean 'switch_rate'"),
    "simulator-fewer-items-than-categories": (None, ["data.builder.num_items=3"],
                                              "num_items must be an integer >= num_categories"),
    "simulator-users": (None, ["data.builder.num_users=0"], "data.builder.num_users=0"),
    "category-level-negative": (None, ["data=amazon_raw", "data.root=/nonexistent", "data.builder.category_level=-1"],
                                "data.builder.category_level=-1: must be an integer >= 0"),
    "split-fractions": (None, ["split=global_time", "split.val_fraction=0.9", "split.test_fraction=0.2"],
                        "split.val_fraction=0.9, split.test_fraction=0.2"),
    # the table builder (any CSV/TSV/parquet log)
    "table-bool-as-word": (table(TABLE), ["data.builder.string_ids=no"], "data.builder.string_ids='no'"),
    "table-empty": (table(""), [], "log.csv: empty file"),
    "table-header-only": (table("user_id,item_id,category_id,timestamp\n"), [], "log.csv: empty file"),
    "table-short-line": (table(TABLE + "1,2,3\n"), [], "log.csv: line 17: 3 fields, expected 4"),
    "table-text-id": (table(TABLE + "1,x7,100,9\n"), [], "line 17, column item_id: 'x7' is not an integer"),
    "table-not-utf8": (table(TABLE.encode() + b"1,1\xe9,100,9\n"), [], "log.csv: line 17: not UTF-8 text"),
    "table-garbage": (table(bytes(range(1, 40)) * 40), [], "log.csv: "),
    "table-cut-gzip": (gzipped_half, [], "log.csv.gz: truncated or corrupt gzip file"),
    "table-header-twice": (table(TABLE.replace("item_id,category_id", "item_id,item_id", 1)), [],
                           "column(s) ['item_id'] appear more than once"),
    "table-columns-without-header": (table(TABLE), ["data.builder.has_header=false"], "0-based position"),
    "table-time-range-empty": (table(TABLE), ["data.builder.time_range=[100,200]"], "all 15 rows fall outside"),
    "table-time-range-words": (table(TABLE), ["data.builder.time_range=[yesterday,today]"],
                               "data.builder.time_range=['yesterday', 'today']"),
    "table-path-directory": (lambda root: ["data=table", f"data.builder.path={root}"], [], "a directory"),
    "table-path-missing": (lambda root: ["data=table", f"data.builder.path={root / 'nope.csv'}"], [],
                           "nope.csv: not found (data.builder.path)"),
    "table-behaviors-without-column": (table(TABLE), ["data.builder.behaviors=[buy]"],
                                       "data.builder.behaviors=['buy']: the log has no behavior column"),
    "table-one-category": (table(TABLE.replace(",101,", ",100,").replace(",102,", ",100,")), ["task=next_category"],
                           "task next_category predicts categories, but table has 1 category"),
    "parquet-fraction": (parquet([1.0, 2.5, 3.0, 1.0, 2.0, 3.0]), [], "line 2, column timestamp: '2.5'"),
    "parquet-garbage": (table(b"PAR1 not really", "log.parquet"), [], "log.parquet: not a readable parquet file"),
    # the S3-Rec Amazon files
    "s3rec-empty": (s3rec(sequences=""), [], "Toy.txt: empty file"),
    "s3rec-not-utf8": (s3rec(sequences=b"1 1 2 3\n2 2 \xe9 3\n"), [], "Toy.txt: line 2: not UTF-8 text"),
    "s3rec-gzip-bytes": (s3rec(sequences=gzip.compress(S3_SEQUENCES.encode())[:20]), [], "Toy.txt"),
    "s3rec-no-category": (s3rec(attributes="{}"), [], "gives no item of Toy.txt a category"),
    "s3rec-list": (s3rec(attributes="[1, 2]"), [], "expected a JSON object"),
    "s3rec-text-item": (s3rec(attributes='{"1": [3], "a": [1]}'), [], "entry 'a'"),
    "s3rec-text-value": (s3rec(attributes='{"1": "x", "2": [1]}'), [], "entry '1'"),
    "s3rec-bad-json": (s3rec(attributes='{"1": [1, 2], "2": [3'), [], "Toy_item2attributes.json: not valid JSON"),
    "s3rec-json-not-utf8": (s3rec(attributes=b'{"1": [3],\n "\xe9": [1]}'), [], "line 2: not UTF-8 text"),
    "s3rec-missing-attributes": (s3rec(attributes=False), [], "Toy_item2attributes.json: not found"),
    # MovieLens (ml-100k and .dat layouts)
    "movielens-text-user": (movielens(ML_DATA + "x9\t1\t5\t880000000\n"), [], "u.data: line 16, column user_id: 'x9'"),
    "movielens-short-line": (movielens(ML_DATA + "4\t1\n"), [], "u.data: line 16"),
    "movielens-not-utf8": (movielens(ML_DATA.encode() + b"4\t1\xe9\t5\t880000000\n"), [], "u.data: line 16: not UTF-8"),
    "movielens-empty": (movielens(""), [], "u.data: empty file"),
    "movielens-bad-gender": (movielens(users=ML_USER.replace("|F|", "|X|")), [], "u.user: line 2, column gender: 'X'"),
    "movielens-no-genres": (movielens(items=False), [], "u.item: not found (MovieLens genres)"),
    "movielens-no-ratings": (lambda root: ["data=movielens", f"data.root={root}"], [], "no u.data or ratings.dat"),
    "movielens-dat-tabs": (movielens("1\t1\t5\t880000000\n", layout="dat"), [], "ratings.dat: line 1"),
    # Amazon reviews + metadata (gzipped JSON lines)
    "amazon-cut-gzip": (amazon_raw(cut=True), [], "reviews.json.gz: truncated or corrupt gzip file"),
    "amazon-not-json": (amazon_raw(REVIEWS + "{not json\n"), [], "reviews.json.gz: line 13: no valid reviewerID"),
    "amazon-no-reviewer": (amazon_raw(REVIEWS + json.dumps({"asin": "A1", "unixReviewTime": 1}) + "\n"), [],
                           "reviews.json.gz: line 13: no valid reviewerID (1 such lines)"),
    "amazon-empty-reviews": (amazon_raw(""), [], "reviews.json.gz: empty file"),
    "amazon-meta-no-asin": (amazon_raw(meta=META + str({"categories": [["Beauty"]]}) + "\n"), [],
                            "meta.json.gz: line 5: no asin"),
    "amazon-meta-not-utf8": (amazon_raw(meta=META.encode() + b"{'asin': 'A\xe9'}\n"), [], "meta.json.gz: line 5"),
    # RecBole atomic files
    "recbole-fraction-time": (lambda root: recbole(root, "u1\ti1\t97.5\n"), [], "toy.inter: line 3, field timestamp"),
    "recbole-untyped-header": (lambda root: recbole(root, header="user_id\titem_id\ttimestamp"), [],
                               "toy.inter: line 1: header field(s)"),
    "recbole-no-inter": (lambda root: ["data=recbole", f"data.root={root}", "data.name=toy"], [],
                         "toy.inter: not found"),
    # time windows (split=time_window) and update strategies; a `windows-` case runs research.windows
    "time-window-count": (None, ["split=time_window", "split.windows=0"], "split.windows=0: must be an integer >= 1"),
    "time-window-index": (None, ["split=time_window", "split.window=9"],
                          "split.window=9: the split has windows 0 .. 7"),
    "time-window-start": (None, ["split=time_window", "split.start=1"], "split.start=1: must be a number in (0, 1)"),
    "time-window-cuts-decreasing": (None, ["split=time_window", "split.cut_times=[5,3]"],
                                    "split.cut_times=[5, 3]: need at least two increasing timestamps"),
    "time-window-cuts-words": (None, ["split=time_window", "split.cut_times=[monday,friday]"], "split.cut_times"),
    "time-window-nothing-before": (table(TABLE), ["split=time_window", "split.cut_times=[-5,-1,20]"],
                                   "no event before window 0 to learn from"),
    "time-window-tied-times": (table(TABLE.replace(",0\n", ",4\n").replace(",1\n", ",4\n").replace(",2\n", ",4\n")
                                     .replace(",3\n", ",4\n")), ["split=time_window", "split.windows=4"],
                               "leave a window empty (too many events share a timestamp)"),
    "train-with-update": (None, ["split=time_window", "update=finetune"], "run them with python -m research.windows"),
    "windows-no-update": (None, ["split=time_window"], "research.windows needs an update strategy"),
    "windows-no-time-split": (None, ["update=finetune"], "research.windows needs split=time_window"),
    "windows-unknown-update": (None, ["split=time_window", "update=finetuned"],
                               "update=finetuned: no option 'finetuned' in config group 'update'"),
    "debug-unknown-option": (None, ["debug=fsat"], "no option 'fsat' in config group 'debug' (options: fast)"),
    # Lightning would shard with its own padded sampler: targets counted twice
    "devices-without-ddp": (None, ["trainer.devices=2"],
                            "trainer.devices=2: more than one device runs with trainer=ddp"),
    "windows-epochs": (None, ["split=time_window", "update=finetune", "update.epochs=0"],
                       "update.epochs=0: must be an integer >= 1"),
    "windows-replay-share": (None, ["split=time_window", "update=replay", "update.replay_users=1.5"],
                             "update.replay_users=1.5: must be a number in (0, 1)"),
    "windows-misspelled-key": (None, ["split=time_window", "update=replay", "+update.replay_user=0.5"],
                               "did you mean 'replay_users'"),
    # paths, the cache and the run folder
    "cache-is-a-file": (file_at("cache", "paths.cache_dir"), [], "a file is where a directory is needed"),
    "run-dir-is-a-file": (file_at("runfile", "hydra.run.dir"), [], "a file is where the run folder would be"),
    "resume-changed": (previous_run(), ["model=majority", "task=next_category", "datamodule.max_len=20"],
                       "was trained with other settings (datamodule.max_len: 50 -> 20"),
    "resume-damaged-config": (previous_run("model: [unclosed\n"), [], "config.yaml is unreadable (ParserError)"),
}


@pytest.mark.filterwarnings("default")  # as on the command line: a library's warning is not the error
@pytest.mark.parametrize("case", CASES)
def test_a_bad_input_or_fault_ends_in_one_line_and_leaves_nothing_trusted(case, tmp_path, capfd):
    setup, overrides, expected = CASES[case]
    extra = setup(tmp_path) if setup else []
    capfd.readouterr()
    data = [] if any(o.startswith("data=") for o in extra + overrides) else TINY_SYNTHETIC
    module = "research.windows" if case.startswith("windows-") else "research.train"
    code, lines = run(["debug=fast", *data, *extra, *overrides], tmp_path, capfd, module=module)
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert expected in lines[0]
    assert "Traceback" not in lines[0]
    if case.startswith("resume"):
        return  # the earlier run's files are its own, and untouched (tests/test_resume.py)
    run_dir = tmp_path / "run"
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "checkpoints").exists()
    for entry in (tmp_path / "cache").glob("*") if (tmp_path / "cache").is_dir() else []:
        assert not entry.name.startswith("."), f"temporary build left: {entry}"
        assert cache.damage(entry) is None


def size_limited(limit: int):
    """A child process whose files cannot grow past `limit` bytes: the kernel refuses the write
    (EFBIG) as a full disk does (ENOSPC), in every writer alike (Python, polars' Rust, torch's
    C++), which is the point of a real fault over a patched function."""
    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process outright
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return limit_files


@pytest.mark.parametrize(("limit", "where"), [(1, "cache"), (64_000, "checkpoint")],
                         ids=["full-disk-building-the-cache", "full-disk-writing-a-checkpoint"])
def test_a_full_disk_ends_in_one_line_naming_the_file_and_leaves_nothing_trusted(limit, where, tmp_path, capfd):
    arguments = ["debug=fast", "model=sasrec", *TINY_SYNTHETIC, "trainer.max_epochs=2", "threads=1"]
    if where == "checkpoint":  # the cache is built beforehand, so the first large file is a checkpoint
        assert run([*arguments, "model=majority"], tmp_path, capfd, run_dir=tmp_path / "warm")[0] == 0
    proc = subprocess.run([sys.executable, "-m", "research.train", *arguments, f"paths.cache_dir={tmp_path / 'cache'}",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, preexec_fn=size_limited(limit))
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode != 0
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[0].endswith(": File too large")
    named = lines[0].removeprefix("error: ").rsplit(":", 1)[0]
    assert named.startswith(str(tmp_path / ("cache/synthetic-" if where == "cache" else "run/checkpoints/")))
    assert not (tmp_path / "run" / "metrics.json").exists()
    checkpoints = tmp_path / "run" / "checkpoints"
    for path in checkpoints.iterdir() if checkpoints.is_dir() else []:  # whole, or not there
        assert path.suffix == ".ckpt", f"temporary file left: {path}"
        torch.load(path, weights_only=True)
    for entry in (tmp_path / "cache").iterdir() if (tmp_path / "cache").is_dir() else []:
        assert not entry.name.startswith("."), f"temporary build left: {entry}"
        assert cache.damage(entry) is None


@pytest.mark.parametrize("fault", ["full-disk", "no-database-server"])
def test_a_sweep_whose_study_database_fails_ends_in_one_line_without_its_password(fault, tmp_path, capfd):
    arguments = ["hparams_search=sasrec_optuna", "debug=fast", *TINY_SYNTHETIC, "sweep.n_trials=1",
                 f"sweep.dir={tmp_path / 'sweep'}"]
    if fault == "full-disk":  # a child process: the file-size limit must not reach pytest's own files
        proc = subprocess.run([sys.executable, "-m", "research.sweep", *arguments,
                               f"sweep.storage=sqlite:///{tmp_path / 'optuna.db'}", f"paths.cache_dir={tmp_path / 'c'}",
                               f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, preexec_fn=size_limited(1))
        code, lines = proc.returncode, proc.stderr.splitlines()
    else:  # port 1: nothing listens
        code, lines = run([*arguments, "sweep.storage=postgresql+psycopg://user:s3cret@127.0.0.1:1/studies"],
                          tmp_path, capfd, module="research.sweep")
    errors = [line for line in lines if line.startswith("error: ")]
    assert code != 0
    assert len(errors) == 1 and not any("Traceback" in line for line in lines), lines[-20:]
    assert errors[0].startswith("error: sweep.storage: the study's database failed: ") and "s3cret" not in errors[0]
    assert not list((tmp_path / "sweep").glob("trial_*"))  # no trial ran


def damaged_run(root: Path) -> Path:
    (root / "run").mkdir()
    (root / "run" / "config.yaml").write_text("model: [unclosed\n")
    return root / "run"


OTHER_COMMANDS = {  # the command lines beside research.train: (module, arguments from tmp_path, named path)
    "evaluate-missing-run": ("research.evaluate", lambda root: [str(root / "nowhere")], "nowhere"),
    "evaluate-damaged-config": ("research.evaluate", lambda root: [str(damaged_run(root))], "run/config.yaml"),
    "track-empty-folder": ("research.track", lambda root: [str(root)], "not a run folder"),
    "figures-missing-run": ("research.figures", lambda root: ["--model-run", str(root / "nowhere"), "--out",
                                                             str(root / "figures")], "nowhere"),
    "sweep-report-empty-folder": ("research.sweep_report", lambda root: [str(root)], "sweep_config.yaml"),
    "importances-missing-spec": ("research.importances", lambda root: [str(root / "spec.yaml")], "spec.yaml"),
    "table-missing-spec": ("research.table", lambda root: [str(root / "spec.yaml")], "spec.yaml"),
    "table-spec-not-yaml": ("research.table", lambda root: [str(written(root / "spec.yaml", "rows: [a\n"))],
                            "spec.yaml: not YAML"),
    "table-spec-a-list": ("research.table", lambda root: [str(written(root / "spec.yaml", "- a\n- b\n"))],
                          "spec.yaml: a table spec is a mapping"),
}


def written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.filterwarnings("ignore:'research.*' found in sys.modules:RuntimeWarning")  # imported by other tests
@pytest.mark.parametrize("case", OTHER_COMMANDS)
def test_the_other_command_lines_end_a_bad_path_in_one_line(case, tmp_path, capfd, monkeypatch):
    module, arguments, named = OTHER_COMMANDS[case]
    monkeypatch.chdir(tmp_path)  # whatever a command would write lands here
    monkeypatch.setattr(sys, "argv", [module, *arguments(tmp_path)])
    with pytest.raises(SystemExit) as exit:
        runpy.run_module(module, run_name="__main__", alter_sys=False)
    lines = capfd.readouterr().err.strip().splitlines() + [str(exit.value.code)]
    errors = [line for line in lines if line.startswith("error: ")]
    assert exit.value.code not in (0, None)
    assert len(errors) == 1 and not any("Traceback" in line for line in lines), lines
    assert named in errors[0]
