"""What each stage of a run costs: wall seconds, the process's peak resident memory during the
stage, and on a GPU the peak memory PyTorch allocated on it. A run writes them to
resources.json (research.train), so a benchmark at any scale reads its stages from the run.

The host peak is the kernel's high-water mark (VmHWM), reset at the start of each stage where
the kernel allows it (/proc/self/clear_refs); where it does not, a stage's figure is the peak of
the process so far, and the report says so."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import torch

STATUS, CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")
GIB = 1 << 30


def peak_host_bytes() -> int | None:
    try:
        line = next(x for x in STATUS.read_text().splitlines() if x.startswith("VmHWM:"))
    except (OSError, StopIteration):  # not Linux
        return None
    return int(line.split()[1]) * 1024


def reset_peak_host() -> bool:
    try:
        CLEAR_REFS.write_text("5")  # "5": reset the peak resident set size to the current one
        return True
    except OSError:
        return False


class StageMeter:
    """`with meter.stage("fit"): ...` for each stage; `meter.report()` for resources.json."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float | None]] = {}
        self.per_stage_host_peak = True

    @contextmanager
    def stage(self, name: str):
        self.per_stage_host_peak &= reset_peak_host()
        if torch.cuda.is_initialized():  # never started here: a CPU run never touches the GPU
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            yield
        finally:
            device = None
            if torch.cuda.is_initialized():  # started in this stage or before
                torch.cuda.synchronize()
                device = torch.cuda.max_memory_allocated() / GIB
            host = peak_host_bytes()
            self.stages[name] = {"seconds": time.perf_counter() - start,
                                 "peak_host_gib": None if host is None else host / GIB, "peak_device_gib": device}

    def report(self) -> dict:
        return {"stages": self.stages,
                "host_peak": "per stage" if self.per_stage_host_peak else "the process's so far (could not reset it)"}
