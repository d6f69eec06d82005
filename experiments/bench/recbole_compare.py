"""One of our sequence models against RecBole 1.2.1's model of the same name on Amazon Beauty,
side by side in one command: RecBole at its own default configuration (its model yaml, e.g.
sasrec.yaml: d=64, 2 layers, 2 heads, feed-forward 256, hidden and attention dropout 0.5, GELU,
LayerNorm eps 1e-12, N(0, 0.02) init, CE over all items; lr 1e-3), ours at our defaults for the
model (`model=<ours>`; extra `key=value` arguments are passed to ours), both on the same
leave-one-out full-ranking protocol and thread count. The report puts both sides'
hyper-parameters in RecBole's names side by side, with whether each network has a learned
output bias per item, and says whether they are identical (SASRec: ours are RecBole's; BERT4Rec:
RecBole's has the bias, ours at `model.item_bias=true`, and differs in `ft_ratio`; GRU4Rec: ours
differ, see conf/model/gru.yaml).

    python experiments/bench/recbole_compare.py --data-root ../shared/datasets/amazon-beauty \
        [--model sasrec|gru4rec|bert4rec] [--threads 1] [--max-epochs 200] [--budget-seconds S] \
        [--parallel] [--workdir DIR] [our overrides ...]

Without --budget-seconds both sides train to convergence (early stopping: ours its default,
RecBole its stopping_step 10). With it, each side trains for at most S wall seconds from the
start of its fit (for CPU machines, where RecBole needs hours); --parallel runs both sides at
once, one process each (on 2 cores with --threads 1: one core each). Needs
`pip install -c constraints.txt -e '.[bench]'` (RecBole 1.2.1). Writes <workdir>/report.md,
<workdir>/summary.json and <workdir>/val_ndcg_vs_seconds.png (validation NDCG@10 against
seconds since the start of each side's fit).

Ours: `python -m research.train data=amazon_beauty model=<ours>` with item ids only
(model.use_category=false, model.use_behavior=false) and eval.mask_history=false, because RecBole
does not mask a user's earlier items in full-ranking evaluation of sequential models. It
trains on RecBole's rows with RecBole's batch (`--recbole-batch-size`, 256 as the measurement in
the mission): for SASRec and GRU4Rec, which RecBole trains on every prefix of a sequence with one
target each, task.train_rows=prefixes (the same prefixes, each encoded anew); for BERT4Rec, whole
sequences (user windows). Timings:
PhaseTimer below, added through Hydra as an extra callback (training only / validation split,
CUDA synchronised at each boundary, and the clock of every validation since the fit started).

RecBole: the same Beauty sequences as atomic files (user_id:token, item_id:token,
timestamp:float = position in the user's line), LS valid_and_test, order TO, mode full,
NDCG@10 / Hit@10. Timings wrap Trainer._train_epoch and Trainer._valid_epoch (the same clock).

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
# `+callbacks.bench_phases._target_=recbole_compare.PhaseTimer` (experiments/bench on PYTHONPATH).
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
            self.rec: dict = {"train": [], "val_fit": [], "val_final": [], "epoch": [], "test": [], "val_clock": []}
            self._t0 = self._v0 = self._s0 = self._fit0 = 0.0

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

        def on_train_start(self, trainer, pl_module) -> None:
            self._fit0 = self._now(pl_module)

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self._t0 = self._now(pl_module)

        def on_validation_start(self, trainer, pl_module) -> None:
            now = self._now(pl_module)
            if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
                self.rec["train"].append(now - self._t0)
            self._v0 = now

        def on_validation_end(self, trainer, pl_module) -> None:
            key = "val_fit" if trainer.state.fn == TrainerFn.FITTING else "val_final"
            now = self._now(pl_module)
            self.rec[key].append(now - self._v0)
            if key == "val_fit":
                self.rec["val_clock"].append(now - self._fit0)  # seconds since the fit started

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


# Each model: our config name, RecBole's model name, and our resolved config in RecBole's
# hyper-parameter names (the keys of RecBole 1.2.1's <Model>.yaml that define the network, plus
# the learning rate). RecBole reads its values from its own yaml (they are not passed); the
# worker reports what it used, and the report compares the two key by key.


def _sasrec_hp(cfg: dict) -> dict:
    model, block = cfg["model"], cfg["model"]["block"]
    return {"hidden_size": model["hidden_size"], "inner_size": block["inner_factor"] * model["hidden_size"],
            "n_layers": model["num_layers"], "n_heads": model["num_heads"], "hidden_dropout_prob": model["dropout"],
            "attn_dropout_prob": model["attention_dropout"], "hidden_act": block["activation"],
            "layer_norm_eps": block["eps"], "initializer_range": model["init_std"]}


def _bert4rec_hp(cfg: dict) -> dict:
    return _sasrec_hp(cfg) | {"mask_ratio": cfg["model"]["mask_prob"], "ft_ratio": cfg["model"]["last_only_prob"]}


def _gru4rec_hp(cfg: dict) -> dict:
    model = cfg["model"]
    return {"embedding_size": model["embedding_size"] or model["hidden_size"], "hidden_size": model["hidden_size"],
            "num_layers": model["num_layers"], "dropout_prob": model["dropout"]}


# and RecBole's training rows in our task.train_rows: SASRec and GRU4Rec train on every prefix of a
# sequence, one target each (prefixes); BERT4Rec on whole masked sequences (windows)
MODELS = {  # --model: (our conf/model option, RecBole's model name, our config -> RecBole's names, rows)
    "sasrec": ("sasrec", "SASRec", _sasrec_hp, "prefixes"),
    "gru4rec": ("gru", "GRU4Rec", _gru4rec_hp, "prefixes"),
    "bert4rec": ("bert4rec", "BERT4Rec", _bert4rec_hp, "windows"),
}


BATCH_COUNTS = {"prefixes": "single-target prefixes", "windows": "user windows (every position a target)",
                "targets": "training targets (user windows packed to about that many)"}


def batch_counts(cfg: dict) -> str:
    """What our batch_size counts: prefixes, windows or targets (a prefix is one target)."""
    rows, unit = cfg["task"]["train_rows"], cfg["datamodule"]["batch_unit"]
    return rows if unit == "windows" or rows == "prefixes" else "targets"


def ours_hyper_parameters(cfg: dict, model: str) -> dict:
    """Our resolved config in RecBole's names, plus the learning rate and the batch (a number where
    it counts RecBole's rows, else with what it counts, so that the two differ)."""
    hp = MODELS[model][2](cfg) | {"learning_rate": cfg["optimizer"]["lr"]}
    size, counts = cfg["datamodule"]["batch_size"], batch_counts(cfg)
    hp["train_batch_size"] = size if counts == MODELS[model][3] else f"{size} {counts}"
    if "block" in cfg["model"]:
        hp["block"] = cfg["model"]["block"]["_target_"].rsplit(".", 1)[-1]
    hp["output_bias"] = cfg["model"]["item_bias"]  # a learned score offset per item
    return hp


