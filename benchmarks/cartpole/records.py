"""What ``rlfleet bench cartpole`` keeps of a run: the solve criterion, the run's record and its
times from launch (the cap rule), filled from an rlfleet run's final_eval.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks.cartpole.protocol import SOLVE_CONSECUTIVE, SOLVE_THRESHOLD


class SolveTracker:
    """The solve criterion: mean >= threshold at ``consecutive`` evaluations in a row."""

    def __init__(
        self, threshold: float = SOLVE_THRESHOLD, consecutive: int = SOLVE_CONSECUTIVE
    ) -> None:
        self.threshold = threshold
        self.consecutive = consecutive
        self.streak = 0
        self.count = 0
        self.solved_at: int | None = None  # 1-based index of the evaluation that solved

    def update(self, return_mean: float) -> bool:
        """Record one evaluation; True from the evaluation that completes the streak onwards."""
        self.count += 1
        if self.solved_at is None:
            self.streak = self.streak + 1 if return_mean >= self.threshold else 0
            if self.streak >= self.consecutive:
                self.solved_at = self.count
        return self.solved_at is not None


@dataclass
class RunRecord:
    """One run of one implementation with one seed."""

    impl: str
    seed: int
    cap_s: float
    solved: bool = False
    #: launch -> second qualifying evaluation finished; the cap when unsolved.
    time_to_solve_s: float = 0.0
    env_steps_to_solve: int | None = None
    #: evaluations run up to and including the solving one (all of them if unsolved).
    evaluations: int = 0
    #: SB3 only: seconds spent in its own (in-process) evaluations before the solve.
    eval_s: float | None = None
    #: SB3 only: time_to_solve_s minus eval_s (the SB3 headline); the cap when unsolved.
    time_excl_eval_s: float | None = None
    stop_reason: str = ""
    #: rlfleet only: launch -> the first env step of any actor / the learner's first update
    #: (interpreter start-up and imports included)
    first_env_step_s: float | None = None
    first_update_s: float | None = None
    process_wall_s: float = 0.0
    env_steps: int = 0
    error: str | None = None
    curve: list[dict[str, float]] = field(default_factory=list)
    command: list[str] = field(default_factory=list)

    @property
    def headline_s(self) -> float:
        """The figure medians are taken over: excluding evaluations for SB3."""
        return self.time_excl_eval_s if self.time_excl_eval_s is not None else self.time_to_solve_s


def finalize(rec: RunRecord, solved_at_unix: float | None, launch_unix: float) -> RunRecord:
    """Set the times from the solve moment; unsolved (or solved after the cap) counts as the cap."""
    elapsed = None if solved_at_unix is None else solved_at_unix - launch_unix
    if elapsed is not None and elapsed <= rec.cap_s:
        rec.solved = True
        rec.time_to_solve_s = round(elapsed, 3)
        if rec.eval_s is not None:
            rec.time_excl_eval_s = round(elapsed - rec.eval_s, 3)
    else:
        if elapsed is not None:
            rec.stop_reason = f"solved after the cap ({elapsed:.1f} s)"
        rec.solved = False
        rec.time_to_solve_s = rec.cap_s
        rec.env_steps_to_solve = None
        if rec.eval_s is not None:
            rec.time_excl_eval_s = rec.cap_s
    return rec


def record_from_final_eval(rec: RunRecord, fe: dict[str, Any], launch_unix: float) -> RunRecord:
    """Fill an rlfleet record from its run's final_eval.json contents."""
    rec.stop_reason = fe.get("stop_reason", "")
    rec.env_steps = int(fe.get("env_steps", 0))
    rec.curve = list(fe.get("evaluations", []))
    start = fe.get("start_unix")  # the run's clock zero: its first_*_s count from there
    if isinstance(start, (int, float)):
        for name in ("first_env_step_s", "first_update_s"):
            if isinstance(fe.get(name), (int, float)):
                setattr(rec, name, round(start + fe[name] - launch_unix, 3))
    solved_s = fe.get("solved_at_s")
    solved = bool(fe.get("solved")) and solved_s is not None
    if solved:
        rec.evaluations = sum(1 for e in rec.curve if e["wall_s"] <= solved_s + 1e-9)
        rec.env_steps_to_solve = fe.get("solved_at_env_steps")
    else:
        rec.evaluations = len(rec.curve)
    return finalize(rec, fe.get("solved_at_unix") if solved else None, launch_unix)
