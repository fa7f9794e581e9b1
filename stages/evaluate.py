"""Stage 4, evaluate: models/model.h5 + the test set -> metrics/ and the study's pictures.

Loads the saved model.h5 as a user would (with Keras's safe_mode), and writes
metrics/metrics.json (test loss and accuracy, per-class precision and recall),
metrics/confusion.csv (actual, predicted) for DVC's confusion template,
metrics/learning_curves.png, metrics/predictions.png and metrics/misclassified.png.
"""

from pathlib import Path

import numpy as np

from mnist_dvc.core.errors import run_stage
from mnist_dvc.core.files import write_json, write_text
from mnist_dvc.core.params import load_params
from mnist_dvc.data.prepared import read_split, split_path
from mnist_dvc.evaluation.pictures import draw, pictures_process
from mnist_dvc.evaluation.scores import confusion_csv, per_class_scores
from mnist_dvc.runtime.process import start_process
from mnist_dvc.training.history import HISTORY_CSV, read_history

MODEL_FILE = Path("models/model.h5")
METRICS_DIR = Path("metrics")
BATCH_SIZE = 1000  # inference only: the batch size changes speed, not results
MISCLASSIFIED_IMAGES = 40  # the first N wrong test images in metrics/misclassified.png


def main() -> None:
    all_params = load_params()
    params = all_params.evaluate
    start_process(all_params.train.backend)
    x, y = read_split(split_path("test"))
    history = read_history(HISTORY_CSV)  # every input checked before the slow part

    with pictures_process() as pictures:
        drawn = [pictures.submit(draw, "learning_curves", METRICS_DIR / "learning_curves.png", history)]

        import keras  # only now: the pictures process has started, and the backend is set

        from mnist_dvc.training.model_files import load_trusted_model

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
