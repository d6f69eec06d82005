"""The epoch timer: training seconds stop where validation starts (Lightning 2 validates inside
the training epoch), so training and validation time never overlap."""

import time

import lightning as L
import torch

from research.callbacks import EpochTimer

TRAIN_SLEEP, VALID_SLEEP = 0.02, 0.3  # per batch; 2 batches each


class Sleeper(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, index):
        time.sleep(TRAIN_SLEEP)
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, index):
        time.sleep(VALID_SLEEP)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_training_seconds_leave_out_the_validation_pass():
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4, 2)), batch_size=2)
    timer = EpochTimer()
    L.Trainer(max_epochs=2, callbacks=[timer], logger=False, enable_checkpointing=False, enable_progress_bar=False,
              num_sanity_val_steps=0).fit(Sleeper(), loader, loader)
    assert len(timer.train_seconds) == len(timer.eval_seconds) == 2
    for train, valid in zip(timer.train_seconds, timer.eval_seconds):
        assert 2 * TRAIN_SLEEP <= train < 2 * TRAIN_SLEEP + VALID_SLEEP  # no validation inside
        assert valid >= 2 * VALID_SLEEP
