"""Learning curves of a :class:`~nn.training.History` as a PNG (matplotlib, optional)."""
from __future__ import annotations

import os
from typing import Mapping

from .history import History

__all__ = ["plot_history"]


def _smooth(values: list, points: int = 50) -> list:
    """Trailing moving average over about ``len(values) / points`` steps (at least 1)."""
    w = max(1, len(values) // points)
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= w:
            acc -= values[i - w]
        out.append(acc / min(i + 1, w))
    return out


def plot_history(history: History | Mapping, path, title: str | None = None) -> str:
    """Write a PNG of the learning curves: training loss per step (raw and smoothed) with the loss per epoch
    (train, validation, test), and accuracy per epoch.

    Needs matplotlib (``pip install "xpgrad[bench]"``); draws with the Agg canvas, so no display is needed and
    the global matplotlib backend is not changed. Returns the path written.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as e:
        raise ImportError("plot_history needs matplotlib, an optional dependency: pip install matplotlib "
                          "(or pip install -e '.[bench]')") from e
    h = history if isinstance(history, History) else History.from_dict(history)
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)

    def curve(ax, name, label, style):
        pts = [(e, v) for e, v in zip(h.epoch, h[name]) if v is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
            return True
        return False

    drew_loss = []
    if h.step_loss:             # per step: raw (faint) and smoothed, so even a one-epoch run has a curve
        ax_loss.plot(h.step_epoch, h.step_loss, color="tab:blue", alpha=0.25, lw=0.8)
        ax_loss.plot(h.step_epoch, _smooth(h.step_loss), color="tab:blue", label="train (per step, smoothed)")
        drew_loss.append(True)
    drew_loss += [curve(ax_loss, n, lab, s) for n, lab, s in
                  (("train_loss", "train (epoch mean)", "o-"), ("val_loss", "validation", "s--"),
                   ("test_loss", "test", "^:"))]
    drew_acc = [curve(ax_acc, n, lab, s) for n, lab, s in
                (("train_acc", "train", "o-"), ("val_acc", "validation", "s--"), ("test_acc", "test", "^:"))]
    for ax, ylabel, drew in ((ax_loss, "loss", drew_loss), (ax_acc, "accuracy", drew_acc)):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if any(drew):
            ax.legend()
    if h.best_epoch is not None:
        for ax in (ax_loss, ax_acc):
            ax.axvline(h.best_epoch, color="grey", lw=0.8, ls=":")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, format="png")
    return path
