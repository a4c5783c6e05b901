"""A policy-value network with an LSTM core, and a holder for its state while acting.

``torso -> LSTMCell -> (policy logits, value)``. The core state is one tensor ``[2, B, H]``
(``h`` then ``c``) so it travels as one array with an unroll and zeroes with one mask.

Episode boundaries: the state is reset to zeros **before** the first observation of an episode.
The actor does that after every step that ended an episode (its environments auto-reset), and
the learner's :meth:`LSTMPolicyValueNetwork.unroll` does the same inside an unroll from the
``done`` flags, so both compute the same logits from the same parameters and the same start
state (the unit tests check it bit for bit).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rlfleet.errors import ConfigError
from rlfleet.models.heads import CategoricalHead

__all__ = ["CoreStateHolder", "LSTMPolicyValueNetwork", "is_recurrent"]


def is_recurrent(net: nn.Module) -> bool:
    """True for networks that carry a core state (their forward takes and returns it)."""
    return bool(getattr(net, "recurrent", False))


class LSTMPolicyValueNetwork(nn.Module):
    """``torso -> LSTM(lstm_size) -> (logits [B, A], value [B])``.

    The core is a one-layer :class:`torch.nn.LSTM`, so :meth:`unroll` runs whole stretches of
    time in one call (its fused C++ loop) and breaks only where some episode starts.

    Args:
        torso: feature extractor with ``out_features`` (see :func:`rlfleet.models.build_torso`).
        num_actions: A.
        lstm_size: H, the width of ``h`` and ``c``.
        head: the policy head on the core's output (default: categorical logits over A).
    """

    recurrent = True

    def __init__(
        self, torso: nn.Module, num_actions: int, lstm_size: int, head: nn.Module | None = None
    ) -> None:
        super().__init__()
        if isinstance(lstm_size, bool) or int(lstm_size) != lstm_size or lstm_size < 1:
            raise ConfigError(f"lstm_size must be an integer >= 1, got {lstm_size!r}")
        self.torso = torso
        self.core = nn.LSTM(torso.out_features, int(lstm_size))
        # a head on the core's output: categorical logits, or the given one (Gaussian)
        self.policy = head if head is not None else CategoricalHead(int(lstm_size), num_actions)
        self.value = nn.Linear(int(lstm_size), 1)
        self.num_actions = num_actions
        self.lstm_size = int(lstm_size)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """Zeros ``[2, batch_size, H]``: the state before an episode's first observation."""
        return torch.zeros(2, batch_size, self.lstm_size)

    def _heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy(h), self.value(h).squeeze(-1)

    def forward(
        self, obs: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step: observations ``[B, *obs]`` and state ``[2, B, H]`` ->
        ``(logits [B, A], value [B], new_state [2, B, H])``."""
        self._check_state(state, len(obs))
        core = self.core
        # One step is the actors' hot path: torch.lstm_cell on the LSTM's own weights (the same
        # equations) takes half the time of a length-1 nn.LSTM call.
        h, c = torch.lstm_cell(
            self.torso(obs),
            (state[0], state[1]),
            core.weight_ih_l0,
            core.weight_hh_l0,
            core.bias_ih_l0,
            core.bias_hh_l0,
        )
        logits, value = self._heads(h)
        return logits, value, torch.stack((h, c))

    def unroll(
        self, obs: torch.Tensor, state: torch.Tensor, reset: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
        """Run the core along time.

        Args:
            obs: ``[T, B, *obs]`` time-major observations.
            state: ``[2, B, H]`` state before ``obs[0]``.
            reset: ``[T, B]`` bool; where True the state is zeroed before ``obs[t]`` (the first
                observation of a new episode).

        Returns:
            ``logits [T, B, A]``, ``values [T, B]``, and ``{t: state [2, B, H]}``, the state
            *after* step t (before any reset of step t+1) for every t that ends a stretch: the
            last step and every step followed by a reset in some row. So the state after the
            last step of any episode that ends inside the unroll is there (a truncated
            episode's final observation is valued from it).
        """
        t, b = obs.shape[:2]
        self._check_state(state, b)
        if tuple(reset.shape) != (t, b):
            raise ConfigError(f"reset has shape {tuple(reset.shape)}; expected [T, B] = [{t}, {b}]")
        # The torso has no state: one batched pass over all T*B observations.
        features = self.torso(obs.reshape(t * b, *obs.shape[2:])).reshape(t, b, -1)
        reset = reset.bool()
        # Stretches of time with no reset inside: [start, end) with a reset (in some row) only
        # at start. The LSTM runs each stretch in one call; resets are applied between calls.
        any_reset = reset.any(dim=1).tolist()
        starts = [0, *(i for i in range(1, t) if any_reset[i])]
        h, c = state[0:1], state[1:2]
        outputs, after = [], {}
        for start, end in zip(starts, [*starts[1:], t], strict=True):
            if any_reset[start]:
                keep = (~reset[start]).to(h.dtype)[None, :, None]
                h, c = h * keep, c * keep
            out, (h, c) = self.core(features[start:end], (h, c))
            outputs.append(out)
            after[end - 1] = torch.cat((h, c))
        logits, values = self._heads(torch.cat(outputs))
        return logits, values, after

    def _check_state(self, state: torch.Tensor, batch: int) -> None:
        if tuple(state.shape) != (2, batch, self.lstm_size):
            raise ConfigError(
                f"core state has shape {tuple(state.shape)}; expected [2, B, H] ="
                f" [2, {batch}, {self.lstm_size}] (h and c of an LSTM core of size {self.lstm_size})"
            )


class CoreStateHolder(nn.Module):
    """A recurrent network as a stateless-looking one for acting: ``obs -> (logits, value)``.

    It keeps the state of B parallel episodes between calls. After each environment step, call
    :meth:`reset` with the mask of environments whose episode ended, so their next observation
    starts from zeros. The first call (or a call with a different batch size after
    :meth:`clear`) starts from zeros.

    Args:
        net: a recurrent network (:class:`LSTMPolicyValueNetwork`).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        if not is_recurrent(net):
            raise ConfigError(f"{type(net).__name__} has no core state to hold")
        self.net = net
        self.state: torch.Tensor | None = None

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.state is None:
            self.state = self.net.initial_state(len(obs))
        elif self.state.shape[1] != len(obs):
            raise ConfigError(
                f"acting on {len(obs)} observations with a state for {self.state.shape[1]};"
                " call clear() before changing the number of environments"
            )
        logits, value, self.state = self.net(obs, self.state)
        return logits, value

    def reset(self, done: np.ndarray | None = None) -> None:
        """Zero the state of the environments where ``done`` is True (all of them if None)."""
        if self.state is None:
            return
        if done is None:
            self.state.zero_()
        else:
            mask = torch.from_numpy(np.asarray(done, dtype=bool))
            if mask.any():
                self.state[:, mask] = 0.0

    def clear(self) -> None:
        """Forget the state; the next call starts from zeros for any batch size."""
        self.state = None

    def state_array(self) -> np.ndarray:
        """The current state ``[2, B, H]`` as a float32 numpy array (a copy)."""
        if self.state is None:
            raise ConfigError("no state yet: act once (or call net.initial_state) first")
        return self.state.detach().numpy().astype(np.float32, copy=True)

    def start(self, batch_size: int) -> np.ndarray:
        """Begin B episodes from zeros and return that state as an array."""
        self.state = self.net.initial_state(batch_size)
        return self.state_array()
