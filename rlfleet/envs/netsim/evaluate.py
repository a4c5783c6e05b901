"""Pantheon-style evaluation: classic schemes and learned policies on the same scenarios/metrics.

Metrics per run (Pantheon ``tunnel_graph.py`` definitions, from per-packet logs):

* ``throughput_mbps``: egress bytes over (last - first egress) per flow; for all flows together,
  all egress bytes over the union span;
* ``delay_mean_ms`` / ``delay_p95_ms``: per-packet one-way delay, p95 with
  ``np.percentile(..., 95, method="nearest")``;
* ``loss``: packets dropped in the network (droptail + IID) / packets sent;
* ``utilisation``: throughput / bottleneck capacity (1504 B per opportunity) over the same span;
* ``jain``: Jain's index of per-flow throughput over the interval where all flows are active.

Policies are plain callables ``obs -> action`` (this layer knows nothing of checkpoints).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.envs.netsim.cc.registry import make_controller
from rlfleet.envs.netsim.engine import Network
from rlfleet.envs.netsim.flow import Flow
from rlfleet.envs.netsim.pareto import dominance, plot_pareto, write_dominance
from rlfleet.envs.netsim.scenarios.spec import Scenario, build_network
from rlfleet.errors import ConfigError

Policy = Callable[[np.ndarray], int]

METRICS = (
    "throughput_mbps",
    "delay_mean_ms",
    "delay_p95_ms",
    "loss",
    "utilisation",
    "jain",
)


def p95(x: np.ndarray) -> float:
    """Pantheon's percentile rule: nearest-rank 95th percentile."""
    return float(np.percentile(x, 95, method="nearest")) if len(x) else math.nan


def jain(x: Sequence[float]) -> float:
    """Jain's fairness index (sum x)^2 / (n sum x^2); 1 for a single flow."""
    a = np.asarray(x, dtype=np.float64)
    s2 = float((a**2).sum())
    return float(a.sum() ** 2 / (len(a) * s2)) if s2 > 0 else math.nan


def flow_metrics(f: Flow) -> dict[str, float]:
    """Per-flow Pantheon metrics."""
    rx = np.asarray(f.rx_times)
    owd = np.asarray(f.owds)
    sent = f.sent_pkts
    out = {
        "packets_sent": float(sent),
        "packets_delivered": float(len(rx)),
        "loss": (f.q_dropped + f.rand_lost) / sent if sent else math.nan,
        "retransmissions": float(f.retx_pkts),
        "delay_mean_ms": float(owd.mean()) if len(owd) else math.nan,
        "delay_p95_ms": p95(owd),
        "throughput_mbps": math.nan,
    }
    if len(rx) > 1 and rx[-1] > rx[0]:
        out["throughput_mbps"] = len(rx) * f.mss * 8 / (rx[-1] - rx[0]) / 1000.0
    return out


def network_metrics(net: Network, delay_up_ms: float) -> dict[str, Any]:
    """Aggregate and per-flow metrics of a finished run."""
    flows = [f for f in net.flows if f.rx_times]
    per_flow = [flow_metrics(f) for f in net.flows]
    res: dict[str, Any] = {k: math.nan for k in METRICS}
    res["flows"] = per_flow
    if not flows:
        return res
    first = min(f.rx_times[0] for f in flows)
    last = max(f.rx_times[-1] for f in flows)
    total_bytes = sum(len(f.rx_times) * f.mss for f in flows)
    owd = np.concatenate([np.asarray(f.owds) for f in flows])
    sent = sum(f.sent_pkts for f in net.flows)
    dropped = sum(f.q_dropped + f.rand_lost for f in net.flows)
    if last > first:
        span = last - first
        res["throughput_mbps"] = total_bytes * 8 / span / 1000.0
        # opportunities from the first departure's millisecond to the last's, inclusive
        lo_ms = math.floor(first - delay_up_ms) - 1
        cap_bytes = net.up.schedule.count_between(lo_ms, last - delay_up_ms) * 1504
        res["utilisation"] = total_bytes / cap_bytes if cap_bytes else math.nan
    res["delay_mean_ms"] = float(owd.mean())
    res["delay_p95_ms"] = p95(owd)
    res["loss"] = dropped / sent if sent else math.nan
    # fairness on the interval where every flow is active
    lo = max(f.rx_times[0] for f in flows)
    hi = min(f.rx_times[-1] for f in flows)
    if len(net.flows) > 1 and len(flows) == len(net.flows) and hi > lo:
        shares = [
            float(np.count_nonzero((np.asarray(f.rx_times) >= lo) & (np.asarray(f.rx_times) <= hi)))
            * f.mss
            for f in flows
        ]
        res["jain"] = jain(shares)
    elif len(net.flows) == 1:
        res["jain"] = 1.0
    return res


