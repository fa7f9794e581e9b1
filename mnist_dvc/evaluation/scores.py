"""The test set's scores: metrics/metrics.json's precision and recall, and metrics/confusion.csv's rows."""

import numpy as np


def per_class_scores(actual: np.ndarray, predicted: np.ndarray, num_classes: int) -> dict[str, dict[str, float]]:
    """Precision and recall of each class (0.0 where a class was never predicted or never seen)."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (actual, predicted), 1)
    hits = np.diag(confusion).astype(float)
    predicted_counts, actual_counts = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted_counts, out=np.zeros(num_classes), where=predicted_counts > 0)
    recall = np.divide(hits, actual_counts, out=np.zeros(num_classes), where=actual_counts > 0)
    return {
        "precision": {str(c): round(float(precision[c]), 6) for c in range(num_classes)},
        "recall": {str(c): round(float(recall[c]), 6) for c in range(num_classes)},
    }


def confusion_csv(actual: np.ndarray, predicted: np.ndarray) -> str:
    return "actual,predicted\n" + "".join(f"{a},{p}\n" for a, p in zip(actual, predicted, strict=True))
