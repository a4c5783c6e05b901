"""The check a custom environment gets once before a run launches: Gymnasium's env checker on
one instance, its failures as :class:`~rlfleet.errors.EnvError`\\ s."""

from __future__ import annotations

import warnings

from gymnasium.utils.env_checker import check_env

from rlfleet.envs.custom import is_custom
from rlfleet.envs.make import make_env
from rlfleet.errors import EnvError

__all__ = ["check_custom_env"]


def check_custom_env(env_id: str, env_kwargs: dict | None = None) -> None:
    """Make one environment of a custom id and run Gymnasium's env checker on it (spaces,
    ``reset``/``step`` signatures and return types, seeding); EnvError naming what is wrong.
    Built-in ids are not checked. Called once before a run launches."""
    if not is_custom(env_id):
        return
    env = make_env(env_id, env_kwargs=env_kwargs)
    try:
        with warnings.catch_warnings():
            # the checker warns about style (e.g. bounds of 'inf'); only errors stop a run
            warnings.simplefilter("ignore")
            check_env(env.unwrapped, skip_render_check=True)
    except EnvError:
        raise
    except Exception as exc:  # the checker asserts; a user's env may raise anything
        detail = str(exc) or type(exc).__name__
        raise EnvError(
            f"environment {env_id!r} fails Gymnasium's env checker: {detail} "
            f"({type(exc).__name__}; see gymnasium.utils.env_checker.check_env)"
        ) from exc
    finally:
        env.close()