def run_classic(
    sc: Scenario,
    scheme: str,
    *,
    duration_s: float = 30.0,
    seed: int = 0,
    n_flows: int = 1,
    interval_s: float = 10.0,
    mss: int = 1500,
) -> dict[str, Any]:
    """Run ``n_flows`` flows of a classic scheme (started ``interval_s`` apart) and measure."""
    net = build_network(sc, seed)
    for i in range(n_flows):
        net.add_flow(
            make_controller(scheme, seed * 1000 + i), start_ms=i * interval_s * 1000.0, mss=mss
        )
    net.run_until(duration_s * 1000.0)
    return network_metrics(net, sc.delay_ms)


#: keys of a learned policy's training env kwargs that its evaluation env must share (what it
#: observes and how its connection behaves); rewards, samplers and privileged inputs are not
POLICY_ENV_KEYS = (
    "actions",
    "history",
    "compact",
    "window_ms",
    "mss",
    "init_cwnd",
    "min_cwnd",
    "max_cwnd",
    "receiver",
    "ack_every",
)


def policy_env_kwargs(policy: Any) -> dict[str, Any]:
    """The :data:`POLICY_ENV_KEYS` of a policy's ``env_kwargs`` attribute (if it has one)."""
    kw = getattr(policy, "env_kwargs", None) or {}
    return {k: v for k, v in kw.items() if k in POLICY_ENV_KEYS}


