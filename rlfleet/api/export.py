"""``rlfleet export``: a run's acting network as an ONNX or TorchScript file, for use outside
Python (a C++ stack, onnxruntime anywhere).

The exported graph takes ``obs [B, *obs_shape]`` (the environment's dtype, raw: observation
normalisation is inside) and returns ``action`` (the run's greedy action: int64 ``[B]`` for
Discrete, float32 ``[B, D]`` for Box) and ``scores`` (what the action is read off: Q-values or
logits ``[B, A]``, a Gaussian's parameters ``[B, 2D]``).

Before the file appears, its outputs are checked against the run's own greedy policy
(:class:`~rlfleet.api.policy.Policy`) on a batch of real observations, gathered by playing the
run's environment with that policy (30% random actions, so states off the greedy path are in it
too). It is written to a temporary file and renamed into place only when the check passes:
nothing is written otherwise. onnx and onnxruntime come with ``pip install 'rlfleet[export]'``
and are imported only here.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.errors import CheckpointError, ConfigError, RlfleetError

__all__ = [
    "EXPORT_FORMATS",
    "ExportReport",
    "acting_module",
    "export_policy",
    "sample_observations",
]

EXPORT_FORMATS = ("onnx", "torchscript")
#: scores may differ by float rounding between runtimes; actions must agree except where the
#: two best scores are closer than this (a tie either runtime may break either way)
SCORE_ATOL = 1e-4


class ExportError(RlfleetError):
    """An exported model does not reproduce the run's policy (nothing was written)."""


@dataclass
class ExportReport:
    """What :func:`export_policy` wrote and how well it matched."""

    path: str
    format: str
    checkpoint: str
    observations: int
    actions_equal: int
    near_ties: int
    max_score_diff: float
    max_action_diff: float

    def __str__(self) -> str:
        return (
            f"wrote {self.path} ({self.format}) from {self.checkpoint}: on {self.observations:,} "
            f"observations of the run's environment, {self.actions_equal:,} actions equal the "
            f"run's policy ({self.near_ties} near-ties), max |score diff| "
            f"{self.max_score_diff:.2e}, max |action diff| {self.max_action_diff:.2e}"
        )


