"""Pictures of a training run: curves per epoch and a grid of validation crops with their reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from platepilot.imagegrid import contact_sheet, save_picture

Panel = tuple[str, tuple[str, ...], bool]  # title, the history keys drawn in it, log scale?


def plot_curves(history: list[dict[str, float]], panels: list[Panel], path: Path) -> None:
    """One panel per entry of `panels`, each the named history values by epoch, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.6), squeeze=False)
    for ax, (title, keys, log) in zip(axes[0], panels, strict=True):
        for key in keys:
            ax.plot(epochs, [h[key] for h in history], label=key)
        if log:
            ax.set_yscale("log")
        if len(keys) > 1:
            ax.legend()
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def training_curves(history: list[dict[str, float]], path: Path) -> None:
    """The reader's run: CTC loss (train and validation), validation CER and exact per epoch."""
    plot_curves(history, [("CTC loss", ("loss", "val_loss"), True), ("validation CER", ("cer",), False),
                          ("validation exact", ("exact",), False)], path)  # fmt: skip


def prediction_grid(images: list[np.ndarray], preds: list[str], truths: list[str], path: Path, limit: int = 48) -> None:
    """Crops with `pred / true` captions, errors first, as a PNG."""
    import cv2

    order = sorted(range(len(images)), key=lambda i: preds[i] == truths[i])[:limit]
    tiles = [images[i] if images[i].ndim == 3 else cv2.cvtColor(images[i], cv2.COLOR_GRAY2BGR) for i in order]
    captions = [f"{preds[i] or '-'} / {truths[i]}" + ("" if preds[i] == truths[i] else "  X") for i in order]
    save_picture(path, contact_sheet(tiles, captions))
