"""A stage's peak host memory is its own: a large allocation freed in one stage does not
show in the next one's figure (where the kernel lets a process reset its high-water mark)."""

import numpy as np
import pytest

from research.resources import StageMeter


def test_each_stage_reports_its_own_peak():
    meter = StageMeter()
    with meter.stage("large"):
        block = np.ones(400 << 20, dtype=np.uint8)  # 400 MiB, every page touched
        del block
    with meter.stage("small"):
        np.ones(1 << 20, dtype=np.uint8)
    if not meter.per_stage_host_peak:
        pytest.skip("this kernel does not let a process reset its peak resident memory")
    large, small = (meter.stages[s]["peak_host_gib"] for s in ("large", "small"))
    assert large - small > 350 / 1024, (large, small)
    assert meter.stages["large"]["seconds"] > 0 and meter.report()["host_peak"] == "per stage"
    assert large < 64  # a figure in GiB, not in bytes
