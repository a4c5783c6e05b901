"""The attentional encoder-decoder and its decoders: padding masks are exact (a padded batch
gives the same log-probabilities as one sequence at a time), beam search of width 1 is greedy,
and wider beams never score below greedy."""

from __future__ import annotations

import pytest
import torch

from rlfleet.models.decoding import beam_search, decode
from rlfleet.models.seq2seq import Seq2Seq

pytestmark = pytest.mark.unit


def batch(seed: int = 0):
    torch.manual_seed(seed)
    model = Seq2Seq(12, 9, embed=8, hidden=16).eval()
    src_len = torch.tensor([6, 2, 4, 1])
    src = torch.randint(1, 12, (4, 6))
    src[torch.arange(6).unsqueeze(0) >= src_len.unsqueeze(1)] = 0
    tgt_len = torch.tensor([5, 3, 1, 4])
    tgt = torch.randint(3, 9, (4, 5))
    tgt[torch.arange(5).unsqueeze(0) >= tgt_len.unsqueeze(1)] = 0
    return model, src, src_len, tgt, tgt_len


def test_padded_batch_gives_the_log_probs_of_one_by_one():
    model, src, src_len, tgt, tgt_len = batch()
    tgt_in = torch.cat([torch.ones(4, 1, dtype=torch.int64), tgt[:, :-1]], dim=1)
    with torch.no_grad():
        together = torch.log_softmax(model(src, src_len, tgt_in), -1)
        for i in range(4):
            s, t = int(src_len[i]), int(tgt_len[i])
            alone = torch.log_softmax(
                model(src[i : i + 1, :s], src_len[i : i + 1], tgt_in[i : i + 1, :t]), -1
            )
            torch.testing.assert_close(together[i, :t], alone[0], rtol=1e-5, atol=1e-5)


def test_greedy_and_samples_share_the_source_and_decode_like_alone():
    model, src, src_len, _, _ = batch(1)
    with torch.no_grad():
        both = decode(model, src, src_len, 7, samples=2, generator=torch.Generator().manual_seed(0))
        assert both.tokens.shape[0] == 12
        for i in range(4):
            alone = decode(model, src[i : i + 1, : int(src_len[i])], src_len[i : i + 1], 7)
            n = int(alone.lengths[0])
            assert int(both.lengths[3 * i]) == n
            assert both.tokens[3 * i, :n].tolist() == alone.tokens[0, :n].tolist()
            torch.testing.assert_close(
                both.log_probs[3 * i, :n], alone.log_probs[0, :n], rtol=1e-5, atol=1e-5
            )
    assert (both.log_probs <= 0).all()


def test_beam_of_one_is_greedy_and_wider_beams_score_at_least_greedy():
    model, src, src_len, _, _ = batch(2)
    with torch.no_grad():
        greedy = decode(model, src, src_len, 8)
        one = beam_search(model, src, src_len, 8, width=1)
        wide = beam_search(model, src, src_len, 8, width=5)
    assert one.tokens.tolist() == greedy.tokens[:, : one.tokens.shape[1]].tolist()
    assert (wide.log_probs.sum(1) >= greedy.log_probs.sum(1) - 1e-5).all()
    assert (wide.lengths >= 1).all() and (wide.lengths <= 8).all()
