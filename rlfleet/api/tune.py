"""``rlfleet tune``: hyperparameter search over a preset with Optuna (``pip install
'rlfleet[tune]'``; imported only here).

The search space is a TOML file, one table per config key::

    [learner.lr]
    type = "float"          # float | int | categorical
    low = 1e-4
    high = 3e-3
    log = true

    [learner.target_update_interval]
    type = "int"
    low = 50
    high = 400
    log = true

    [model.hidden]
    type = "categorical"
    choices = [[64, 64], [128, 128]]

Every trial is a normal run (``STUDY_DIR/trial-NNNN``, with its config.toml, metrics and
final_eval.json); the study lives in ``STUDY_DIR/study.db`` (SQLite), so running the same
command again resumes it up to ``--trials`` finished trials. The objective is minimised:

* ``solve_time`` (default when the preset has ``eval.solve_threshold``): seconds to solve; a
  trial that does not solve scores ``run.max_seconds * (2 - best / threshold)`` (worse than any
  solved trial; closer to the threshold is better);
* ``return``: minus the final evaluation's mean return.

Each evaluation reports minus its mean return at the run's second (Optuna's median pruner
stops trials that are worse than the median of earlier trials at the same time, after the
first 30% of ``run.max_seconds``). At the end:
a table of the trials, and the best trial's config written as a preset (``STUDY_DIR/best.toml``).
Trial 0 of a new study is the preset's own values when they lie in the space (a baseline).
Unknown keys and bad ranges are refused before any trial starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlfleet import atomic
from rlfleet.config import dumps_toml, load_toml, to_dict
from rlfleet.errors import ConfigError

__all__ = ["OBJECTIVES", "Param", "TuneSummary", "load_space", "tune"]

OBJECTIVES = ("solve_time", "return")
_TYPES = ("float", "int", "categorical")


@dataclass(frozen=True)
class Param:
    """One dimension of the search space: the config key ``name`` (``section.key``)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        # Optuna stores categorical choices as plain scalars: lists go by their index
        index = trial.suggest_categorical(self.name, list(range(len(self.choices))))
        return self.choices[index]

    def values(self) -> list[Any]:
        """Values to test the key with before any trial (the ends of the range, every choice)."""
        if self.kind == "categorical":
            return list(self.choices)
        cast = int if self.kind == "int" else float
        return [cast(self.low), cast(self.high)]


def _param(name: str, table: Any, where: str) -> Param:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{name}] must be a table with type = float|int|categorical")
    kind = table.get("type")
    if kind not in _TYPES:
        raise ConfigError(f"{where}: [{name}] type {kind!r} is unknown; valid: {', '.join(_TYPES)}")
    allowed = (
        {"type", "choices"} if kind == "categorical" else {"type", "low", "high", "log", "step"}
    )
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigError(
            f"{where}: [{name}] has unknown keys {extra}; a {kind} takes {sorted(allowed)}"
        )
    if kind == "categorical":
        choices = table.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: [{name}] needs choices = [a non-empty list]")
        return Param(name, kind, choices=tuple(choices))
    low, high = table.get("low"), table.get("high")
    numbers = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for v in (low, high)
    )
    if not numbers or not low < high:
        raise ConfigError(f"{where}: [{name}] needs numbers low < high, got {low!r}, {high!r}")
    if kind == "int" and (int(low) != low or int(high) != high):
        raise ConfigError(f"{where}: [{name}] is an int range; low and high must be integers")
    log = bool(table.get("log", False))
    if log and low <= 0:
        raise ConfigError(f"{where}: [{name}] log = true needs low > 0, got {low!r}")
    step = table.get("step")
    if step is not None and (log or not isinstance(step, (int, float)) or step <= 0):
        raise ConfigError(f"{where}: [{name}] step must be a number > 0 and cannot go with log")
    return Param(name, kind, float(low), float(high), log, step)


