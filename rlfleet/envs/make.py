"""Build a :class:`~rlfleet.envs.vector.BatchedEnv` from an environment id.

Three families of ids:

* ``MinAtar/<Game>-v0|v1`` -> :class:`~rlfleet.envs.minatar.MinAtarEnv` (uint8 [C, 10, 10]);
* ``ALE/<Game>-v5`` -> the DQN Atari stack of :mod:`rlfleet.envs.atari` (uint8 [4, 84, 84]);
* any other Gymnasium id -> ``gymnasium.make`` as registered, including ``module:EnvId`` (the
  module is imported first, as Gymnasium does) and ids registered from ``env.entry_point``
  (:mod:`rlfleet.envs.custom`).
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from rlfleet.envs.atari import make_atari_env, register_ale
from rlfleet.envs.cartpole import NO_VELOCITY_ID, VectorCartPole, register_cartpole_variants
from rlfleet.envs.custom import resolve_id
from rlfleet.envs.minatar import MinAtarEnv, minatar_ids, parse_minatar_id, register_minatar
from rlfleet.envs.ocr import OCR_IDS
from rlfleet.envs.randomize import DomainRandomization, parse_randomization
from rlfleet.envs.sequences import SEQ_IDS
from rlfleet.envs.vector import BatchedEnv
from rlfleet.errors import EnvError

__all__ = ["check_discrete", "known_env_ids", "make_env", "make_vector_env"]

_registered = False
_FAST_CARTPOLE = ("CartPole-v0", "CartPole-v1", NO_VELOCITY_ID)


def _ensure_registered() -> None:
    """Register MinAtar, ALE (when ale-py is installed) and netsim ids once per process.

    Done lazily rather than at ``import rlfleet.envs`` so that importing the package stays cheap
    and a netsim module importing from ``rlfleet.envs`` cannot form an import cycle.
    """
    global _registered
    if _registered:
        return
    register_minatar()
    register_ale()
    register_cartpole_variants()
    # The congestion-control simulator is a sibling sub-package; register its ids when it exists.
    # Its failures are not swallowed: a broken netsim should be seen, not silently missing.
    spec = importlib.util.find_spec("rlfleet.envs.netsim")
    if spec is not None and spec.origin is not None:  # origin None: namespace dir, no __init__
        import rlfleet.envs.netsim as netsim

        register = getattr(netsim, "register_netsim_envs", None)
        if register is not None:
            register()
    _registered = True


def known_env_ids() -> list[str]:
    """Every id :func:`make_vector_env` accepts in this installation, sorted."""
    _ensure_registered()
    return sorted(set(gym.registry) | set(minatar_ids()) | set(SEQ_IDS) | set(OCR_IDS))


def _unknown_id_error(env_id: str) -> EnvError:
    ids = known_env_ids()
    close = difflib.get_close_matches(env_id, ids, n=5, cutoff=0.5)
    if not close:
        # Case-insensitive second chance ("cartpole-v1", "breakout").
        lower = {i.lower(): i for i in ids}
        close = [
            lower[m] for m in difflib.get_close_matches(env_id.lower(), lower, n=5, cutoff=0.4)
        ]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    atari = ""
    if env_id.startswith("ALE/") and not register_ale():
        atari = " Atari ids need ale-py: pip install 'rlfleet[atari]'."
    return EnvError(
        f"unknown environment id {env_id!r}{hint}{atari} "
        f"({len(ids)} ids are known; rlfleet.envs.known_env_ids() lists them)"
    )


def make_env(
    env_id: str,
    *,
    max_episode_steps: int | None = None,
    training: bool = True,
    env_kwargs: dict | None = None,
    randomize: Mapping[str, Any] | None = None,
) -> gym.Env:
    """One (unseeded) environment for ``env_id`` with rlfleet's standard wrappers, and
    :class:`~rlfleet.envs.randomize.DomainRandomization` when ``randomize`` names ranges.

    Raises:
        EnvError: unknown id (with close matches), missing optional dependency, bad kwargs, an
            environment without randomizable parameters.
    """
    env = _make_plain_env(
        env_id, max_episode_steps=max_episode_steps, training=training, env_kwargs=env_kwargs
    )
    if randomize:
        try:
            return DomainRandomization(env, env_id, randomize)
        except BaseException:
            env.close()
            raise
    return env


def _make_plain_env(
    env_id: str,
    *,
    max_episode_steps: int | None,
    training: bool,
    env_kwargs: dict | None,
) -> gym.Env:
    _ensure_registered()
    env_id = resolve_id(env_id)  # "module:EnvId": the module registers EnvId
    kwargs = dict(env_kwargs or {})
    if max_episode_steps is not None and (
        not isinstance(max_episode_steps, int) or max_episode_steps < 1
    ):
        raise EnvError(
            f"max_episode_steps must be a positive integer or None, got {max_episode_steps!r}"
        )
    if env_id.startswith("ALE/"):
        if env_id not in gym.registry and register_ale():
            raise _unknown_id_error(env_id)
        return make_atari_env(
            env_id, training=training, max_episode_steps=max_episode_steps, env_kwargs=kwargs
        )
    parsed = parse_minatar_id(env_id)
    if parsed is not None:
        game, minimal = parsed
        try:
            env: gym.Env = MinAtarEnv(game, use_minimal_action_set=minimal, **kwargs)
        except TypeError as exc:
            raise EnvError(
                f"bad env_kwargs {sorted(kwargs)} for {env_id}: {exc}; valid: "
                "sticky_action_prob, difficulty_ramping"
            ) from exc
        if max_episode_steps is not None:
            env = gym.wrappers.TimeLimit(env, max_episode_steps=max_episode_steps)
        return env
    if env_id not in gym.registry:
        raise _unknown_id_error(env_id)
    try:
        return gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs)
    except TypeError as exc:
        raise EnvError(f"bad env_kwargs {sorted(kwargs)} for {env_id}: {exc}") from exc
    except gym.error.Error as exc:
        raise EnvError(f"cannot make {env_id}: {exc}") from exc


def _netsim_batched(
    env_id: str, num_envs: int, seed: int, max_episode_steps: int | None, env_kwargs: dict | None
) -> BatchedEnv | None:
    """netsim ids on the compiled vector engine when it supports the options, else None.

    The engine agrees with the event engine bit for bit but covers only the RL sender (no
    competing flows, no compact observation); those options fall back to the event engine.
    """
    from rlfleet.envs.netsim import ENV_ID, ENV_ID_ASYNC

    if env_id not in (ENV_ID, ENV_ID_ASYNC) or max_episode_steps is not None:
        return None
    from rlfleet.envs.netsim.batched import NetSimBatched, supports

    _ensure_registered()
    kwargs = {**gym.spec(env_id).kwargs, **(env_kwargs or {})}
    if not supports(kwargs):
        return None
    return NetSimBatched(num_envs, seed, env_id, **kwargs)


def make_vector_env(
    env_id: str,
    num_envs: int,
    seed: int,
    *,
    max_episode_steps: int | None = None,
    training: bool = True,
    env_kwargs: dict | None = None,
    randomize: Mapping[str, Any] | None = None,
) -> BatchedEnv:
    """K copies of ``env_id`` stepped as one batch; env i is seeded ``seed + i``.

    Args:
        env_id: a Gymnasium id (``module:EnvId`` imports the module first),
            ``MinAtar/<Game>-v1`` or ``ALE/<Game>-v5``.
        num_envs: K >= 1.
        seed: base seed.
        max_episode_steps: override the id's time limit (truncation), or None for its default.
        training: Atari only - terminal-on-life-loss and reward clipping are on when True.
        env_kwargs: passed to the environment constructor.
        randomize: domain randomization ranges (:mod:`rlfleet.envs.randomize`), or None.

    Continuous action spaces are not refused here; agents check the kinds they handle
    (:func:`rlfleet.envs.spec.check_action_kind`).
    ``CartPole-v0`` / ``CartPole-v1`` without ``env_kwargs`` take the array fast path
    :class:`~rlfleet.envs.cartpole.VectorCartPole` (identical dynamics, seeds and time limit,
    and the same randomized parameters);
    netsim ids take the compiled engine (:class:`~rlfleet.envs.netsim.batched.NetSimBatched`)
    when it supports the given options.
    """
    if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
        raise EnvError(f"num_envs must be an integer >= 1, got {num_envs!r}")
    env_id = resolve_id(env_id)  # "module:EnvId": imported here, in every process making it
    if env_id in _FAST_CARTPOLE and not env_kwargs:
        _ensure_registered()
        if max_episode_steps is not None and (
            not isinstance(max_episode_steps, int) or max_episode_steps < 1
        ):
            raise EnvError(
                f"max_episode_steps must be a positive integer or None, got {max_episode_steps!r}"
            )
        limit = max_episode_steps or gym.spec(env_id).max_episode_steps
        ranges = parse_randomization(env_id, randomize) if randomize else ()
        return VectorCartPole(num_envs, seed, limit, env_id=env_id, randomize=ranges)
    if randomize:  # refused here for ids without randomizable parameters (netsim included)
        parse_randomization(env_id, randomize)
    if env_id in SEQ_IDS:  # sequence tasks: K outputs decoded in lockstep (envs/sequences)
        from rlfleet.envs.sequences.env import SequenceBatchEnv

        return SequenceBatchEnv(env_id, num_envs, seed, env_kwargs, training=training)
    if env_id in OCR_IDS:  # word images read in lockstep, one CTC column per step (envs/ocr)
        from rlfleet.envs.ocr.env import OcrBatchEnv

        return OcrBatchEnv(env_id, num_envs, seed, env_kwargs, training=training)
    netsim = _netsim_batched(env_id, num_envs, seed, max_episode_steps, env_kwargs)
    if netsim is not None:
        return netsim
    envs = []
    try:
        for _ in range(num_envs):
            envs.append(
                make_env(
                    env_id,
                    max_episode_steps=max_episode_steps,
                    training=training,
                    env_kwargs=env_kwargs,
                    randomize=randomize,
                )
            )
    except BaseException:
        for env in envs:
            env.close()
        raise
    return BatchedEnv(envs, seed=seed, env_id=env_id)


def check_discrete(space: gym.Space, env_id: str, algorithm: str = "Ape-X DQN") -> int:
    """Return the number of actions of a Discrete ``space``; EnvError naming it otherwise."""
    if isinstance(space, gym.spaces.Discrete):
        if int(space.start) != 0:
            raise EnvError(
                f"{algorithm} needs actions numbered from 0; {env_id} has {space} "
                f"(start={int(space.start)})"
            )
        return int(space.n)
    raise EnvError(
        f"{algorithm} needs discrete actions; {env_id} has {space}. Use an environment with a "
        "Discrete action space (e.g. CartPole-v1, MinAtar/Breakout-v1, ALE/Pong-v5)"
    )
