"""BSARec's frequency filter does what its paper says: the low-pass passes the slow part of a
sequence and the learned beta^2 scales only the rest."""

import torch
from torch.nn import functional as F

from research.models.bsarec import FrequencyFilter


def test_the_filter_passes_a_constant_sequence_and_rescales_an_alternating_one():
    torch.manual_seed(0)
    layer = FrequencyFilter(hidden_size=4, max_len=8, c=3, dropout=0.0, eps=1e-12).eval()
    beta2 = layer.sqrt_beta.detach() ** 2  # (1, 1, D)
    constant = torch.randn(2, 1, 4).expand(2, 8, 4)  # frequency 0 only: all low
    alternating = torch.randn(2, 1, 4) * torch.tensor([1.0, -1.0] * 4)[None, :, None]  # the highest frequency
    with torch.no_grad():
        torch.testing.assert_close(layer(constant), F.layer_norm(2 * constant, (4,), eps=1e-12))
        torch.testing.assert_close(layer(alternating), F.layer_norm(alternating + beta2 * alternating, (4,), eps=1e-12))


def test_the_filter_keeps_c_over_2_plus_1_frequencies():
    layer = FrequencyFilter(hidden_size=2, max_len=10, c=5, dropout=0.0, eps=1e-12)
    assert int(layer.keep.sum()) == 3  # 5 // 2 + 1, as the authors' code
