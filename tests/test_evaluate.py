import json
import sys

import keras
import numpy as np
import pytest
from helpers import PNG_MAGIC, imported_by_stage, make_prepared, run, run_stage

from mnist_dvc.data.prepared import read_split
from mnist_dvc.evaluation.figures import misclassified_grid, prediction_grid
from mnist_dvc.evaluation.pictures import draw, pictures_process
from mnist_dvc.evaluation.scores import confusion_csv, per_class_scores


def test_per_class_scores_count_hits_over_predictions_and_over_truths():
    actual = np.array([0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0])
    scores = per_class_scores(actual, predicted, 3)
    assert scores["precision"] == {"0": 0.5, "1": pytest.approx(2 / 3, abs=1e-6), "2": 0.0}
    assert scores["recall"] == {"0": 0.5, "1": 1.0, "2": 0.0}


def test_confusion_csv_has_one_row_per_image():
    assert confusion_csv(np.array([7, 2]), np.array([7, 3])) == "actual,predicted\n7,7\n2,3\n"


def tile_titles(fig) -> list[str]:
    (ax,) = fig.axes  # one mosaic, titled tile by tile
    return [text.get_text() for text in ax.texts]


def test_misclassified_grid_shows_only_wrong_images_titled_with_true_and_predicted_label():
    images = np.arange(25 * 784).reshape(25, 784) % 251
    labels = np.arange(25) % 10
    predicted = labels.copy()
    predicted[[3, 7, 20]] = [5, 1, 9]
    fig = misclassified_grid(images, labels, predicted, max_images=2)
    assert tile_titles(fig) == ["true 3, pred 5", "true 7, pred 1"]
    mosaic = fig.axes[0].get_images()[0].get_array()
    second_tile = mosaic[10:38, 30:58]  # 28-pixel tiles under a 10-pixel title band, 2 pixels apart
    np.testing.assert_allclose(second_tile, images[7].reshape(28, 28) / images[7].max())
    assert fig.get_suptitle() == "Misclassified test images: 3 of 25 (the first 2)"


def test_misclassified_grid_says_so_when_every_image_is_right():
    labels = np.arange(10)
    fig = misclassified_grid(np.zeros((10, 784)), labels, labels, max_images=40)
    assert fig.get_suptitle() == "Misclassified test images: 0 of 10"
    assert tile_titles(fig) == []
    assert "every test image is classified correctly" in [text.get_text() for text in fig.texts]


def test_the_prediction_grid_titles_each_image_with_its_guess_and_probability_red_where_wrong():
    fig = prediction_grid(np.ones((3, 784)), np.array([1, 2, 3]), np.array([1, 5, 3]), np.array([0.9, 0.51, 1.0]))
    (ax,) = fig.axes
    assert [(t.get_text(), t.get_color()) for t in ax.texts] == [
        ("1 (0.9000)", "black"),
        ("5 (0.5100)", "red"),
        ("3 (1.0000)", "black"),
    ]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    directory = tmp_path_factory.mktemp("evaluated")
    make_prepared(directory, {"train.epochs": 2, "evaluate.num_images": 12})
    run_stage("train", directory)
    result = run_stage("evaluate", directory)
    return directory, result


def test_evaluate_reports_test_metrics_from_the_saved_model(evaluated):
    directory, result = evaluated
    metrics = json.loads((directory / "metrics/metrics.json").read_text())
    model = keras.models.load_model(directory / "models/model.h5")
    x, y = read_split(directory / "data/prepared/test.npz")
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert metrics["test_loss"] == pytest.approx(loss, abs=1e-5)
    assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-5)
    assert set(metrics["precision"]) == set(metrics["recall"]) == {str(c) for c in range(10)}
    assert f"test_accuracy {accuracy:.4f}" in result.stdout


