"""The Pareto view of an evaluation: per scenario, throughput against p95 one-way delay with every
scheme as a point, and which schemes dominate which.

Scheme A *dominates* B on a scenario when A's mean throughput is at least B's and its mean p95
delay at most B's, one of them strictly. :func:`dominance` also applies the learned-controller
target of issue 13 to every non-classic scheme: dominated by none of the classic schemes, at least
80 % of the best classic throughput, and loss at most max(2 %, lowest classic loss + 1 point).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: the classic schemes a learned one is held against
CLASSIC = ("cubic", "bbr", "copa")


def dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True if summary row ``a`` dominates ``b`` (throughput up, p95 delay down)."""
    ta, tb, da, db = (
        a["throughput_mbps"],
        b["throughput_mbps"],
        a["delay_p95_ms"],
        b["delay_p95_ms"],
    )
    if any(isinstance(v, float) and math.isnan(v) for v in (ta, tb, da, db)):
        return False
    return ta >= tb and da <= db and (ta > tb or da < db)


def dominance(summary: Sequence[dict[str, Any]], classic: Sequence[str] = CLASSIC) -> list[dict]:
    """One row per (scenario, scheme): who it dominates, who dominates it, and for schemes not
    in ``classic`` the target check against the classic schemes present. Multi-flow schemes
    (``a+b``) are left out."""
    by_sc: dict[str, list[dict[str, Any]]] = {}
    for r in summary:
        if "+" not in r["scheme"]:  # shared-bottleneck runs are judged by fairness, not here
            by_sc.setdefault(r["scenario"], []).append(r)
    out = []
    for sc, rows in by_sc.items():
        cls = [r for r in rows if r["scheme"] in classic]
        best_tput = max((r["throughput_mbps"] for r in cls), default=math.nan)
        min_loss = min((r["loss"] for r in cls), default=math.nan)
        for r in rows:
            row = {
                "scenario": sc,
                "scheme": r["scheme"],
                "throughput_mbps": r["throughput_mbps"],
                "delay_p95_ms": r["delay_p95_ms"],
                "loss": r["loss"],
                "dominates": [o["scheme"] for o in rows if o is not r and dominates(r, o)],
                "dominated_by": [o["scheme"] for o in rows if o is not r and dominates(o, r)],
            }
            if r["scheme"] not in classic and cls:
                frac = r["throughput_mbps"] / best_tput if best_tput > 0 else math.nan
                loss_cap = max(0.02, min_loss + 0.01)
                undominated = not any(dominates(c, r) for c in cls)
                row.update(
                    {
                        "tput_frac_best_classic": frac,
                        "loss_cap": loss_cap,
                        "undominated_by_classic": undominated,
                        "meets_target": bool(undominated and frac >= 0.8 and r["loss"] <= loss_cap),
                    }
                )
            out.append(row)
    return out


def write_dominance(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """:func:`dominance` rows as CSV (scheme lists space-separated)."""
    import csv

    cols = [
        "scenario",
        "scheme",
        "throughput_mbps",
        "delay_p95_ms",
        "loss",
        "dominated_by",
        "dominates",
        "tput_frac_best_classic",
        "meets_target",
    ]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(
                {
                    **r,
                    "dominated_by": " ".join(r["dominated_by"]),
                    "dominates": " ".join(r["dominates"]),
                }
            )


def plot_pareto(rows: Sequence[dict[str, Any]], path: str | Path, ncols: int = 3) -> str:
    """One PNG, one panel per scenario: throughput vs p95 delay (log, inverted as Pantheon draws
    it); each seed a small point, each scheme's mean over seeds a large one, same colour per
    scheme across panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    schemes = list(dict.fromkeys(r["scheme"] for r in rows))
    colour = {s: f"C{i % 10}" for i, s in enumerate(schemes)}
    n = len(scenarios)
    nc = min(ncols, n)
    nr = math.ceil(n / nc)
    fig, axes = plt.subplots(nr, nc, figsize=(4.6 * nc, 3.6 * nr), squeeze=False)
    for ax, sc in zip(axes.flat, scenarios, strict=False):
        for scheme in schemes:
            pts = [
                (r["delay_p95_ms"], r["throughput_mbps"])
                for r in rows
                if r["scenario"] == sc and r["scheme"] == scheme
            ]
            pts = [p for p in pts if not (math.isnan(p[0]) or math.isnan(p[1])) and p[0] > 0]
            if not pts:
                continue
            xs, ys = np.array(pts).T
            ax.scatter(xs, ys, s=10, alpha=0.45, color=colour[scheme])
            ax.scatter(
                [xs.mean()], [ys.mean()], s=70, color=colour[scheme], edgecolor="k", label=scheme
            )
        ax.set_xscale("log")
        xs_all = [r["delay_p95_ms"] for r in rows if r["scenario"] == sc and r["delay_p95_ms"] > 0]
        fmt = FuncFormatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_major_formatter(fmt)
        # narrow delay ranges have no decade inside: label the minor ticks, briefly
        wide = bool(xs_all) and max(xs_all) / min(xs_all) > 8
        ax.xaxis.set_minor_formatter(NullFormatter() if wide else fmt)
        ax.invert_xaxis()
        ax.set_title(sc, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xlabel("p95 one-way delay (ms)", fontsize=8)
        ax.set_ylabel("throughput (Mbit/s)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    p = Path(path)
    fig.savefig(p, dpi=90)
    plt.close(fig)
    return str(p)