def recbole_config(data_dir: Path, out: Path, args) -> dict:
    """Protocol and training-loop keys only: the model's hyper-parameters are RecBole's own."""
    return {
        "data_path": str(data_dir),
        "checkpoint_dir": str(out / "saved"),
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "user_inter_num_interval": "[0,inf)", "item_inter_num_interval": "[0,inf)",  # no filtering
        "MAX_ITEM_LIST_LENGTH": 50,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["NDCG", "Hit"], "topk": [10], "valid_metric": "NDCG@10",
        "loss_type": "CE", "train_neg_sample_args": None,
        "train_batch_size": args.recbole_batch_size, "eval_batch_size": 512,
        "epochs": args.max_epochs, "eval_step": 1, "stopping_step": 10,  # RecBole's default patience
        "seed": args.seed, "reproducibility": True,  # RecBole's default
        "gpu_id": "0" if args.device != "cpu" else "",  # RecBole picks cuda when gpu_id is set and CUDA is there
        "worker": 0, "show_progress": False, "save_dataset": False, "save_dataloaders": False,
        "log_wandb": False, "state": "INFO",
        "_threads": args.threads, "_budget": args.budget_seconds, "_model": MODELS[args.model][1],
    }


def recbole_worker(params_path: Path) -> None:
    import numpy as np
    import torch

    params = json.loads(params_path.read_text())
    out = params_path.parent
    threads, budget, name = params.pop("_threads"), params.pop("_budget"), params.pop("_model")
    torch.set_num_threads(threads)
    shims = _recbole_shims()
    import recbole
    import yaml
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    t_setup = time.perf_counter()
    config = Config(model=name, dataset=DATASET, config_dict=params)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(name)(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], name)(config, model)
    setup_seconds = time.perf_counter() - t_setup
    device = config["device"]

    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    own_yaml = Path(recbole.__file__).parent / "properties" / "model" / f"{name}.yaml"
    hp_keys = [*yaml.safe_load(own_yaml.read_text()), "learning_rate", "train_batch_size"]
    rec: dict = {"train": [], "val_fit": [], "val_scores": [], "val_clock": [], "epoch_start": [], "shims": shims,
                 "hyper_parameters": {k: config[k] for k in hp_keys} | {"output_bias": hasattr(model, "output_bias")},
                 "budget_reached": False}
    train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch

    class BudgetSpent(Exception):
        pass

    def timed_train_epoch(*args, **kwargs):
        t = now()
        if budget and t - fit_start >= budget:  # no epoch starts after the budget is spent
            rec["budget_reached"] = True
            raise BudgetSpent
        rec["epoch_start"].append(t)
        result = train_epoch(*args, **kwargs)
        rec["train"].append(now() - t)
        return result

    def timed_valid_epoch(*args, **kwargs):
        t = now()
        score, result = valid_epoch(*args, **kwargs)
        end = now()
        rec["val_fit"].append(end - t)
        rec["val_clock"].append(end - fit_start)  # seconds since the fit started
        rec["val_scores"].append(float(score))
        return score, result

    trainer._train_epoch, trainer._valid_epoch = timed_train_epoch, timed_valid_epoch
    fit_start = now()
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    except BudgetSpent:  # the best epoch's checkpoint is already saved
        pass
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