def test_evaluate_writes_the_confusion_data_and_the_pictures(evaluated):
    directory, _ = evaluated
    rows = (directory / "metrics/confusion.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted" and len(rows) == 1 + 200
    for name in ("learning_curves.png", "predictions.png", "misclassified.png"):
        assert (directory / "metrics" / name).read_bytes().startswith(PNG_MAGIC)


def test_evaluate_draws_in_its_pictures_process_alone(evaluated):
    directory, _ = evaluated
    for name in ("learning_curves.png", "predictions.png", "misclassified.png"):
        (directory / "metrics" / name).unlink()
    assert imported_by_stage("evaluate", directory) == {"tensorflow": False, "matplotlib": False}
    for name in ("learning_curves.png", "predictions.png", "misclassified.png"):
        assert (directory / "metrics" / name).read_bytes().startswith(PNG_MAGIC), "drawn all the same"


GPU_SETTINGS = ("XLA_FLAGS", "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION")


def test_evaluate_starts_jax_with_the_gpu_memory_share_and_deterministic_ops(evaluated):
    """As train does: on one GPU beside another run's process, evaluate takes no more than its share."""
    directory, _ = evaluated
    probe = (
        "import json, os, runpy, sys\n"
        f"[os.environ.pop(k, None) for k in {GPU_SETTINGS!r}]  # none of the user's own\n"
        "seen = {}\n"
        "def first_jax_import(event, args):\n"
        "    if event == 'import' and args[0] == 'jax' and not seen:\n"
        f"        seen.update({{k: os.environ.get(k) for k in {GPU_SETTINGS!r}}})\n"
        "sys.addaudithook(first_jax_import)\n"
        "runpy.run_module('stages.evaluate', run_name='__main__', alter_sys=True)\n"
        "print(json.dumps(seen))\n"
    )
    result = run([sys.executable, "-c", probe], directory)
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen, "evaluate imported JAX"
    assert seen["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=true"
    assert seen["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert float(seen["XLA_PYTHON_CLIENT_MEM_FRACTION"]) < 0.5


def test_the_pictures_process_draws_when_spawned_as_on_macos(tmp_path):
    with pictures_process("spawn") as pictures:
        pictures.submit(
            draw,
            "learning_curves",
            tmp_path / "curves.png",
            [{"epoch": 1, "accuracy": 0.9, "loss": 0.3, "val_accuracy": 0.95, "val_loss": 0.2, "learning_rate": 1e-3}],
        ).result()
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG_MAGIC)


def test_a_model_carrying_code_is_refused_and_its_code_never_runs(evaluated, tmp_path):
    directory, _ = evaluated
    marker = tmp_path / "code-ran"
    payload = keras.Sequential([keras.Input((784,)), keras.layers.Lambda(lambda x: x), keras.layers.Dense(10)])
    payload.layers[0].function = eval(f"lambda x: (open({str(marker)!r}, 'w'), x)[1]")
    payload.compile(loss="categorical_crossentropy")
    model_file = directory / "models/model.h5"
    saved = model_file.read_bytes()
    metrics_before = (directory / "metrics/metrics.json").read_text()
    try:
        payload.save(model_file)
        result = run_stage("evaluate", directory, check=False)
    finally:
        model_file.write_bytes(saved)
    assert result.returncode == 2
    assert "models/model.h5 is refused: it carries serialized Python code (a Lambda layer)" in result.stderr
    assert not marker.exists()
    assert (directory / "metrics/metrics.json").read_text() == metrics_before


def test_a_prepared_file_of_the_wrong_shape_is_named(evaluated, tmp_path):
    directory, _ = evaluated
    test_npz = directory / "data/prepared/test.npz"
    saved = test_npz.read_bytes()
    try:
        np.savez(test_npz, x=np.zeros((200, 28, 28), dtype=np.float32), y=np.zeros((200, 10), dtype=np.float32))
        result = run_stage("evaluate", directory, check=False)
    finally:
        test_npz.write_bytes(saved)
    assert result.returncode == 2
    assert (
        "error: data/prepared/test.npz holds x as float32 (200, 28, 28); expected float32 (n, features)"
        in result.stderr
    )
