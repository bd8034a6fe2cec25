"""Pictures of a training run: curves per epoch and a grid of validation crops with their reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from platepilot.imagegrid import contact_sheet


def training_curves(history: list[dict[str, float]], path: Path) -> None:
    """loss/val_loss, CER and exact per epoch, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(epochs, [h["loss"] for h in history], label="train loss")
    axes[0].plot(epochs, [h["val_loss"] for h in history], label="val loss")
    axes[0].set_yscale("log")
    axes[1].plot(epochs, [h["cer"] for h in history], color="tab:red")
    axes[2].plot(epochs, [100 * h["exact"] for h in history], color="tab:green")
    for ax, title in zip(axes, ("CTC loss", "validation CER", "validation exact (%)"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def prediction_grid(images: list[np.ndarray], preds: list[str], truths: list[str], path: Path, limit: int = 48) -> None:
    """Crops with `pred / true` captions, errors first, as a PNG."""
    import cv2

    order = sorted(range(len(images)), key=lambda i: preds[i] == truths[i])[:limit]
    tiles = [images[i] if images[i].ndim == 3 else cv2.cvtColor(images[i], cv2.COLOR_GRAY2BGR) for i in order]
    captions = [f"{preds[i] or '-'} / {truths[i]}" + ("" if preds[i] == truths[i] else "  X") for i in order]
    cv2.imwrite(str(path), contact_sheet(tiles, captions))
