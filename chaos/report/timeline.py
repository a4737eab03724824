"""``timeline.png``: produce throughput and latency over time, fault windows shaded,
leadership changes marked, and the epochs each SPU accepted. Drawn with matplotlib's
``Figure`` and its Agg canvas directly (no pyplot, no display needed).

matplotlib is an extra (``pip install 'ha-sc[chaos]'``): without it a run writes its
report without the picture."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from chaos.checkers import epochs, figures
from chaos.history.history import History

if TYPE_CHECKING:
    from matplotlib.axes import Axes

WITHOUT_MATPLOTLIB = "matplotlib is not installed (pip install 'ha-sc[chaos]')"


def draw_timeline(history: History, path: Path, *, title: str) -> bool:
    """Draw ``history`` to ``path``; False (and nothing written) without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    t0 = history.span.start
    fig = Figure(figsize=(11, 7.5))
    FigureCanvasAgg(fig)
    rate, latency, fence = fig.subplots(3, 1, sharex=True)
    fig.suptitle(title)
    _throughput(rate, history, t0)
    _latency(latency, history, t0)
    _fence(fence, history, t0)
    changes = epochs.leadership_changes(history)
    for phase in history.phases().values():
        rate.axvline(phase.start - t0, color="grey", linewidth=0.6)
        rate.annotate(phase.name, (phase.start - t0, 0), xycoords=("data", "axes fraction"),
                      va="bottom", fontsize="x-small", color="grey")  # fmt: skip
    for axis in (rate, latency, fence):
        for window in history.faults():
            axis.axvspan(window.start - t0, window.end - t0, color="orange", alpha=0.25)
        for t, _, _ in changes:
            axis.axvline(t - t0, color="green", linestyle="--", linewidth=0.8)
    for t, replica, epoch in changes:
        rate.annotate(f"{replica} e{epoch}", (t - t0, 1), xycoords=("data", "axes fraction"),
                      rotation=90, va="top", fontsize="x-small", color="green")  # fmt: skip
    for window in history.faults():
        fence.annotate(window.name, (window.start - t0, 0), xycoords=("data", "axes fraction"),
                       va="bottom", fontsize="x-small", color="darkorange")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def _throughput(axis: Axes, history: History, t0: float) -> None:
    buckets = figures.throughput(history)
    if buckets:
        axis.step([b - t0 for b, _ in buckets], [n for _, n in buckets], where="post")
    axis.set_ylim(bottom=0)
    axis.set_ylabel("acked records / s")


def _latency(axis: Axes, history: History, t0: float) -> None:
    done = figures.acked(history)
    if done:
        axis.scatter([p.start - t0 for p in done], [(p.end - p.start) * 1000 for p in done], s=2)
    failed = [p for p in history.produces if p.outcome != "ok"]
    if failed:
        axis.scatter(
            [p.start - t0 for p in failed],
            [(p.end - p.start) * 1000 for p in failed],
            s=6,
            marker="x",
            color="red",
            label="failed / unknown",
        )
        axis.legend(loc="upper right")
    axis.set_ylabel("produce latency (ms)")


def _fence(axis: Axes, history: History, t0: float) -> None:
    from matplotlib.ticker import MaxNLocator

    end = history.span.end - t0
    for spu in sorted({c.spu for c in history.controls}):
        mine = [c for c in history.controls if c.spu == spu]
        accepted = [c for c in mine if c.outcome == "accept"]
        if accepted:
            times = [c.t - t0 for c in accepted] + [end]
            epochs_ = [c.epoch for c in accepted] + [accepted[-1].epoch]
            axis.step(times, epochs_, where="post", label=f"spu {spu}")
        refused = [c for c in mine if c.outcome == "refuse"]
        if refused:
            axis.scatter([c.t - t0 for c in refused], [c.epoch for c in refused], marker="x",
                         color="red")  # fmt: skip
    if history.controls:
        axis.legend(loc="upper left", fontsize="small")
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylabel("epoch accepted by SPU")
    axis.set_xlabel("seconds since the run started")
