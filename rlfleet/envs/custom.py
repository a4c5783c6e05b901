"""Environments from the user's own code.

Two ways to bring one, both usable from a config (so every process that makes the environment --
actors, the evaluator, the learner's probe, hosts joining over Redis -- makes the same one):

* ``env.id = "mypkg.envs:MyEnv-v0"`` -- Gymnasium's own form: the module is imported (it
  registers ``MyEnv-v0`` with ``gymnasium.register``), then the id is made as usual;
* ``env.entry_point = "mypkg.envs:MyEnv"`` (a class or factory) with ``env.kwargs`` -- registered
  under ``env.id`` (a new name, e.g. ``MyEnv-v0``) when the config is built, made on demand.

Failures are :class:`~rlfleet.errors.EnvError`\\ s that say what is wrong: a module that does not
import (with its traceback), a name it lacks, something that is not callable, a factory that
returns something other than a ``gymnasium.Env``. :func:`rlfleet.envs.check.check_custom_env` runs
Gymnasium's env checker on one instance before a run launches.
"""

from __future__ import annotations

import importlib
import re
import traceback
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from rlfleet.errors import EnvError

__all__ = [
    "import_env_module",
    "is_custom",
    "load_entry_point",
    "register_entry_point",
    "split_module_id",
]

#: ``pkg.module:Name`` (module path, then an attribute name or a Gymnasium id after the colon).
_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[\w.\-/]+$")

#: env ids this process registered from an entry point -> that entry point.
_registered: dict[str, str] = {}


def split_module_id(env_id: str) -> tuple[str | None, str]:
    """``("mypkg.envs", "MyEnv-v0")`` for ``"mypkg.envs:MyEnv-v0"``; ``(None, env_id)`` for an
    id without a module part."""
    if ":" not in env_id:
        return None, env_id
    module, _, name = env_id.partition(":")
    if not _ENTRY.match(env_id):
        raise EnvError(
            f"environment id {env_id!r} is not of the form 'module.path:EnvId' "
            "(e.g. 'mypkg.envs:MyEnv-v0')"
        )
    return module, name


def import_env_module(module: str, what: str) -> Any:
    """Import ``module``; an EnvError carrying the import's traceback if it fails. ``what``
    names the config value the module came from."""
    try:
        return importlib.import_module(module)
    except BaseException as exc:  # SyntaxError, SystemExit in a script... all reported the same
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        hint = (
            " (is it on the Python path of this process? run from the folder holding it, or set "
            "PYTHONPATH / pip install your package)"
            if isinstance(exc, ModuleNotFoundError)
            else ""
        )
        raise EnvError(f"{what}: cannot import module {module!r}{hint}:\n{tb}") from exc


def resolve_id(env_id: str) -> str:
    """The plain Gymnasium id of ``env_id``, after importing its module part (``module:Id``)
    so that the module's ``gymnasium.register`` calls have run in this process."""
    module, name = split_module_id(env_id)
    if module is None:
        return env_id
    import_env_module(module, f"env.id {env_id!r}")
    if name not in gym.registry:
        raise EnvError(
            f"env.id {env_id!r}: module {module!r} imported, but it registers no environment "
            f"{name!r} (call gymnasium.register(id={name!r}, entry_point=...) in it)"
        )
    return name


def load_entry_point(entry_point: str) -> Callable[..., Any]:
    """The class or factory ``entry_point`` (``pkg.module:Name``) names; EnvError when the
    module does not import, lacks the name, or the name is not callable."""
    if not isinstance(entry_point, str) or not _ENTRY.match(entry_point):
        raise EnvError(
            f"env.entry_point {entry_point!r} is not of the form 'pkg.module:ClassOrFactory'"
        )
    module_name, _, attr = entry_point.partition(":")
    module = import_env_module(module_name, f"env.entry_point {entry_point!r}")
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            public = sorted(n for n in dir(module) if not n.startswith("_"))[:20]
            raise EnvError(
                f"env.entry_point {entry_point!r}: module {module_name!r} has no {attr!r} "
                f"(it has: {', '.join(public) or 'nothing public'})"
            )
        target = getattr(target, part)
    if not callable(target):
        raise EnvError(
            f"env.entry_point {entry_point!r} is a {type(target).__name__}, not callable: it "
            "must name a gymnasium.Env class or a function returning one"
        )
    return target


class _EntryPointFactory:
    """Gymnasium entry point that loads the user's class or factory on first use and checks
    what it returns."""

    def __init__(self, entry_point: str) -> None:
        self.entry_point = entry_point

    def __call__(self, **kwargs: Any) -> gym.Env:
        factory = load_entry_point(self.entry_point)
        env = factory(**kwargs)
        if not isinstance(env, gym.Env):
            raise EnvError(
                f"env.entry_point {self.entry_point!r} returned a {type(env).__name__}, not a "
                "gymnasium.Env (subclass gymnasium.Env, or return one from the factory)"
            )
        return env


def register_entry_point(env_id: str, entry_point: str) -> None:
    """Register ``entry_point`` as ``env_id`` in this process (idempotent). The module is not
    imported here: that happens when an environment is made. ConfigError-like EnvError when
    ``env_id`` is already another environment's."""
    if not isinstance(entry_point, str) or not _ENTRY.match(entry_point):
        raise EnvError(
            f"env.entry_point {entry_point!r} is not of the form 'pkg.module:ClassOrFactory'"
        )
    if ":" in env_id:
        raise EnvError(
            f"env.id {env_id!r} with env.entry_point: env.id is the name to register it under, "
            "e.g. 'MyEnv-v0' (no module part)"
        )
    if _registered.get(env_id) == entry_point:
        return
    if env_id in gym.registry and env_id not in _registered:
        raise EnvError(
            f"env.id {env_id!r} is already a registered environment; with env.entry_point = "
            f"{entry_point!r} set env.id to a new name for yours, e.g. 'MyEnv-v0'"
        )
    if env_id in gym.registry:
        del gym.registry[env_id]  # this process re-registers it with another entry point
    try:
        gym.register(id=env_id, entry_point=_EntryPointFactory(entry_point))
    except gym.error.Error as exc:
        raise EnvError(f"env.id {env_id!r} cannot be registered: {exc}") from exc
    _registered[env_id] = entry_point


def is_custom(env_id: str) -> bool:
    """True for ids that come from the user's code (``module:Id`` or an entry point)."""
    return ":" in env_id or env_id in _registered
