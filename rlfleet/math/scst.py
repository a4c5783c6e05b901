"""Self-critical sequence training (Rennie et al., 2017): advantages and the policy-gradient loss.

For a source with k sampled outputs ``w^s_1..k`` and its greedy decode ``w^g``:

    A_i = r(w^s_i) - r(w^g)                         (baseline "greedy", the paper's)
    A_i = r(w^s_i) - mean_{j != i} r(w^s_j)         (baseline "mean_others", Kool et al. 2019)

    loss = -mean_i  A_i * sum_t c_{i,t} * log pi(w^s_{i,t} | w^s_{i,<t}, x)

over the tokens of each sample up to and including its end-of-sequence token. ``c`` are
truncated importance weights ``min(rho_bar, pi / mu)`` (detached) for samples drawn by an
older parameter version ``mu`` (V-trace's rho-bar clipping applied per token); samples of the
current version have ``c = 1`` and the loss is exactly SCST's.
"""

from __future__ import annotations

import numpy as np
import torch

from rlfleet.errors import ConfigError

__all__ = ["BASELINES", "masked_entropy", "scst_advantages", "scst_loss"]

#: Valid ``baseline`` names of :func:`scst_advantages`.
BASELINES = ("greedy", "mean_others")


def scst_advantages(
    sample_rewards: np.ndarray, greedy_rewards: np.ndarray, baseline: str = "greedy"
) -> np.ndarray:
    """Advantages ``[G, k]`` of k samples per source (``sample_rewards [G, k]``) against the
    greedy decode's reward (``greedy_rewards [G]``) or the mean of the other samples."""
    r = np.asarray(sample_rewards, np.float64)
    if r.ndim != 2:
        raise ValueError(f"sample_rewards must be [G, k], got shape {r.shape}")
    if baseline == "greedy":
        g = np.asarray(greedy_rewards, np.float64)
        if g.shape != (r.shape[0],):
            raise ValueError(f"greedy_rewards must be [{r.shape[0]}], got shape {g.shape}")
        return r - g[:, None]
    if baseline == "mean_others":
        k = r.shape[1]
        if k < 2:
            raise ConfigError("baseline 'mean_others' needs at least 2 samples per source, got 1")
        return r - (r.sum(axis=1, keepdims=True) - r) / (k - 1)
    raise ConfigError(f"SCST baseline {baseline!r} is unknown; valid: {', '.join(BASELINES)}")


def scst_loss(
    log_probs: torch.Tensor,
    mask: torch.Tensor,
    advantages: torch.Tensor,
    behaviour_log_probs: torch.Tensor | None = None,
    rho_bar: float = 1.0,
) -> torch.Tensor:
    """The SCST policy-gradient loss (module docstring).

    Args:
        log_probs: ``[N, T]`` log-probabilities of the sampled tokens under the current policy.
        mask: ``[N, T]`` 1 for the tokens of each sample (through its EOS), 0 for padding.
        advantages: ``[N]`` (no gradient flows through them).
        behaviour_log_probs: ``[N, T]`` the sampling policy's log-probabilities, or None when the
            samples are the current policy's own.
        rho_bar: truncation of the per-token importance weights.
    """
    mask = mask.to(log_probs.dtype)
    weights = mask
    if behaviour_log_probs is not None:
        ratio = torch.exp((log_probs.detach() - behaviour_log_probs).clamp(max=20.0))
        weights = mask * ratio.clamp(max=rho_bar)
    per_sample = (weights * log_probs).sum(dim=1)
    return -(advantages.detach().to(log_probs.dtype) * per_sample).mean()


def masked_entropy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the categorical distributions ``logits [N, T, V]`` over the tokens where
    ``mask [N, T]`` is 1."""
    logp = torch.log_softmax(logits, dim=-1)
    ent = -(logp.exp() * logp).sum(dim=-1)
    mask = mask.to(ent.dtype)
    return (ent * mask).sum() / mask.sum().clamp(min=1.0)
