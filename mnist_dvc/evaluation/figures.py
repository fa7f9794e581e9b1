"""The study's pictures, drawn with matplotlib: learning curves, a prediction grid, misclassified images."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mnist_dvc.core.files import atomic_path  # noqa: E402


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


def image_grid(images: np.ndarray, titles: list[str], colors: list[str], columns: int = 10) -> plt.Figure:
    """Images `columns` to a row, each titled; drawn as one mosaic in one axes (a subplot per image
    costs most of the stage's drawing time). A tile is 28 x 28 pixels, with a white band above it
    for its title and a 2-pixel gap beside it."""
    rows = max(1, math.ceil(len(images) / columns))
    size, gap, band = 28, 2, 10
    mosaic = np.ones((rows * (band + size), columns * (size + gap) - gap), dtype=np.float32)
    for i, image in enumerate(images):
        top, left = (i // columns) * (band + size) + band, (i % columns) * (size + gap)
        mosaic[top : top + size, left : left + size] = image.reshape(size, size) / max(float(image.max()), 1e-12)
    fig = plt.figure(figsize=(12, 12 * mosaic.shape[0] / mosaic.shape[1] + 0.3))
    ax = fig.add_axes((0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    for i, (title, color) in enumerate(zip(titles, colors, strict=True)):
        x, y = (i % columns) * (size + gap) + size / 2, (i // columns) * (band + size) + band - 1.5
        ax.text(x, y, title, ha="center", va="bottom", fontsize=9, color=color)
    return fig


def prediction_grid(
    images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, probability: np.ndarray
) -> plt.Figure:
    """Images ten to a row, titled with the predicted label and its probability, red where wrong."""
    titles = [f"{guess} ({p:.4f})" for guess, p in zip(predicted, probability, strict=True)]
    colors = ["black" if guess == label else "red" for guess, label in zip(predicted, labels, strict=True)]
    return image_grid(images, titles, colors)


def misclassified_grid(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, max_images: int) -> plt.Figure:
    """The first `max_images` images whose prediction is wrong, ten to a row, titled with true and predicted label."""
    wrong = np.flatnonzero(labels != predicted)
    shown = wrong[:max_images]
    fig = image_grid(images[shown], [f"true {labels[i]}, pred {predicted[i]}" for i in shown], ["red"] * len(shown))
    summary = f"Misclassified test images: {len(wrong)} of {len(labels)}"
    fig.suptitle(summary + (f" (the first {len(shown)})" if len(shown) < len(wrong) else ""), y=0.995, va="top")
    if not len(wrong):
        fig.text(0.5, 0.4, "every test image is classified correctly", ha="center")
    return fig


def save_figure(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
