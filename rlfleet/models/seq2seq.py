"""An attentional encoder-decoder for sequence tasks: a bidirectional LSTM encoder and an LSTM
decoder with Luong (general) attention and input feeding.

Padding is handled exactly: the encoder packs each batch by its true lengths (a padded source
encodes as it would alone) and attention gives padded positions zero weight, so a padded batch
scores each sequence as one-by-one does (tested). Decoding (greedy, sampling, beam) is in
:mod:`rlfleet.models.decoding`; this module is one step of the decoder and teacher forcing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["DecoderState", "Encoded", "Seq2Seq"]


@dataclass
class Encoded:
    """Encoder output of a batch: ``memory [B, S, H]``, ``keys [B, S, H]`` (memory projected for
    attention), ``mask [B, S]`` (True at real tokens)."""

    memory: torch.Tensor
    keys: torch.Tensor
    mask: torch.Tensor

    def select(self, index: torch.Tensor) -> Encoded:
        return Encoded(self.memory[index], self.keys[index], self.mask[index])


@dataclass
class DecoderState:
    """Decoder LSTM state ``h, c [B, H]`` and the attentional vector fed to the next step."""

    h: torch.Tensor
    c: torch.Tensor
    feed: torch.Tensor

    def select(self, index: torch.Tensor) -> DecoderState:
        return DecoderState(self.h[index], self.c[index], self.feed[index])


class Seq2Seq(nn.Module):
    """BiLSTM encoder + attention LSTM decoder over source / target vocabularies (id 0 is
    padding in both)."""

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        embed: int = 64,
        hidden: int = 128,
        layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.src_vocab, self.tgt_vocab, self.hidden = src_vocab, tgt_vocab, hidden
        self.src_embed = nn.Embedding(src_vocab, embed, padding_idx=0)
        self.tgt_embed = nn.Embedding(tgt_vocab, embed, padding_idx=0)
        self.encoder = nn.LSTM(
            embed, hidden, num_layers=layers, bidirectional=True, batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )  # fmt: skip
        dec = 2 * hidden
        self.bridge_h = nn.Linear(2 * hidden, dec)
        self.bridge_c = nn.Linear(2 * hidden, dec)
        self.decoder = nn.LSTMCell(embed + dec, dec)
        self.attn = nn.Linear(2 * hidden, dec, bias=False)
        self.combine = nn.Linear(dec + 2 * hidden, dec, bias=False)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dec, tgt_vocab)

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[Encoded, DecoderState]:
        """Encode ``src [B, S]`` (lengths ``[B]``, each >= 1); the decoder's initial state."""
        src_len = src_len.to(torch.int64).clamp(min=1)
        emb = self.drop(self.src_embed(src))
        packed = pack_padded_sequence(emb, src_len.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, c) = self.encoder(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        mask = torch.arange(src.shape[1]).unsqueeze(0) < src_len.unsqueeze(1)
        # the last layer's forward and backward final states start the decoder
        last_h = torch.cat([h[-2], h[-1]], dim=1)
        last_c = torch.cat([c[-2], c[-1]], dim=1)
        state = DecoderState(
            torch.tanh(self.bridge_h(last_h)),
            self.bridge_c(last_c),
            memory.new_zeros(src.shape[0], self.out.in_features),
        )
        return Encoded(memory, self.attn(memory), mask), state

    def step(
        self, enc: Encoded, state: DecoderState, prev: torch.Tensor
    ) -> tuple[torch.Tensor, DecoderState]:
        """Logits ``[B, V]`` of the next token after ``prev [B]``, and the next state."""
        x = torch.cat([self.drop(self.tgt_embed(prev)), state.feed], dim=1)
        h, c = self.decoder(x, (state.h, state.c))
        scores = torch.bmm(enc.keys, h.unsqueeze(2)).squeeze(2)
        scores = scores.masked_fill(~enc.mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        context = torch.bmm(weights.unsqueeze(1), enc.memory).squeeze(1)
        feed = torch.tanh(self.combine(torch.cat([h, context], dim=1)))
        return self.out(self.drop(feed)), DecoderState(h, c, feed)

    def forward(
        self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor
    ) -> torch.Tensor:
        """Teacher forcing: logits ``[B, T, V]`` of each next token given ``tgt_in [B, T]``
        (BOS then the target's tokens)."""
        enc, state = self.encode(src, src_len)
        logits = []
        for t in range(tgt_in.shape[1]):
            step_logits, state = self.step(enc, state, tgt_in[:, t])
            logits.append(step_logits)
        return torch.stack(logits, dim=1)
