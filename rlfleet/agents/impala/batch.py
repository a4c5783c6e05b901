"""The learner's side of an IMPALA batch: stacked unrolls checked and turned into tensors.

:func:`unroll_tensors` refuses, with a message naming both shapes, any batch whose fields do not
fit together (the layout is :mod:`rlfleet.agents.impala.unrolls`), before the network sees it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from rlfleet.agents.impala.unrolls import CORE_STATE_KEY, unroll_keys
from rlfleet.errors import ConfigError

__all__ = ["unroll_tensors"]


def unroll_tensors(
    batch: Mapping[str, object], *, continuous: bool, lstm_size: int | None
) -> dict[str, torch.Tensor]:
    """The batch's fields as tensors, time-major ``[T, B]``, after checking their shapes.

    Args:
        batch: stacked unrolls (``stack_unrolls`` layout).
        continuous: Box actions (raw samples ``[T, B, D]`` and ``behaviour_log_prob``) instead of
            Discrete ones (``[T, B]`` and ``behaviour_logits``).
        lstm_size: the LSTM core's width when the network has one (the batch must then carry the
            core state ``[2, B, H]``), else None.

    Raises:
        ConfigError: a missing key or a shape mismatch.
    """
    keys = unroll_keys(continuous)
    missing = [k for k in keys if k not in batch and k != "policy_version"]
    if missing:
        raise ConfigError(f"batch lacks keys {missing}; a batch has {list(keys)}")
    out = {}
    for key in keys[:-1]:
        value = batch[key]
        out[key] = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    t_b = tuple(out["action"].shape)
    if continuous:  # [T, B, D] raw samples
        if len(t_b) != 3:
            raise ConfigError(f"action must be [T, B, D] for Box actions, got shape {t_b}")
        t_b = t_b[:2]
    if len(t_b) != 2:
        raise ConfigError(f"action must be time-major [T, B], got shape {t_b}")
    t, b = t_b
    for key in ("reward", "discount", "done", "truncated"):
        if tuple(out[key].shape) != t_b:
            raise ConfigError(
                f"{key} has shape {tuple(out[key].shape)}; it must match action [T, B] = {t_b}"
            )
    obs_shape = tuple(out["obs"].shape)
    if obs_shape[:2] != (t + 1, b):
        raise ConfigError(
            f"obs has shape {obs_shape}; it must be [T+1, B, ...] = [{t + 1}, {b}, ...]"
            " (the last observation bootstraps)"
        )
    if continuous:
        lp_shape = tuple(out["behaviour_log_prob"].shape)
        if lp_shape != t_b:
            raise ConfigError(f"behaviour_log_prob has shape {lp_shape}; expected {t_b}")
    else:
        logits_shape = tuple(out["behaviour_logits"].shape)
        if len(logits_shape) != 3 or logits_shape[:2] != t_b:
            raise ConfigError(f"behaviour_logits has shape {logits_shape}; expected [{t}, {b}, A]")
    index = out["final_obs_index"].reshape(-1, 2).long()
    if len(index) != len(out["final_obs"]) or tuple(out["final_obs"].shape[1:]) != obs_shape[2:]:
        raise ConfigError(
            f"final_obs has shape {tuple(out['final_obs'].shape)} and final_obs_index"
            f" {tuple(out['final_obs_index'].shape)}; expected [N, {', '.join(map(str, obs_shape[2:]))}]"
            " and [N, 2]"
        )
    trunc = out["truncated"].bool()
    if len(index) != int(trunc.sum()) or (len(index) and not trunc[index[:, 0], index[:, 1]].all()):
        raise ConfigError(
            f"final_obs_index lists {len(index)} steps but truncated marks"
            f" {int(trunc.sum())}; every truncated step needs exactly one final_obs"
        )
    if (trunc & ~out["done"].bool()).any():
        raise ConfigError("a truncated step is not marked done; truncation ends the episode")
    out["final_obs_index"] = index
    if lstm_size is not None:
        if CORE_STATE_KEY not in batch:
            raise ConfigError(
                f"batch lacks {CORE_STATE_KEY!r}: the network has an LSTM core, so each unroll"
                " must carry the core state before its first observation"
            )
        state = torch.as_tensor(batch[CORE_STATE_KEY]).float()
        want = (2, b, lstm_size)
        if tuple(state.shape) != want:
            raise ConfigError(
                f"{CORE_STATE_KEY} has shape {tuple(state.shape)}; expected [2, B, H] = {list(want)}"
            )
        out[CORE_STATE_KEY] = state
    return out