def load_space(path: str | Path, preset: Any, overrides: list[str]) -> list[Param]:
    """The parameters of a space file, each checked against ``preset``'s config: an unknown
    key or a value out of the key's range is a ConfigError naming it, before any trial."""
    from rlfleet.api.training import resolve_config

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--space {path}: no such file")
    data = load_toml(path)
    params: list[Param] = []
    for section, keys in data.items():
        if not isinstance(keys, dict) or "type" in keys:
            raise ConfigError(
                f"{path}: parameters are tables named [section.key], e.g. [learner.lr]; got "
                f"[{section}]"
            )
        for key, table in keys.items():
            params.append(_param(f"{section}.{key}", table, str(path)))
    if not params:
        raise ConfigError(f"{path}: the search space is empty")
    base, _ = resolve_config(preset, overrides)
    for param in params:
        for value in param.values():
            try:
                resolve_config(base, {param.name: value})
            except ConfigError as exc:
                raise ConfigError(f"{path}: [{param.name}] = {value!r}: {exc}") from exc
    return params


@dataclass
class TuneSummary:
    """The study's trials and its best one."""

    table: str
    best_number: int | None
    best_value: float | None
    best_params: dict[str, Any]
    best_preset: str | None
    study_db: str


def _objective_value(result: Any, config: Any, objective: str) -> float:
    if objective == "return":
        return -(result.final_return_mean if result.final_return_mean is not None else -math.inf)
    if result.solved and result.solved_at_s is not None:
        return float(result.solved_at_s)
    threshold = config.eval.solve_threshold
    best = max((e["return_mean"] for e in result.evaluations), default=0.0)
    budget = config.run.max_seconds or result.wall_s
    return float(budget * (2.0 - min(best / threshold, 1.0))) if threshold else float(budget * 2)


