"""How familiar the validation and test targets of a leave-one-out split are to training:
how often each target item occurs as a training target. Explains part of the val/test gap.

    .venv/bin/python experiments/beauty_target_rarity.py [DATA_ROOT] > results/beauty_target_rarity.md
"""

from __future__ import annotations

import sys
import tempfile

import torch

from research.data.builders.amazon_s3rec import AmazonS3RecBuilder
from research.data.cache import load_or_build
from research.data.sequences import EventStore
from research.data.splits import LeaveOneOut, event_positions
from research.markdown import table


def main(root: str = "../shared/datasets/amazon-beauty") -> None:
    data = load_or_build(AmazonS3RecBuilder(root, "Beauty"), tempfile.mkdtemp())
    store = EventStore.from_events(data.events, data.meta["num_users"])
    split = LeaveOneOut()(store.lengths, store.timestamps, store.offsets)
    users, positions = event_positions(store.offsets)
    train = (positions >= 1) & (positions < split.train_end[users])
    counts = torch.bincount(store.items[train], minlength=data.meta["num_items"] + 1)
    rows = []
    for name, pairs in (("validation", split.val), ("test", split.test)):
        c = counts[store.items[store.offsets[pairs[:, 0]] + pairs[:, 1]]].double()
        rows.append([name, c.numel(), f"{c.median():.0f}", f"{(c == 0).double().mean():.4f}",
                     f"{(c <= 2).double().mean():.4f}"])
    print("\n".join(table(["targets", "count", "median training occurrences of the target item",
                           "never a training target", "at most 2"], rows)))
    print("\nAmazon Beauty (S3-Rec file), leave-one-out; training targets are positions 1..n-3 of each user.")


if __name__ == "__main__":
    main(*sys.argv[1:])