def start_logged(cmd: list[str], log: Path, env: dict, cwd: Path) -> tuple[subprocess.Popen, float]:
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd), time.perf_counter()


def wait_logged(proc: subprocess.Popen, started: float, cmd: list[str], log: Path) -> float:
    code = proc.wait()
    if code != 0:
        sys.stderr.write(log.read_text()[-6000:])
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}\nlog: {log}")
    return time.perf_counter() - started


def time_to_reach(clock: list[float], scores: list[float], target: float) -> float | None:
    """Seconds since the fit started until the first validation at or above `target`."""
    return next((t for t, v in zip(clock, scores) if v >= target), None)


def plot_curves(path: Path, ours: tuple[list, list], recbole: tuple[list, list], title: str, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ours_name, recbole_name, *_ = MODELS[model]
    ax.plot(*ours, marker=".", label=f"ours (research.train, model={ours_name})")
    ax.plot(*recbole, marker="o", label=f"RecBole 1.2.1 {recbole_name} (its defaults)")
    if recbole[1]:
        ax.axhline(max(recbole[1]), color="grey", linestyle="--", linewidth=0.8, label="RecBole's best")
    ax.set_xlabel("wall-clock seconds since the start of training")
    ax.set_ylabel("validation NDCG@10 (full ranking, unmasked)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
    parser.add_argument("--model", choices=sorted(MODELS), default="sasrec")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 1)))
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--budget-seconds", type=int, default=0,
                        help="train each side for at most this many wall seconds from the start of its fit (0: none)")
    parser.add_argument("--parallel", action="store_true", help="run both sides at the same time")
    parser.add_argument("--recbole-batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["auto", "cpu"], default="auto")
    parser.add_argument("--workdir", help="default: outputs/bench/recbole_<model>")
    parser.add_argument("--src", default=str(REPO),
                        help="the tree whose research/ and conf/ run as ours (default: this checkout)")
    parser.add_argument("--skip", nargs="+", choices=["ours", "recbole"], default=[],
                        help="reuse these sides' results from --workdir (both: only rewrite the report)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: the RecBole process
    args, extra = parser.parse_known_args()
    if args.worker:
        recbole_worker(Path(args.worker))
        return

    src = Path(args.src).resolve()
    sys.path.insert(0, str(src))  # read_sequences below from the same tree as ours
    commit = (src / "COMMIT").read_text().strip() if (src / "COMMIT").is_file() else subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=src).stdout.strip()
    work = Path(args.workdir or REPO / f"outputs/bench/recbole_{args.model}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    data_root = Path(args.data_root).resolve()
    py = sys.executable
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               WANDB_MODE="offline", WANDB_X_DISABLE_STATS="true", TQDM_MINITERS="1000",
               PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(src), *filter(None, [os.environ.get("PYTHONPATH")])])

    ours_dir, rb_dir = work / "ours", work / "recbole"
    budget = args.budget_seconds
    overrides = [
        "data=amazon_beauty", f"data.root={data_root}", f"model={MODELS[args.model][0]}", "loss=ce", "task=next_item",
        "split=leave_one_out", "model.use_category=false", "model.use_behavior=false", "eval.mask_history=false",
        f"task.train_rows={MODELS[args.model][3]}", f"datamodule.batch_size={args.recbole_batch_size}",
        "compile=false", "logger=csv", f"threads={args.threads}", f"trainer.max_epochs={args.max_epochs}",
        f"seed={args.seed}", "trainer.accelerator=cpu" if args.device == "cpu" else "trainer.accelerator=auto",
        "callbacks.progress_bar.refresh_rate=1000",
        *([f"+trainer.max_time=00:{budget // 3600:02d}:{budget % 3600 // 60:02d}:{budget % 60:02d}"] if budget else []),
        "+callbacks.bench_phases._target_=recbole_compare.PhaseTimer",
        f"+callbacks.bench_phases.path={ours_dir / 'phases.json'}",
        f"hydra.run.dir={ours_dir}", *extra,
    ]
    ours_cmd = [py, "-m", "research.train", *overrides]
    rb_dir.mkdir(exist_ok=True)
    raw = write_atomic_files(data_root, rb_dir / "data")
    params = recbole_config(rb_dir / "data", rb_dir, args)
    (rb_dir / "params.json").write_text(json.dumps(params, indent=1))
    rb_cmd = [py, str(Path(__file__).resolve()), "--worker", str(rb_dir / "params.json")]

    jobs = [(name, cmd, work / f"{name}.log", cwd) for name, cmd, cwd in
            (("ours", ours_cmd, src), ("recbole", rb_cmd, rb_dir)) if name not in args.skip]
    walls = {}
    if args.parallel:
        started = [(name, cmd, log, *start_logged(cmd, log, env, cwd)) for name, cmd, log, cwd in jobs]
        for name, cmd, log, proc, t0 in started:
            print(f"{name}: {' '.join(cmd[1:])}", flush=True)
            walls[name] = wait_logged(proc, t0, cmd, log)
    else:
        for name, cmd, log, cwd in jobs:
            print(f"{name}: {' '.join(cmd[1:])}", flush=True)
            walls[name] = wait_logged(*start_logged(cmd, log, env, cwd), cmd, log)
    if "ours" in walls:
        (ours_dir / "wall.json").write_text(json.dumps({"wall": walls["ours"], "command": ours_cmd[1:]}))
    if "recbole" in walls:
        rec = json.loads((rb_dir / "recbole.json").read_text())
        (rb_dir / "recbole.json").write_text(json.dumps({**rec, "wall": walls["recbole"]}, indent=1))
    report(args, work, ours_dir, rb_dir, raw, params, ours_cmd, rb_cmd, commit, src)


