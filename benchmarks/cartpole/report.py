"""What ``rlfleet bench cartpole`` reports: per-implementation medians, the peer / rlfleet
ratios and the printed tables. The Pendulum benchmark reports the same way (``env_id`` and
``threshold`` say which task)."""

from __future__ import annotations

from typing import Any

from benchmarks.cartpole.protocol import ENV_ID, SOLVE_THRESHOLD
from benchmarks.cartpole.records import RunRecord


def is_rlfleet(impl: str) -> bool:
    """rlfleet rows: ``rlfleet`` (the benchmark's default preset) or ``rlfleet:<preset>``."""
    return impl == "rlfleet" or impl.startswith("rlfleet:")


def rlfleet_impl(preset: str, default: str = "cartpole") -> str:
    """The row name of an rlfleet preset (the default preset keeps the historical name)."""
    return "rlfleet" if preset == default else f"rlfleet:{preset}"


def _median(xs: list[float]) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    m = len(s) // 2
    return float(s[m]) if len(s) % 2 else (s[m - 1] + s[m]) / 2.0


def summarise(records: list[RunRecord]) -> dict[str, dict[str, Any]]:
    """Per implementation: solved count, median times (unsolved = cap), median steps (solved)."""
    out: dict[str, dict[str, Any]] = {}
    for impl in dict.fromkeys(r.impl for r in records):
        rs = [r for r in records if r.impl == impl]
        solved = [r for r in rs if r.solved]
        excl = [r.time_excl_eval_s for r in rs if r.time_excl_eval_s is not None]
        steps = [float(r.env_steps_to_solve) for r in solved if r.env_steps_to_solve is not None]
        out[impl] = {
            "runs": len(rs),
            "solved": len(solved),
            "median_time_to_solve_s": _median([r.time_to_solve_s for r in rs]),
            "median_time_excl_eval_s": _median(excl) if excl else None,
            "median_headline_s": _median([r.headline_s for r in rs]),
            "median_env_steps_to_solve": _median(steps),
            "median_evaluations": _median([float(r.evaluations) for r in solved]),
        }
    return out


def ratios(
    summary: dict[str, dict[str, Any]], cap_s: float, base: str = "rlfleet"
) -> dict[str, dict[str, Any]]:
    """peer median / ``base`` median (above 1: ``base`` solves faster), headline and incl. eval.

    A median equal to the cap (half or more of the runs unsolved) makes the ratio a bound:
    ``bound`` is ">=" when only the peer's median is capped, "<=" when only rlfleet's is, and
    "n/a" when both are (the ratio then says nothing).
    """
    reference = summary.get(base)
    out: dict[str, dict[str, Any]] = {}
    if not reference or not reference["median_time_to_solve_s"]:
        return out
    ref = reference["median_time_to_solve_s"]
    for impl, s in summary.items():
        if impl == base:
            continue
        div = lambda a: round(a / ref, 3) if a else None  # noqa: E731
        peer_capped = s["median_headline_s"] is not None and s["median_headline_s"] >= cap_s
        base_capped = ref >= cap_s
        bound = {(False, False): "", (True, False): ">=", (False, True): "<="}
        out[impl] = {
            "headline": div(s["median_headline_s"]),
            "incl_eval": div(s["median_time_to_solve_s"]),
            "bound": bound.get((peer_capped, base_capped), "n/a"),
        }
    return out


def _fmt(v: float | None, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def ratios_by_base(summary: dict[str, dict[str, Any]], cap_s: float) -> dict[str, Any]:
    """:func:`ratios` against every rlfleet row (every preset benchmarked)."""
    return {impl: ratios(summary, cap_s, base=impl) for impl in summary if is_rlfleet(impl)}


def print_report(
    records: list[RunRecord],
    summary: dict[str, Any],
    by_base: dict[str, Any],
    env_id: str = ENV_ID,
    threshold: float = SOLVE_THRESHOLD,
) -> None:
    """Print one table per implementation (its runs and medians), then the ratios to every
    rlfleet row (``by_base``: :func:`ratios_by_base`)."""
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if not con.is_terminal:  # rich assumes 80 columns when piped; the SB3 tables need more
        con = Console(width=110)
    for impl, s in summary.items():
        sb3 = not is_rlfleet(impl)
        table = Table(title=f"{impl}: time to solve {env_id} (s from process launch)")
        cols = ["seed", "solved", "time s"]
        cols += ["eval s", "excl. eval s"] if sb3 else []
        cols += ["env steps", "evals", "stop"]
        for c in cols:
            table.add_column(c, justify="left" if c in ("solved", "stop") else "right")
        for r in (r for r in records if r.impl == impl):
            mark = "yes" if r.solved else "[red]no (= cap)[/red]"
            row = [str(r.seed), mark, _fmt(r.time_to_solve_s)]
            row += [_fmt(r.eval_s), _fmt(r.time_excl_eval_s)] if sb3 else []
            row += [_fmt(r.env_steps_to_solve, ",.0f"), str(r.evaluations)]
            row += [r.error or r.stop_reason]
            table.add_row(*row)
        row = ["median", f"{s['solved']}/{s['runs']}", _fmt(s["median_time_to_solve_s"])]
        row += ["", _fmt(s["median_time_excl_eval_s"])] if sb3 else []
        row += [_fmt(s["median_env_steps_to_solve"], ",.0f"), _fmt(s["median_evaluations"], ".0f")]
        table.add_row(*row, "", style="bold")
        con.print(table)
    for base, rat in by_base.items():
        for impl, r in rat.items():
            if r["bound"] == "n/a":
                con.print(f"{impl} vs {base}: n/a (both medians are the cap: mostly unsolved)")
                continue
            con.print(
                f"{impl} median / {base} median: [bold]{r['bound']}{_fmt(r['headline'], '.2f')}x"
                f"[/bold] (SB3 excluding its evaluations; including them "
                f"{r['bound']}{_fmt(r['incl_eval'], '.2f')}x)"
            )
    if any(by_base.values()):
        con.print(
            f"Time s: from process launch to the end of the second evaluation >= {threshold:g}. "
            "Above 1x means the rlfleet row solves faster. SB3 evaluates serially inside its "
            "training process "
            "(eval s), rlfleet in a separate evaluator process: the SB3 headline (excl. eval s) "
            "leaves SB3's evaluation time out, which favours SB3. Unsolved runs count as the "
            "cap; a median at the cap turns the ratio into a bound (>= or <=)."
        )