def acting_module(policy: Any) -> Any:
    """``obs -> (action, scores)`` of a loaded feed-forward policy, as a torch module."""
    import torch

    from rlfleet.agents.common.networks import logits_of
    from rlfleet.models import is_recurrent

    if is_recurrent(policy.net):
        raise ConfigError(
            f"{policy.checkpoint}: the network has an LSTM core (model.core = 'lstm'); export "
            "handles feed-forward networks (its state would be an extra input and output)"
        )
    head = getattr(policy.net, "policy", None)
    continuous = getattr(head, "kind", "") == "gaussian"

    class Acting(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            scores = logits_of(self.net(obs))
            action = self.net.policy.greedy(scores) if continuous else scores.argmax(dim=1)
            return action, scores

    return Acting(policy.net).eval()


def sample_observations(policy: Any, count: int, seed: int = 0, num_envs: int = 16) -> np.ndarray:
    """``count`` observations of the policy's environment, played by the policy with 30% random
    actions (its ``env.kwargs``; env i seeded ``seed + i``)."""
    from rlfleet.envs import make_vector_env

    config = policy.config
    venv = make_vector_env(config.env.id, num_envs, seed, env_kwargs=config.env.kwargs or None)
    rng = np.random.default_rng(seed)
    try:
        obs = venv.reset()
        out = np.empty((math.ceil(count / num_envs) * num_envs, *obs.shape[1:]), obs.dtype)
        for i in range(0, len(out), num_envs):
            out[i : i + num_envs] = obs
            actions = policy.act(obs)
            explore = rng.random(num_envs) < 0.3
            if explore.any():
                random = np.stack([venv.action_space.sample() for _ in range(num_envs)])
                actions = np.where(
                    explore.reshape(-1, *([1] * (actions.ndim - 1))), random, actions
                ).astype(actions.dtype)
            obs = venv.step(actions).obs
    finally:
        venv.close()
    return out[:count]


def _write_torchscript(module: Any, example: Any, path: Path) -> Any:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream, still supported
        traced = torch.jit.trace(module, (example,), check_trace=False)
        traced.save(str(path))
        loaded = torch.jit.load(str(path))

    def run(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            action, scores = loaded(torch.from_numpy(obs))
        return action.numpy(), scores.numpy()

    return run


def _write_onnx(module: Any, example: Any, path: Path) -> Any:
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as exc:
        raise ConfigError(
            f"--format onnx needs onnx and onnxruntime: pip install 'rlfleet[export]' ({exc})"
        ) from exc
    import torch

    with warnings.catch_warnings():
        # the TorchScript-based exporter: needs no onnxscript, handles these small MLP/CNN graphs
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            input_names=["obs"],
            output_names=["action", "scores"],
            dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}, "scores": {0: "batch"}},
            opset_version=17,
        )
    onnx.checker.check_model(onnx.load(str(path)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        action, scores = session.run(None, {"obs": obs})
        return action, scores

    return run


def _compare(policy: Any, module: Any, run: Any, obs: np.ndarray) -> dict[str, Any]:
    """Actions and scores of the exported model against the run's policy on ``obs``."""
    import torch

    want_actions = np.asarray(policy.act(obs))
    with torch.no_grad():
        _, want_scores = module(torch.from_numpy(obs))
    want_scores = want_scores.numpy()
    got_actions, got_scores = run(obs)
    score_diff = float(np.abs(got_scores - want_scores).max())
    if want_actions.ndim == 1:  # discrete: equal, or a near-tie of the two best scores
        equal = got_actions.astype(np.int64) == want_actions
        top2 = np.sort(want_scores, axis=1)[:, -2:] if want_scores.shape[1] > 1 else None
        tie = (top2[:, 1] - top2[:, 0] < SCORE_ATOL) if top2 is not None else np.zeros_like(equal)
        action_diff = float((~equal).sum())
        ok = bool(np.all(equal | tie))
        ties = int((~equal & tie).sum())
    else:
        per_row = np.abs(got_actions - want_actions).max(axis=1)
        equal = per_row <= SCORE_ATOL
        action_diff, ok, ties = float(per_row.max()), bool(equal.all()), 0
    ok = ok and score_diff <= SCORE_ATOL * max(1.0, float(np.abs(want_scores).max()))
    return {
        "ok": ok,
        "actions_equal": int(equal.sum()),
        "near_ties": ties,
        "max_score_diff": score_diff,
        "max_action_diff": action_diff,
    }


def export_policy(
    run_or_checkpoint: str | Path,
    fmt: str,
    out: str | Path,
    *,
    check_observations: int = 1000,
    seed: int = 0,
) -> ExportReport:
    """Write the acting network of a run (or checkpoint) to ``out`` as ``fmt`` (``"onnx"``
    or ``"torchscript"``), after checking it against the run's greedy policy on
    ``check_observations`` real observations. Raises ConfigError (bad format, LSTM network,
    onnx missing), CheckpointError (no checkpoint) or ExportError (outputs differ); ``out`` is
    never left half-written."""
    import torch

    from rlfleet.api.policy import load_policy

    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"export format {fmt!r} is unknown; valid: {', '.join(EXPORT_FORMATS)}")
    if isinstance(check_observations, bool) or not isinstance(check_observations, int):
        raise ConfigError(f"check_observations must be an integer >= 1, got {check_observations!r}")
    if check_observations < 1:
        raise ConfigError(f"check_observations must be >= 1, got {check_observations}")
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name, e.g. {out / 'policy.onnx'}")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist")
    try:
        policy = load_policy(run_or_checkpoint)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot export {run_or_checkpoint}: {exc}") from exc
    module = acting_module(policy)
    obs = sample_observations(policy, check_observations, seed=seed)
    example = torch.from_numpy(obs[:2].copy())
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        writer = _write_onnx if fmt == "onnx" else _write_torchscript
        run = writer(module, example, tmp)
        diff = _compare(policy, module, run, obs)
        if not diff["ok"]:
            raise ExportError(
                f"the exported {fmt} model does not match the run's policy on "
                f"{len(obs):,} observations ({diff['actions_equal']:,} actions equal, max |score "
                f"diff| {diff['max_score_diff']:.2e}, max |action diff| "
                f"{diff['max_action_diff']:.2e}); nothing written"
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportReport(
        path=str(out),
        format=fmt,
        checkpoint=str(policy.checkpoint),
        observations=len(obs),
        actions_equal=diff["actions_equal"],
        near_ties=diff["near_ties"],
        max_score_diff=diff["max_score_diff"],
        max_action_diff=diff["max_action_diff"],
    )