def run_policy(
    sc: Scenario,
    policy: Policy,
    *,
    duration_s: float = 30.0,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run a learned policy (obs -> action; its ``reset()``, if any, is called first) for one
    episode of NetSimEnv and measure."""
    from rlfleet.envs.netsim.env import NetSimEnv  # gymnasium only when needed

    # the policy's own observation/transport settings (from its training config), then ours
    kwargs = {**policy_env_kwargs(policy), **(env_kwargs or {})}
    env = NetSimEnv(sc, duration_s=duration_s, **kwargs)
    obs, _ = env.reset(seed=seed)
    reset_memory = getattr(policy, "reset", None)  # policies with an LSTM core start afresh
    if callable(reset_memory):
        reset_memory()
    ret = 0.0
    while True:
        obs, r, term, trunc, _ = env.step(int(policy(obs)))
        ret += r
        if term or trunc:
            break
    res = network_metrics(env.net, sc.delay_ms)
    res["episode_return"] = ret
    return res


@dataclass
class EvalConfig:
    """What to evaluate. ``policies`` maps scheme names to callables (e.g. checkpoints)."""

    scenarios: list[Scenario]
    schemes: list[str]
    duration_s: float = 30.0
    seeds: list[int] = field(default_factory=lambda: [0])
    n_flows: int = 1
    interval_s: float = 10.0
    policies: dict[str, Policy] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)


def evaluate(
    cfg: EvalConfig, progress: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """One row per (scenario, scheme, seed) with the metrics; ``progress`` is told after each."""
    if not cfg.scenarios or not cfg.schemes or not cfg.seeds:
        raise ConfigError("evaluation needs at least one scenario, one scheme and one seed")
    for s in cfg.schemes:
        for part in s.split("+"):  # "a+b": flows of a and b sharing the bottleneck
            if part not in cfg.policies:
                make_controller(part)  # raise early on unknown names
    rows: list[dict[str, Any]] = []
    for sc in cfg.scenarios:
        for scheme in cfg.schemes:
            for seed in cfg.seeds:
                if "+" in scheme:
                    m = _run_shared(sc, scheme, cfg, seed)
                elif scheme in cfg.policies:
                    if cfg.n_flows != 1:
                        raise ConfigError("learned policies run one flow; use --flows 1")
                    m = run_policy(
                        sc,
                        cfg.policies[scheme],
                        duration_s=cfg.duration_s,
                        seed=seed,
                        env_kwargs=cfg.env_kwargs,
                    )
                else:
                    m = run_classic(
                        sc,
                        scheme,
                        duration_s=cfg.duration_s,
                        seed=seed,
                        n_flows=cfg.n_flows,
                        interval_s=cfg.interval_s,
                    )
                rows.append({"scenario": sc.name, "scheme": scheme, "seed": seed, **m})
                if progress is not None:
                    progress(f"{sc.name} {scheme} seed={seed}")
    return rows


def run_shared(
    sc: Scenario,
    members: Sequence[str | Policy],
    *,
    duration_s: float = 30.0,
    seed: int = 0,
    interval_s: float = 10.0,
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One flow per member (classic scheme name or learned policy) sharing the bottleneck,
    ``interval_s`` apart (:func:`.multiflow.run_mixed`); learned flows run in the setup of the
    first policy's ``env_kwargs``. Metrics include each flow's and Jain's index."""
    from rlfleet.envs.netsim.multiflow import run_mixed

    learned = [m for m in members if not isinstance(m, str)]
    kwargs = {**(policy_env_kwargs(learned[0]) if learned else {}), **(env_kwargs or {})}
    net = run_mixed(
        sc, members, duration_s=duration_s, seed=seed, interval_s=interval_s, env_kwargs=kwargs
    )
    return network_metrics(net, sc.delay_ms)


def _run_shared(sc: Scenario, scheme: str, cfg: EvalConfig, seed: int) -> dict[str, Any]:
    """Scheme ``a+b+...``: one flow per part on the bottleneck, ``interval_s`` apart."""
    return run_shared(
        sc,
        [cfg.policies.get(p, p) for p in scheme.split("+")],
        duration_s=cfg.duration_s,
        seed=seed,
        interval_s=cfg.interval_s,
        env_kwargs=cfg.env_kwargs,
    )


def _mean(values: Iterable[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def summarise_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean of each metric over seeds, per (scenario, scheme)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["scheme"]), []).append(r)
    out = []
    for (sc, scheme), rs in groups.items():
        row: dict[str, Any] = {"scenario": sc, "scheme": scheme, "runs": len(rs)}
        for k in METRICS:
            vals = [r[k] for r in rs if not math.isnan(r[k])]
            row[k] = float(np.mean(vals)) if vals else math.nan
        n_flows = len(rs[0].get("flows", []))
        if n_flows > 1:  # each flow's mean throughput, in start order
            row["flow_throughput_mbps"] = [
                _mean([r["flows"][i]["throughput_mbps"] for r in rs]) for i in range(n_flows)
            ]
        out.append(row)
    return out


def write_results(rows: list[dict[str, Any]], out_dir: str | Path, meta: dict[str, Any]) -> dict:
    """results.json (runs + summary + meta), summary.csv and one PNG per scenario."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise_rows(rows)

    def clean(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    dom = dominance(summary)
    doc = {"meta": meta, "summary": clean(summary), "dominance": clean(dom), "runs": clean(rows)}
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(out / "results.json")
    with open(out / "summary.csv", "w", newline="") as fh:
        w = csv.DictWriter(
            fh, fieldnames=["scenario", "scheme", "runs", *METRICS, "flow_throughput_mbps"]
        )
        w.writeheader()
        for r in summary:
            w.writerow(
                {k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            )
    pngs = plot_results(rows, out)
    pareto = plot_pareto(rows, out / "pareto.png")
    write_dominance(dom, out / "dominance.csv")
    return {
        "json": str(out / "results.json"),
        "csv": str(out / "summary.csv"),
        "png": pngs,
        "pareto": pareto,
        "dominance": str(out / "dominance.csv"),
        "dominance_rows": dom,
    }


def plot_results(rows: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Pantheon-style plot per scenario: throughput vs p95 one-way delay (log x, inverted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    paths = []
    by_sc: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_sc.setdefault(r["scenario"], []).append(r)
    for sc, rs in by_sc.items():
        fig, ax = plt.subplots(figsize=(6, 4.5))
        schemes = sorted({r["scheme"] for r in rs})
        for i, scheme in enumerate(schemes):
            pts = [(r["delay_p95_ms"], r["throughput_mbps"]) for r in rs if r["scheme"] == scheme]
            pts = [p for p in pts if not (math.isnan(p[0]) or math.isnan(p[1]))]
            if not pts:
                continue
            color = f"C{i % 10}"
            xs, ys = zip(*pts, strict=True)
            ax.scatter(xs, ys, s=12, alpha=0.4, color=color)
            ax.scatter([np.mean(xs)], [np.mean(ys)], s=60, color=color, label=scheme)
            ax.annotate(
                scheme, (np.mean(xs), np.mean(ys)), textcoords="offset points", xytext=(5, 5)
            )
        ax.set_xscale("log")
        xs_all = [r["delay_p95_ms"] for r in rs if r["delay_p95_ms"] > 0]
        if xs_all:  # pad so that close points do not sit on the frame
            ax.set_xlim(min(xs_all) / 1.15, max(xs_all) * 1.15)
        fmt = FuncFormatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_major_formatter(fmt)
        wide = xs_all and max(xs_all) / min(xs_all) > 8
        ax.xaxis.set_minor_formatter(NullFormatter() if wide else fmt)
        ax.invert_xaxis()
        ax.set_xlabel("95th percentile one-way delay (ms)")
        ax.set_ylabel("Average throughput (Mbit/s)")
        ax.set_title(sc, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        p = out_dir / f"{sc.replace('/', '_').replace(':', '_')}.png"
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(str(p))
    return paths
