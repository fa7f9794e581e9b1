"""The study's pictures, drawn with matplotlib: learning curves, a prediction grid, misclassified images."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stages.files import atomic_path  # noqa: E402


def learning_curves(rows: list[dict]) -> plt.Figure:
    """Accuracy and loss per epoch (rows of metrics/history.csv), train and validation, side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    epochs = [row["epoch"] for row in rows]
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        ax.plot(epochs, [row[metric] for row in rows], marker="o", label=metric)
        ax.plot(epochs, [row[f"val_{metric}"] for row in rows], marker="o", label=f"val_{metric}")
        ax.set(title=f"model {metric}", xlabel="epoch", ylabel=metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def prediction_grid(
    images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, probability: np.ndarray
) -> plt.Figure:
    """Images ten to a row, titled with the predicted label and its probability, red where wrong."""
    rows = math.ceil(len(images) / 10)
    fig, axes = plt.subplots(rows, 10, figsize=(12, 1.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    # strict=False: the last row may have more axes than images.
    for ax, image, label, guess, p in zip(axes.flat, images, labels, predicted, probability, strict=False):
        ax.imshow(image.reshape(28, 28), cmap="gray")
        ax.set_title(f"{guess} ({p:.4f})", fontsize=9, color="black" if guess == label else "red")
    fig.tight_layout()
    return fig


def misclassified_grid(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, max_images: int) -> plt.Figure:
    """The first `max_images` images whose prediction is wrong, ten to a row, titled with true and predicted label."""
    wrong = np.flatnonzero(labels != predicted)
    shown = wrong[:max_images]
    rows = max(1, math.ceil(len(shown) / 10))
    fig, axes = plt.subplots(rows, 10, figsize=(12, 1.5 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, shown, strict=False):
        ax.imshow(images[i].reshape(28, 28), cmap="gray")
        ax.set_title(f"true {labels[i]}, pred {predicted[i]}", fontsize=9, color="red")
    summary = f"Misclassified test images: {len(wrong)} of {len(labels)}"
    fig.suptitle(summary + (f" (the first {len(shown)})" if len(shown) < len(wrong) else ""))
    if not len(wrong):
        fig.text(0.5, 0.4, "every test image is classified correctly", ha="center")
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
