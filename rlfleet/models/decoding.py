"""Batched decoding of a :class:`~rlfleet.models.seq2seq.Seq2Seq`: greedy, sampling (k samples
per source) and beam search, all over the whole batch at once, stopping when every sequence has
written end-of-sequence or at the length cap.

Outputs are ``tokens [N, T]`` (EOS included, 0 after it), ``lengths [N]`` (tokens written, EOS
included) and, for greedy and sampling, ``log_probs [N, T]`` of the chosen tokens (0 after EOS).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlfleet.models.seq2seq import Seq2Seq

__all__ = ["Decoded", "beam_search", "decode"]

PAD, BOS, EOS = 0, 1, 2


@dataclass
class Decoded:
    tokens: torch.Tensor  # int64 [N, T]
    lengths: torch.Tensor  # int64 [N], EOS included
    log_probs: torch.Tensor  # float [N, T]


def decode(
    model: Seq2Seq,
    src: torch.Tensor,
    src_len: torch.Tensor,
    max_len: int,
    samples: int = 0,
    greedy: bool = True,
    generator: torch.Generator | None = None,
) -> Decoded:
    """Greedy decode (``greedy``) and/or ``samples`` samples per source, as one batch.

    Rows come grouped per source: ``[greedy, sample_1..k]`` for source 0, then source 1, ...
    (``greedy + samples`` rows each)."""
    per = int(greedy) + samples
    if per < 1:
        raise ValueError("decode needs greedy=True or samples >= 1")
    enc, state = model.encode(src, src_len)
    index = torch.arange(src.shape[0]).repeat_interleave(per)
    enc, state = enc.select(index), state.select(index)
    n = index.numel()
    is_greedy = torch.zeros(n, dtype=torch.bool)
    if greedy:
        is_greedy[0::per] = True
    tokens = torch.zeros(n, max_len, dtype=torch.int64)
    log_probs = torch.zeros(n, max_len)
    lengths = torch.zeros(n, dtype=torch.int64)
    ended = torch.zeros(n, dtype=torch.bool)
    prev = torch.full((n,), BOS, dtype=torch.int64)
    for t in range(max_len):
        logits, state = model.step(enc, state, prev)
        logp = torch.log_softmax(logits, dim=1)
        choice = logp.argmax(dim=1)
        if samples:
            drawn = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
            choice = torch.where(is_greedy, choice, drawn)
        if t == max_len - 1:
            choice = torch.where(ended, choice, torch.full_like(choice, EOS))
        live = ~ended
        tokens[:, t] = torch.where(live, choice, 0)
        log_probs[:, t] = torch.where(live, logp.gather(1, choice.unsqueeze(1)).squeeze(1), 0.0)
        lengths += live.to(torch.int64)
        ended = ended | (choice == EOS)
        prev = choice
        if bool(ended.all()):
            tokens, log_probs = tokens[:, : t + 1], log_probs[:, : t + 1]
            break
    return Decoded(tokens, lengths, log_probs)


def beam_search(
    model: Seq2Seq,
    src: torch.Tensor,
    src_len: torch.Tensor,
    max_len: int,
    width: int = 4,
    length_penalty: float = 0.0,
) -> Decoded:
    """The best of ``width`` beams per source, by total log-probability divided by
    ``length ** length_penalty`` (0: plain sum). ``log_probs`` of the result are per token."""
    b = src.shape[0]
    enc, state = model.encode(src, src_len)
    index = torch.arange(b).repeat_interleave(width)
    enc, state = enc.select(index), state.select(index)
    n = b * width
    score = torch.full((b, width), float("-inf"))
    score[:, 0] = 0.0  # one live beam at first: the others would duplicate it
    tokens = torch.zeros(n, max_len, dtype=torch.int64)
    token_lp = torch.zeros(n, max_len)
    lengths = torch.zeros(n, dtype=torch.int64)
    ended = torch.zeros(n, dtype=torch.bool)
    prev = torch.full((n,), BOS, dtype=torch.int64)
    vocab = model.tgt_vocab
    steps = 0
    for t in range(max_len):
        steps = t + 1
        logits, state = model.step(enc, state, prev)
        logp = torch.log_softmax(logits, dim=1)
        if t == max_len - 1:  # the cap: only EOS may follow
            forced = torch.full_like(logp, float("-inf"))
            forced[:, EOS] = logp[:, EOS]
            logp = forced
        # an ended beam continues only with PAD at no cost, so it keeps its score
        done_row = torch.full((vocab,), float("-inf"))
        done_row[PAD] = 0.0
        logp = torch.where(ended.unsqueeze(1), done_row, logp)
        total = (score.reshape(n, 1) + logp).reshape(b, width * vocab)
        best, flat = total.topk(width, dim=1)
        origin = (flat // vocab) + torch.arange(b).unsqueeze(1) * width
        choice = (flat % vocab).reshape(n)
        origin = origin.reshape(n)
        state = state.select(origin)
        tokens, token_lp = tokens[origin], token_lp[origin]
        lengths, ended = lengths[origin], ended[origin]
        live = ~ended
        tokens[:, t] = torch.where(live, choice, 0)
        token_lp[:, t] = torch.where(live, logp[origin, choice], 0.0)
        lengths += live.to(torch.int64)
        ended = ended | (choice == EOS)
        score = best
        prev = choice
        if bool(ended.all()):
            break
    norm = lengths.reshape(b, width).to(score.dtype).clamp(min=1) ** length_penalty
    pick = (score / norm).argmax(dim=1) + torch.arange(b) * width
    return Decoded(tokens[pick, :steps], lengths[pick], token_lp[pick, :steps])
