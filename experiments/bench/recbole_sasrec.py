"""Speed benchmark: our SASRec against RecBole's SASRec on Amazon Beauty, same hyper-parameters,
same leave-one-out full-ranking protocol, same thread count, each side in its own process, in
one run.

    python experiments/bench/recbole_sasrec.py --data-root ../shared/datasets/amazon-beauty \
        [--threads 1] [--max-epochs 200] [--patience 10] [--workdir outputs/bench/recbole_sasrec]

Needs `pip install -c constraints.txt -e '.[bench]'` (RecBole 1.2.1). Prints a markdown table
(and the machine) and writes it, with every per-epoch figure, to <workdir>/report.md and
<workdir>/summary.json.

Ours: `python -m research.train data=amazon_beauty model=sasrec` in the plain SASRec
configuration (item ids only: model.use_category=false, model.use_behavior=false) and with
eval.mask_history=false, because RecBole does not mask a user's earlier items in full-ranking
evaluation of sequential models (FullSortEvalDataLoader passes no history index for them).
Timings: PhaseTimer below, added through Hydra as an extra callback, which splits every epoch
into training only and validation with CUDA synchronised at each boundary (the run's own
EpochTimer reports the same split since commit "EpochTimer: the training clock stops when
validation starts"; before it, its training seconds included the validation pass).

RecBole: the same Beauty sequences as atomic files (user_id:token, item_id:token,
timestamp:float = position in the user's line), LS valid_and_test, order TO, mode full,
NDCG@10 / Hit@10, CE over all items, hyper-parameters read from our run's resolved config.
Timings wrap Trainer._train_epoch and Trainer._valid_epoch (the same synchronised clock).

RecBole 1.2.1 on current numpy/torch needs shims; they live here only (see _recbole_shims).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATASET = "beauty"  # RecBole's dataset name (folder and file stem)


# --------------------------------------------------------------------------------------------
# Ours: an extra Lightning callback, instantiated by research.train from
# `+callbacks.bench_phases._target_=recbole_sasrec.PhaseTimer` (experiments/bench on PYTHONPATH).
# Built lazily (PEP 562) so that the RecBole worker, which runs this file, never imports Lightning.


def __getattr__(name: str):
    if name == "PhaseTimer":
        return _phase_timer_class()
    raise AttributeError(name)


def _phase_timer_class():
    import lightning.pytorch as L
    import numpy as np
    import torch
    from lightning.pytorch.trainer.states import TrainerFn

    class PhaseTimer(L.Callback):
        """Per epoch: seconds of training alone (epoch start -> validation start), of the
        validation pass (validation start -> end: batches, metric computation and logging; not
        the checkpoint, which Lightning saves after every other callback), and of the whole
        epoch (start -> on_train_epoch_end). Also the test pass, and the
        protocol: counts and every validation / test target as raw (user, item) ids."""

        def __init__(self, path: str):
            self.path = Path(path)
            self.rec: dict = {"train": [], "val_fit": [], "val_final": [], "epoch": [], "test": []}
            self._t0 = self._v0 = self._s0 = 0.0

        @staticmethod
        def _now(pl_module) -> float:
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize(pl_module.device)
            return time.perf_counter()

        def on_fit_start(self, trainer, pl_module) -> None:
            dm = trainer.datamodule
            store, split = dm.store, dm.split
            items_raw = dm.data.items.sort("dense")["raw"].to_numpy()  # dense d -> items_raw[d - 1]
            users_raw = dm.data.users.sort("dense")["raw"].to_numpy()  # dense u -> users_raw[u]

            def raw_targets(pairs: torch.Tensor) -> np.ndarray:
                users, positions = pairs[:, 0], pairs[:, 1]
                items = store.items[store.offsets[users] + positions].numpy()
                return np.stack([users_raw[users.numpy()].astype(np.int64), items_raw[items - 1].astype(np.int64)], 1)

            np.savez(self.path.with_name("targets.npz"), val=raw_targets(split.val), test=raw_targets(split.test))
            self.rec["protocol"] = {
                "users": int(store.lengths.numel()),
                "items": int(dm.meta.num_items),
                "train_targets": int((split.train_end - 1).clamp(min=0).sum()),
                "train_rows": len(dm.train_set),
                "val_targets": len(dm.val_set),
                "test_targets": len(dm.test_set),
                "device": str(pl_module.device),
                "threads": torch.get_num_threads(),
            }

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self._t0 = self._now(pl_module)

        def on_validation_start(self, trainer, pl_module) -> None:
            now = self._now(pl_module)
            if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
                self.rec["train"].append(now - self._t0)
            self._v0 = now

        def on_validation_end(self, trainer, pl_module) -> None:
            key = "val_fit" if trainer.state.fn == TrainerFn.FITTING else "val_final"
            self.rec[key].append(self._now(pl_module) - self._v0)

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.rec["epoch"].append(self._now(pl_module) - self._t0)

        def on_test_start(self, trainer, pl_module) -> None:
            self._s0 = self._now(pl_module)

        def on_test_end(self, trainer, pl_module) -> None:
            self.rec["test"].append(self._now(pl_module) - self._s0)
            self.path.write_text(json.dumps(self.rec, indent=1))

    return PhaseTimer


# --------------------------------------------------------------------------------------------
# RecBole: shims, atomic files, config, worker


def _recbole_shims() -> list[str]:
    """Compatibility shims for RecBole 1.2.1 on numpy 2 / torch >= 2.6, applied in the RecBole
    worker process only. Returns what was applied (reported with the results)."""
    import numpy as np
    import torch

    applied = []
    # Config.compatibility_settings() does `np.float = np.float_` etc.; numpy 2 removed
    # float_/complex_/unicode_, so it raises AttributeError. Provide the numpy-1 aliases first.
    for old, new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, old):
            setattr(np, old, new)
            applied.append(f"np.{old} = {new.__name__}")
    # torch >= 2.6 loads weights only by default; RecBole's checkpoint (which it writes itself,
    # in this run) pickles its Config, so Trainer.evaluate(load_best_model=True) needs the old default.
    original_load = torch.load

    def load(*args, **kwargs):
        kwargs.setdefault("weights_only", False)
        return original_load(*args, **kwargs)

    torch.load = load
    applied.append("torch.load(weights_only=False) for RecBole's own checkpoint")
    # recbole.utils imports torch.utils.tensorboard (needs the tensorboard package) at import time
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        import types

        class SummaryWriter:
            def __init__(self, *args, **kwargs):
                pass

            def __getattr__(self, name):
                return lambda *args, **kwargs: None

        module = types.ModuleType("torch.utils.tensorboard")
        module.SummaryWriter = SummaryWriter
        sys.modules["torch.utils.tensorboard"] = module
        applied.append("torch.utils.tensorboard stubbed (tensorboard not installed)")
    # recbole.quick_start imports ray at module level: not imported here (own driver below);
    # thop (get_flops) and kmeans_pytorch (LDiffRec) are imported lazily and never reached.
    return applied


def write_atomic_files(root: Path, directory: Path) -> dict:
    """Beauty.txt -> <directory>/beauty/beauty.inter; timestamp = position in the user's line.
    Returns the raw protocol: users, items, events and the expected val/test targets."""
    import numpy as np
    import polars as pl

    from research.data.builders.amazon_s3rec import read_sequences

    events = read_sequences(Path(root) / "Beauty.txt").select("user_id", "item_id", "timestamp")
    folder = directory / DATASET
    folder.mkdir(parents=True, exist_ok=True)
    events.rename({"user_id": "user_id:token", "item_id": "item_id:token", "timestamp": "timestamp:float"}) \
        .write_csv(folder / f"{DATASET}.inter", separator="\t")
    per_user = events.sort("user_id", "timestamp").group_by("user_id", maintain_order=True).agg(
        pl.col("item_id").get(-2).alias("val"), pl.col("item_id").last().alias("test"), pl.len().alias("n"))
    users = per_user["user_id"].to_numpy().astype(np.int64)
    np.savez(directory / "expected_targets.npz",
             val=np.stack([users, per_user["val"].to_numpy().astype(np.int64)], 1),
             test=np.stack([users, per_user["test"].to_numpy().astype(np.int64)], 1))
    return {"users": per_user.height, "items": events["item_id"].n_unique(), "events": events.height,
            "train_targets": int((per_user["n"] - 3).clip(lower_bound=0).sum())}


def recbole_config(ours: dict, data_dir: Path, out: Path, threads: int, device: str) -> dict:
    """RecBole's config from our run's resolved config (the same hyper-parameters)."""
    model, dm, opt = ours["model"], ours["datamodule"], ours["optimizer"]
    early = ours["callbacks"].get("early_stopping") or {}
    if ours["loss"]["item"]["_target_"] != "research.losses.FullSoftmaxCE":
        raise SystemExit("ours must use loss=ce (full softmax), as RecBole's loss_type CE")
    if not opt["_target_"].endswith("Adam"):
        raise SystemExit("ours must use Adam, as RecBole's learner adam")
    patience = int(early.get("patience", 10 ** 6))
    return {
        "data_path": str(data_dir),
        "checkpoint_dir": str(out / "saved"),
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "user_inter_num_interval": "[0,inf)", "item_inter_num_interval": "[0,inf)",  # no filtering
        "MAX_ITEM_LIST_LENGTH": int(dm["max_len"]),
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["NDCG", "Hit"], "topk": [10], "valid_metric": "NDCG@10",
        "loss_type": "CE", "train_neg_sample_args": None,
        "hidden_size": int(model["hidden_size"]), "inner_size": 4 * int(model["hidden_size"]),  # ours: 4x FFN
        "n_layers": int(model["num_layers"]), "n_heads": int(model["num_heads"]),
        "hidden_dropout_prob": float(model["dropout"]), "attn_dropout_prob": float(model["dropout"]),
        "hidden_act": "gelu",  # as ours
        "learner": "adam", "learning_rate": float(opt["lr"]), "weight_decay": float(opt["weight_decay"]),
        "train_batch_size": int(dm["batch_size"]), "eval_batch_size": int(dm["eval_batch_size"]),
        "epochs": int(ours["trainer"]["max_epochs"]), "eval_step": int(ours["trainer"]["check_val_every_n_epoch"]),
        # RecBole stops when more than stopping_step evaluations in a row did not improve;
        # Lightning's EarlyStopping when `patience` in a row did not: patience - 1 is the same rule.
        "stopping_step": max(patience - 1, 0),
        "seed": int(ours["seed"]), "reproducibility": True,  # RecBole's default
        "gpu_id": "0" if device != "cpu" else "",  # RecBole picks cuda when gpu_id is set and CUDA is there
        "worker": 0, "show_progress": False, "save_dataset": False, "save_dataloaders": False,
        "log_wandb": False, "state": "INFO",
        "_threads": threads,
    }


def recbole_worker(params_path: Path) -> None:
    import numpy as np
    import torch

    params = json.loads(params_path.read_text())
    out = params_path.parent
    threads = params.pop("_threads")
    torch.set_num_threads(threads)
    shims = _recbole_shims()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    t_setup = time.perf_counter()
    config = Config(model="SASRec", dataset=DATASET, config_dict=params)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model("SASRec")(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], "SASRec")(config, model)
    setup_seconds = time.perf_counter() - t_setup
    device = config["device"]

    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    rec: dict = {"train": [], "val_fit": [], "val_scores": [], "epoch_start": [], "shims": shims}
    train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch

    def timed_train_epoch(*args, **kwargs):
        t = now()
        rec["epoch_start"].append(t)
        result = train_epoch(*args, **kwargs)
        rec["train"].append(now() - t)
        return result

    def timed_valid_epoch(*args, **kwargs):
        t = now()
        score, result = valid_epoch(*args, **kwargs)
        rec["val_fit"].append(now() - t)
        rec["val_scores"].append(float(score))
        return score, result

    trainer._train_epoch, trainer._valid_epoch = timed_train_epoch, timed_valid_epoch
    trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    fit_end = now()
    starts = rec.pop("epoch_start")
    rec["epoch"] = [b - a for a, b in zip(starts, starts[1:] + [fit_end])]  # train + valid + checkpoint
    t = now()
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    rec["test"] = [now() - t]
    rec["test_result"] = {k: float(v) for k, v in test.items()}

    def raw_targets(data) -> np.ndarray:
        ds = data._dataset
        uid, iid = ds.inter_feat[ds.uid_field].numpy(), ds.inter_feat[ds.iid_field].numpy()
        return np.stack([ds.field2id_token[ds.uid_field][uid].astype(np.int64),
                         ds.field2id_token[ds.iid_field][iid].astype(np.int64)], 1)

    np.savez(out / "targets.npz", val=raw_targets(valid_data), test=raw_targets(test_data))
    rec["protocol"] = {
        "users": int(dataset.user_num - 1), "items": int(dataset.item_num - 1),  # minus [PAD]
        "train_targets": len(train_data._dataset), "val_targets": len(valid_data._dataset),
        "test_targets": len(test_data._dataset), "device": str(device), "threads": torch.get_num_threads(),
        "setup_seconds": setup_seconds, "parameters": sum(p.numel() for p in model.parameters()),
    }
    (out / "recbole.json").write_text(json.dumps(rec, indent=1))


# --------------------------------------------------------------------------------------------
# The driver


def run_logged(cmd: list[str], log: Path, env: dict, cwd: Path) -> float:
    t = time.perf_counter()
    with open(log, "w") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    if code != 0:
        sys.stderr.write(log.read_text()[-6000:])
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}\nlog: {log}")
    return time.perf_counter() - t


def mean(values: list[float], skip_first: bool) -> float:
    values = values[1:] if skip_first and len(values) > 1 else values
    return sum(values) / len(values) if values else float("nan")


def machine(device: str) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if device != "cpu" and torch.cuda.is_available() else "no GPU used"
    return (f"{gpu}; CPU {cpu}, {os.cpu_count()} logical cores; torch {torch.__version__}, "
            f"Python {platform.python_version()}")


def compare_targets(a: Path, b: Path) -> dict:
    import numpy as np

    out = {}
    with np.load(a) as x, np.load(b) as y:
        for split in ("val", "test"):
            p, q = x[split], y[split]
            p, q = p[np.lexsort(p.T[::-1])], q[np.lexsort(q.T[::-1])]
            out[split] = bool(p.shape == q.shape and (p == q).all())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(REPO.parent / "shared/datasets/amazon-beauty"))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 1)))
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=10, help="early stopping; 0 = fixed number of epochs")
    parser.add_argument("--device", choices=["auto", "cpu"], default="auto")
    parser.add_argument("--workdir", default=str(REPO / "outputs/bench/recbole_sasrec"))
    parser.add_argument("--src", default=str(REPO),
                        help="the tree whose research/ and conf/ run as ours (default: this checkout)")
    parser.add_argument("--skip", choices=["ours", "recbole"],
                        help="reuse that side's results from --workdir (with --skip recbole and none there: "
                             "run ours only, e.g. when one machine session cannot hold both runs)")
    parser.add_argument("--recbole-max-epochs", type=int,
                        help="cap RecBole's epochs below ours' (a time limit); the report says if it was reached")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: the RecBole process
    args, extra = parser.parse_known_args()
    if args.worker:
        recbole_worker(Path(args.worker))
        return

    src = Path(args.src).resolve()
    sys.path.insert(0, str(src))  # read_sequences below from the same tree as ours
    commit = (src / "COMMIT").read_text().strip() if (src / "COMMIT").is_file() else subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=src).stdout.strip()
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data_root = Path(args.data_root).resolve()
    py = sys.executable
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               WANDB_MODE="offline", WANDB_X_DISABLE_STATS="true", TQDM_MINITERS="1000",
               PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(src), *filter(None, [os.environ.get("PYTHONPATH")])])

    # ---- ours
    ours_dir = work / "ours"
    overrides = [
        "data=amazon_beauty", f"data.root={data_root}", "model=sasrec", "loss=ce", "task=next_item",
        "split=leave_one_out", "model.use_category=false", "model.use_behavior=false", "eval.mask_history=false",
        "compile=false", "logger=csv", f"threads={args.threads}", f"trainer.max_epochs={args.max_epochs}",
        "trainer.accelerator=cpu" if args.device == "cpu" else "trainer.accelerator=auto",
        "callbacks.progress_bar.refresh_rate=1000",
        *(["~callbacks.early_stopping"] if args.patience <= 0 else
          [f"callbacks.early_stopping.patience={args.patience}"]),
        "+callbacks.bench_phases._target_=recbole_sasrec.PhaseTimer",
        f"+callbacks.bench_phases.path={ours_dir / 'phases.json'}",
        f"hydra.run.dir={ours_dir}", *extra,
    ]
    ours_cmd = [py, "-m", "research.train", *overrides]
    if args.skip != "ours":
        print(f"ours: {' '.join(ours_cmd[1:])}", flush=True)
        ours_wall = run_logged(ours_cmd, work / "ours.log", env, src)
        (ours_dir / "wall.json").write_text(json.dumps({"wall": ours_wall, "command": ours_cmd[1:]}))
    ours_wall = json.loads((ours_dir / "wall.json").read_text())["wall"]
    if args.skip == "recbole" and not (work / "recbole" / "recbole.json").is_file():
        print(f"ours only: results in {ours_dir}")
        return
    from omegaconf import OmegaConf  # our run's resolved config: the hyper-parameters RecBole gets

    ours_cfg = OmegaConf.to_container(OmegaConf.load(ours_dir / "config.yaml"), resolve=False)
    ours_metrics = json.loads((ours_dir / "metrics.json").read_text())
    ours_phases = json.loads((ours_dir / "phases.json").read_text())
    curve = [json.loads(line) for line in (ours_dir / "validation_curve.jsonl").read_text().splitlines()]

    # ---- RecBole
    rb_dir = work / "recbole"
    rb_dir.mkdir(exist_ok=True)
    raw = write_atomic_files(data_root, rb_dir / "data")
    params = recbole_config(ours_cfg, rb_dir / "data", rb_dir, args.threads, args.device)
    if args.patience <= 0:
        params["stopping_step"] = 10 ** 6
    if args.recbole_max_epochs:
        params["epochs"] = min(params["epochs"], args.recbole_max_epochs)
    (rb_dir / "params.json").write_text(json.dumps(params, indent=1))
    rb_cmd = [py, str(Path(__file__).resolve()), "--worker", str(rb_dir / "params.json")]
    if args.skip != "recbole":
        print(f"recbole: {' '.join(rb_cmd[1:])}", flush=True)
        rb_wall = run_logged(rb_cmd, work / "recbole.log", env, rb_dir)
        rec = json.loads((rb_dir / "recbole.json").read_text())
        (rb_dir / "recbole.json").write_text(json.dumps({**rec, "wall": rb_wall}, indent=1))
    rb = json.loads((rb_dir / "recbole.json").read_text())
    rb_wall = rb.get("wall", float("nan"))

    # ---- protocol checks
    expected = rb_dir / "data" / "expected_targets.npz"
    checks = {
        "ours_targets_match_raw": compare_targets(ours_dir / "targets.npz", expected),
        "recbole_targets_match_raw": compare_targets(rb_dir / "targets.npz", expected),
        "raw": raw, "ours": ours_phases["protocol"], "recbole": rb["protocol"],
    }
    same = all(checks["ours"][k] == checks["recbole"][k] == raw[k] for k in ("users", "items", "train_targets")) \
        and all(checks["ours_targets_match_raw"].values()) and all(checks["recbole_targets_match_raw"].values())

    # ---- table
    o_best = max(range(len(curve)), key=lambda i: curve[i]["val/ndcg@10"]) if curve else -1
    r_scores = rb["val_scores"]
    r_best = max(range(len(r_scores)), key=lambda i: (r_scores[i], i)) if r_scores else -1  # RecBole: >= wins
    train_users = ours_phases["protocol"]["users"]
    rows = []

    def row(label, o, r, fmt="{:.3f}", ratio="speed"):
        if ratio == "speed":
            rat = f"{r / o:.2f}x" if o else "-"
        elif ratio == "diff":
            rat = f"{o - r:+.4f}"
        else:
            rat = ""
        rows.append(f"| {label} | {fmt.format(o)} | {fmt.format(r)} | {rat} |")

    for skip in (True, False):
        which = "epochs 2..E" if skip else "all epochs"
        row(f"s / training epoch, training only ({which})", mean(ours_phases["train"], skip), mean(rb["train"], skip))
        row(f"s / full validation pass ({which})", mean(ours_phases["val_fit"], skip), mean(rb["val_fit"], skip))
        row(f"s / epoch incl. validation + checkpoint ({which})", mean(ours_phases["epoch"], skip),
            mean(rb["epoch"], skip))
    row("s / test pass (best checkpoint)", ours_phases["test"][-1], rb["test"][-1])
    row("training throughput, users / s (epochs 2..E)", train_users / mean(ours_phases["train"], True),
        train_users / mean(rb["train"], True), "{:.0f}", ratio="none")
    rows.append(f"| epochs run (best epoch) | {len(ours_phases['train'])} ({o_best + 1}) | "
                f"{len(rb['train'])} ({r_best + 1}) | |")
    row("val NDCG@10 (best epoch)", curve[o_best]["val/ndcg@10"], r_scores[r_best], "{:.4f}", ratio="diff")
    row("test NDCG@10", ours_metrics["test/ndcg@10"], rb["test_result"]["ndcg@10"], "{:.4f}", ratio="diff")
    row("test Hit@10", ours_metrics["test/hit@10"], rb["test_result"]["hit@10"], "{:.4f}", ratio="diff")
    row("process wall seconds (build/load, train, test)", ours_wall, rb_wall, "{:.0f}", ratio="none")

    protocol = checks["ours"]
    stopping = (f"fixed {args.max_epochs} epochs, both" if args.patience <= 0 else
                f"early stopping on val NDCG@10, patience {args.patience} (RecBole stopping_step "
                f"{params['stopping_step']}, the same rule), at most {args.max_epochs} epochs")
    if params["epochs"] < args.max_epochs:
        reached = len(rb["train"]) >= params["epochs"]
        stopping += (f"; RecBole capped at {params['epochs']} epochs (time limit): "
                     + ("it REACHED the cap, so it did not early-stop" if reached else "it early-stopped before"))
    lines = [
        "| | ours | RecBole 1.2.1 | RecBole / ours (speed-up); ours - RecBole (metrics) |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Machine: {machine(args.device)}; {args.threads} thread(s) for both (OMP_NUM_THREADS, "
        f"torch.set_num_threads; ours on {protocol['device']}, RecBole on {rb['protocol']['device']}); "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}.",
        f"Protocol: {protocol['users']} users, {protocol['items']} items, {protocol['train_targets']} training "
        f"targets per epoch, {protocol['val_targets']} validation / {protocol['test_targets']} test targets "
        f"(leave-one-out, full ranking over all items, history not masked); identical on both sides and equal "
        f"to Beauty.txt's last / second-to-last items: {same}.",
        f"Stopping: {stopping}.",
        f"EpochTimer (research.callbacks, all epochs): time/train_epoch_seconds {ours_metrics['time/train_epoch_seconds']:.3f} "
        f"(training only from the EpochTimer fix on; before it, it included the validation pass), "
        f"time/eval_pass_seconds {ours_metrics['time/eval_pass_seconds']:.3f}.",
        f"RecBole shims (benchmark process only): {'; '.join(rb['shims'])}.",
        f"Code: research/ and conf/ at commit {commit or '?'} ({src}).",
        f"Command: python experiments/bench/recbole_sasrec.py {' '.join(sys.argv[1:])}",
    ]
    report = "\n".join(lines)
    print(report)
    (work / "report.md").write_text(report + "\n")
    (work / "summary.json").write_text(json.dumps({
        "ours": {"phases": ours_phases, "metrics": {k: v for k, v in ours_metrics.items() if "/" in k and
                                                    k.split("/")[1] in ("ndcg@10", "hit@10") or k.startswith("time/")},
                 "curve_ndcg10": [c["val/ndcg@10"] for c in curve], "command": ours_cmd[1:], "wall": ours_wall},
        "recbole": {**rb, "params": params, "command": rb_cmd[1:], "wall": rb_wall},
        "checks": checks, "protocol_identical": same, "commit": commit, "machine": machine(args.device), "argv": sys.argv,
    }, indent=1, default=str))


if __name__ == "__main__":
    main()