class _Pruning:
    """Reports minus each evaluation's mean return at its second; stops a trial Optuna prunes."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial
        self.last_step = -1
        self.pruned = False

    def on_evaluation(self, ev: Any) -> str | None:
        step = int(round(ev.wall_s))
        if step <= self.last_step:
            return None
        self.last_step = step
        self.trial.report(-ev.return_mean, step)
        if self.trial.should_prune():
            self.pruned = True
            return f"pruned at {step} s (return {ev.return_mean:.3g})"
        return None


def _table(study: Any, params: list[Param]) -> str:
    import optuna

    names = [p.name for p in params]
    head = ["trial", "state", "value", "solved_s", "final", *names]
    rows = []
    for t in study.trials:
        # a pruned trial's value is its last report (minus a return): not the objective
        done = t.state == optuna.trial.TrialState.COMPLETE
        value = f"{t.value:.2f}" if done and t.value is not None else "-"
        solved = t.user_attrs.get("solved_at_s")
        final = t.user_attrs.get("final_return_mean")
        shown = {p.name: _shown(p, t.params.get(p.name)) for p in params}
        rows.append(
            [
                str(t.number),
                t.state.name.lower(),
                value,
                f"{solved:.1f}" if solved is not None else "-",
                f"{final:.1f}" if final is not None else "-",
                *[shown[n] for n in names],
            ]
        )
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)
    ]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if done:
        best = study.best_trial
        lines.append(f"best: trial {best.number}, value {best.value:.2f}")
    return "\n".join(lines)


def _shown(param: Param, raw: Any) -> str:
    if raw is None:
        return "-"
    value = param.choices[raw] if param.kind == "categorical" else raw
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def tune(
    preset: str,
    space: str | Path,
    trials: int,
    *,
    study_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    objective: str | None = None,
    seed: int = 0,
    show_progress: bool = False,
) -> TuneSummary:
    """Run (or resume) the study until it has ``trials`` finished trials; see the module doc."""
    from rlfleet.api.training import resolve_config, train

    try:
        import optuna
    except ImportError as exc:
        raise ConfigError(
            f"rlfleet tune needs Optuna: pip install 'rlfleet[tune]' ({exc})"
        ) from exc
    overrides = list(overrides or [])
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"--trials must be an integer >= 1, got {trials!r}")
    base, name = resolve_config(preset, overrides)
    if objective is None:
        objective = "solve_time" if base.eval.solve_threshold else "return"
    if objective not in OBJECTIVES:
        raise ConfigError(f"--objective {objective!r} is unknown; valid: {', '.join(OBJECTIVES)}")
    if objective == "solve_time" and not base.eval.solve_threshold:
        raise ConfigError(
            "--objective solve_time needs eval.solve_threshold > 0 (the preset has none); use "
            "--objective return"
        )
    params = load_space(space, preset, overrides)  # every refusal before the first trial
    # no pruning in a trial's first 30% of its time budget (30 s without one): start-up (imports,
    # the replay's learning_starts) varies with the machine's load, and returns before learning
    # starts say nothing about a trial
    warmup = int(0.3 * base.run.max_seconds) if base.run.max_seconds else 30
    folder = Path(study_dir) if study_dir is not None else Path("runs") / f"tune-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "study.db"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name,
        storage=f"sqlite:///{db.resolve()}",
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup),
        load_if_exists=True,
    )
    if not study.trials:  # trial 0 is the preset itself (when it lies in the space): a baseline
        baseline = _baseline(params, base)
        if baseline is not None:
            study.enqueue_trial(baseline)
    study.set_user_attr("preset", str(preset))
    study.set_user_attr("objective", objective)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

    def run_trial(trial: Any) -> float:
        values = {p.name: p.suggest(trial) for p in params}
        pruning = _Pruning(trial)
        run_dir = folder / f"trial-{trial.number:04d}"
        config, _ = resolve_config(preset, overrides)
        config, _ = resolve_config(config, values)
        result = train(config, run_dir=run_dir, callbacks=[pruning], show_progress=show_progress)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("stop_reason", result.stop_reason)
        trial.set_user_attr("solved_at_s", result.solved_at_s)
        trial.set_user_attr("final_return_mean", result.final_return_mean)
        trial.set_user_attr("values", {k: v for k, v in values.items()})
        print(
            f"trial {trial.number}: {result.stop_reason} after {result.wall_s:.1f} s"
            + (f", solved at {result.solved_at_s:.1f} s" if result.solved else "")
            + f"; {', '.join(f'{k}={_fmt(v)}' for k, v in values.items())}",
            flush=True,
        )
        if result.stop_reason == "interrupted":  # Ctrl-C: the trial fails, the study stops
            raise KeyboardInterrupt
        if pruning.pruned:
            raise optuna.TrialPruned()
        return _objective_value(result, config, objective)

    while sum(t.state in finished for t in study.trials) < trials:
        study.optimize(run_trial, n_trials=1, catch=())
    return _summarize(study, params, preset, overrides, folder, db)


def _baseline(params: list[Param], config: Any) -> dict[str, Any] | None:
    """The base config's values as Optuna parameters, or None if one lies outside the space."""
    out: dict[str, Any] = {}
    for p in params:
        section, key = p.name.split(".", 1)
        value = getattr(getattr(config, section), key)
        if p.kind == "categorical":
            as_list = list(value) if isinstance(value, tuple) else value
            if as_list not in list(p.choices):
                return None
            out[p.name] = list(p.choices).index(as_list)
        elif p.low <= value <= p.high and (p.step is None or p.kind == "int"):
            out[p.name] = value
        else:
            return None
    return out


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _summarize(
    study: Any, params: list[Param], preset: str, overrides: list[str], folder: Path, db: Path
) -> TuneSummary:
    """The table, and the best trial's config written as a preset file."""
    import optuna

    from rlfleet.api.training import resolve_config

    table = _table(study, params)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return TuneSummary(table, None, None, {}, None, str(db))
    best = study.best_trial
    values = best.user_attrs.get("values") or {
        p.name: p.choices[best.params[p.name]] if p.kind == "categorical" else best.params[p.name]
        for p in params
    }
    config, _ = resolve_config(preset, overrides)
    config, _ = resolve_config(config, values)
    shown = ", ".join(f"{k} = {_fmt(v)}" for k, v in values.items())
    description = (
        f"rlfleet tune of {preset}: trial {best.number} of {len(study.trials)}, objective "
        f"{study.user_attrs.get('objective')} {best.value:.2f} ({shown})"
    )
    text = dumps_toml({"preset": {"description": description}, **to_dict(config)})
    path = folder / "best.toml"
    atomic.write_text(path, text)
    return TuneSummary(table, best.number, float(best.value), values, str(path), str(db))
