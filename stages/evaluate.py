"""Stage 4, evaluate: models/model.h5 + the test set -> metrics/ and the study's pictures.

Loads the saved model.h5 as a user would (with Keras's safe_mode), and writes
metrics/metrics.json (test loss and accuracy, per-class precision and recall),
metrics/confusion.csv (actual, predicted) for DVC's confusion template,
metrics/learning_curves.png, metrics/predictions.png and metrics/misclassified.png.
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from stages.backend import use_backend, without_plotting
from stages.errors import run_stage
from stages.files import write_json, write_text
from stages.history import HISTORY_CSV, read_history
from stages.params import load_params
from stages.prepared import read_split, split_path

MODEL_FILE = Path("models/model.h5")
METRICS_DIR = Path("metrics")
BATCH_SIZE = 1000  # inference only: the batch size changes speed, not results
MISCLASSIFIED_IMAGES = 40  # the first N wrong test images in metrics/misclassified.png


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


def draw(name: str, path: Path, *args) -> None:
    """Save the figure `stages.figures.<name>(*args)` to `path`; run in the pictures process."""
    from stages import figures

    figures.save_figure(getattr(figures, name)(*args), path)


def main() -> None:
    all_params = load_params()
    params = all_params.evaluate
    use_backend(all_params.train.backend)
    x, y = read_split(split_path("test"))
    history = read_history(HISTORY_CSV)  # every input checked before the slow part

    # The pictures are drawn by a second process while this one loads Keras and predicts, so a
    # two-core machine works on both at once; only that process imports matplotlib. It is forked
    # now, before JAX starts threads (fork and threads do not mix).
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork")) as pictures:
        drawn = [pictures.submit(draw, "learning_curves", METRICS_DIR / "learning_curves.png", history)]
        without_plotting()  # in this process, now that the pictures process is forked

        import keras

        from stages.model_files import load_trusted_model

        # Prediction needs no optimizer: loading without compiling skips building one, and one
        # predict gives both the pictures and the metrics (the loss is the training loss, as Keras's
        # evaluate computes it).
        model = load_trusted_model(MODEL_FILE, compile=False)
        probabilities = model.predict(x, batch_size=BATCH_SIZE, verbose=0)
        actual, predicted = y.argmax(axis=1), probabilities.argmax(axis=1)
        n = params.num_images
        grid = (x[:n], actual[:n], predicted[:n], probabilities[:n].max(axis=1))
        drawn.append(pictures.submit(draw, "prediction_grid", METRICS_DIR / "predictions.png", *grid))
        wrong = (x, actual, predicted, MISCLASSIFIED_IMAGES)
        drawn.append(pictures.submit(draw, "misclassified_grid", METRICS_DIR / "misclassified.png", *wrong))

        test_loss = float(keras.ops.mean(keras.losses.get(all_params.train.loss)(y, probabilities)))
        test_accuracy = float(np.mean(actual == predicted))
        metrics = {"test_loss": round(test_loss, 6), "test_accuracy": round(test_accuracy, 6)}
        metrics |= per_class_scores(actual, predicted, y.shape[1])
        write_json(METRICS_DIR / "metrics.json", metrics)
        write_text(METRICS_DIR / "confusion.csv", confusion_csv(actual, predicted))
        for picture in drawn:
            picture.result()
    print(f"evaluate: test_loss {test_loss:.4f}, test_accuracy {test_accuracy:.4f}")


if __name__ == "__main__":
    run_stage(main)