def report(args, work, ours_dir, rb_dir, raw, params, ours_cmd, rb_cmd, commit, src) -> None:
    from omegaconf import OmegaConf  # our run's resolved config: its hyper-parameters

    from research.callbacks import ValidationCurve
    from research.markdown import table

    ours_wall = json.loads((ours_dir / "wall.json").read_text())["wall"]
    ours_cfg = OmegaConf.to_container(OmegaConf.load(ours_dir / "config.yaml"), resolve=True)
    ours_hp, ours_batch = ours_hyper_parameters(ours_cfg, args.model), ours_cfg["datamodule"]["batch_size"]
    ours_metrics = json.loads((ours_dir / "metrics.json").read_text())
    ours_phases = json.loads((ours_dir / "phases.json").read_text())
    curve = ValidationCurve.read(ours_dir / "validation_curve.jsonl")
    rb = json.loads((rb_dir / "recbole.json").read_text())
    rb_wall = rb.get("wall", float("nan"))
    recbole_name = MODELS[args.model][1]
    compared = [k for k in ours_hp if k in rb["hyper_parameters"]]
    differ = {k: (ours_hp[k], rb["hyper_parameters"][k]) for k in compared if ours_hp[k] != rb["hyper_parameters"][k]}
    same_model = not differ

    # ---- protocol checks
    expected = rb_dir / "data" / "expected_targets.npz"
    checks = {
        "ours_targets_match_raw": compare_targets(ours_dir / "targets.npz", expected),
        "recbole_targets_match_raw": compare_targets(rb_dir / "targets.npz", expected),
        "raw": raw, "ours": ours_phases["protocol"], "recbole": rb["protocol"],
    }
    same = all(checks["ours"][k] == checks["recbole"][k] == raw[k] for k in ("users", "items", "train_targets")) \
        and all(checks["ours_targets_match_raw"].values()) and all(checks["recbole_targets_match_raw"].values())

    # ---- curves and time to RecBole's best
    o_scores = [c["val/ndcg@10"] for c in curve]
    o_clock = ours_phases["val_clock"][:len(o_scores)]
    r_scores, r_clock = rb["val_scores"], rb["val_clock"]
    o_best = max(range(len(o_scores)), key=lambda i: o_scores[i]) if o_scores else -1
    r_best = max(range(len(r_scores)), key=lambda i: (r_scores[i], i)) if r_scores else -1  # RecBole: >= wins
    r_time = r_clock[r_best] if r_best >= 0 else float("nan")
    o_time = time_to_reach(o_clock, o_scores, r_scores[r_best]) if r_best >= 0 else None
    plot = work / "val_ndcg_vs_seconds.png"
    budget_text = f"{args.budget_seconds} s budget each" if args.budget_seconds else "to convergence"
    plot_curves(plot, (o_clock, o_scores), (r_clock, r_scores),
                f"{recbole_name} on Amazon Beauty, {args.threads} thread(s) each, {budget_text}\n"
                f"{machine(args.device).split('; torch')[0]}", args.model)
    train_users = ours_phases["protocol"]["users"]
    rows = []

    def row(label, o, r, fmt="{:.3f}", ratio="speed"):
        if ratio == "speed":
            rat = f"{r / o:.2f}x" if o else "-"
        elif ratio == "diff":
            rat = f"{o - r:+.4f}"
        else:
            rat = ""
        rows.append([label, fmt.format(o), fmt.format(r), rat])

    for skip in (True, False):
        which = "epochs 2..E" if skip else "all epochs"
        row(f"s / training epoch, training only ({which})", mean(ours_phases["train"], skip), mean(rb["train"], skip))
        row(f"s / full validation pass ({which})", mean(ours_phases["val_fit"], skip), mean(rb["val_fit"], skip))
    row("s / test pass (best checkpoint)", ours_phases["test"][-1], rb["test"][-1])
    row("training throughput, users / s (epochs 2..E)", train_users / mean(ours_phases["train"], True),
        train_users / mean(rb["train"], True), "{:.0f}", ratio="none")
    rows.append(["epochs run (best epoch)", f"{len(ours_phases['train'])} ({o_best + 1})",
                 f"{len(rb['train'])} ({r_best + 1})", ""])
    row("val NDCG@10 (best epoch)", o_scores[o_best], r_scores[r_best], "{:.4f}", ratio="diff")
    row("test NDCG@10", ours_metrics["test/ndcg@10"], rb["test_result"]["ndcg@10"], "{:.4f}", ratio="diff")
    row("test Hit@10", ours_metrics["test/hit@10"], rb["test_result"]["hit@10"], "{:.4f}", ratio="diff")
    reach = f"{o_time:.0f}" if o_time is not None else "never"
    ratio = f"{o_time / r_time:.3f} of RecBole's" if o_time is not None and r_time else ""
    rows.append([f"s from fit start to RecBole's best val NDCG@10 ({r_scores[r_best]:.4f})", reach, f"{r_time:.0f}",
                 ratio])
    row("process wall seconds (build/load, train, test)", ours_wall, rb_wall, "{:.0f}", ratio="none")

    protocol = checks["ours"]
    stopping = (f"a budget of {args.budget_seconds} s of training per side (no epoch starts after it; ours "
                f"stops at the step where it runs out); RecBole reached it: {rb['budget_reached']}"
                if args.budget_seconds else "early stopping on val NDCG@10: RecBole stopping_step 10, ours its default")
    lines = [
        *table(["", "ours", "RecBole 1.2.1", "RecBole / ours (speed-up); ours - RecBole (metrics)"], rows),
        "",
        f"Machine: {machine(args.device)}; {args.threads} thread(s) for each side (OMP_NUM_THREADS, "
        f"torch.set_num_threads; ours on {protocol['device']}, RecBole on {rb['protocol']['device']}); "
        f"{'both sides at once' if args.parallel else 'one side at a time'}; "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}.",
        f"Model hyper-parameters: RecBole {rb['hyper_parameters']} (its {recbole_name}.yaml); ours {ours_hp}; "
        f"identical on {', '.join(compared)}: {same_model}"
        f"{'' if same_model else ' (ours, RecBole: ' + str(differ) + ')'}. "
        f"Batches: ours {ours_batch} {BATCH_COUNTS[batch_counts(ours_cfg)]}, RecBole {params['train_batch_size']} "
        f"{'single-target prefixes' if MODELS[args.model][3] == 'prefixes' else 'whole sequences'}.",
        f"Protocol: {protocol['users']} users, {protocol['items']} items, {protocol['train_targets']} training "
        f"targets per epoch, {protocol['val_targets']} validation / {protocol['test_targets']} test targets "
        f"(leave-one-out, full ranking over all items, history not masked); identical on both sides and equal "
        f"to Beauty.txt's last / second-to-last items: {same}.",
        f"Stopping: {stopping}.",
        f"Curves: {plot.name} (validation NDCG@10 against seconds since each side's fit started).",
        f"RecBole shims (benchmark process only): {'; '.join(rb['shims'])}.",
        f"Code: research/ and conf/ at commit {commit or '?'} ({src}).",
        f"Command: python experiments/bench/recbole_compare.py {' '.join(sys.argv[1:])}",
    ]
    text = "\n".join(lines)
    print(text)
    (work / "report.md").write_text(text + "\n")
    (work / "summary.json").write_text(json.dumps({
        "ours": {"phases": ours_phases, "metrics": {k: v for k, v in ours_metrics.items() if "/" in k and
                                                    k.split("/")[1] in ("ndcg@10", "hit@10") or k.startswith("time/")},
                 "curve_ndcg10": o_scores, "hyper_parameters": ours_hp, "command": ours_cmd[1:], "wall": ours_wall},
        "recbole": {**rb, "params": params, "command": rb_cmd[1:], "wall": rb_wall},
        "checks": checks, "protocol_identical": same, "same_model": same_model, "model": args.model, "commit": commit,
        "machine": machine(args.device), "argv": sys.argv,
    }, indent=1, default=str))


if __name__ == "__main__":
    main()
