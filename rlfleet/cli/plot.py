"""``rlfleet plot RUN``: learning curves of a run folder to one PNG."""

from __future__ import annotations

from pathlib import Path

from rlfleet.errors import ConfigError
from rlfleet.fleet.metrics import read_metrics

PANELS = (
    ("eval/return_mean", "greedy evaluation return"),
    ("env/episode_return", "training episode return"),
    ("learner/loss", "learner loss"),
    ("learner/q_mean", "mean Q of sampled batches"),
    ("env/steps_per_s", "env steps / s"),
    ("learner/updates_per_s", "updates / s"),
    ("replay/size", "replay size"),
    ("learner/entropy", "policy entropy (nats)"),
    ("params/version_lag", "policy lag (versions)"),
    ("learner/rho_clip_fraction", "V-trace rho clip fraction"),
    ("learner/distill_loss", "distillation loss H(teacher || student)"),
    ("learner/kickstart_lambda", "kickstarting lambda"),
)


def plot_run(run_dir: str, out: str | None = None) -> str:
    """Draw the standard panels against env steps; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run_dir)
    if not (run / "metrics.csv").exists():
        raise ConfigError(f"{run_dir} has no metrics.csv; is it a run folder?")
    metrics = read_metrics(run)
    panels = [(name, title) for name, title in PANELS if name in metrics]
    if not panels:
        raise ConfigError(f"{run_dir}/metrics.csv holds no plottable metrics yet")
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
    for ax, (name, title) in zip(axes.flat, panels, strict=False):
        series = metrics[name]
        ax.plot(
            [s[1] for s in series],
            [s[3] for s in series],
            marker="o" if name.startswith("eval") else None,
            ms=3,
        )
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(run.name)
    fig.tight_layout()
    path = Path(out) if out else run / "curves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
