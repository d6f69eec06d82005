"""LSTM sequence recommender: the GRU4Rec architecture with an LSTM cell
(Hochreiter & Schmidhuber, 1997), the sequence model named by the source documents."""

from __future__ import annotations

from torch import nn

from research.models.gru import GRU4Rec


class LSTMRec(GRU4Rec):
    cell = nn.LSTM
