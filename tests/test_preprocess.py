import sys
import time

import numpy as np
import pytest
from helpers import run, run_stage, synthetic_mnist, write_params

from mnist_dvc.core.params import load_params
from mnist_dvc.data.prepared import read_split
from mnist_dvc.data.raw import save_arrays
from stages.preprocess import flatten_and_scale, one_hot, prepare


def test_flatten_and_scale_gives_float32_in_unit_range():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    out = flatten_and_scale(images)
    assert out.dtype == np.float32 and out.shape == (1, 4)
    np.testing.assert_allclose(out, [[0.0, 1.0, 0.2, 0.4]])


def test_one_hot_matches_keras_to_categorical_for_a_fixed_class_count():
    import keras

    labels = np.array([3, 0, 9, 3], dtype=np.uint8)  # 10 classes although only three occur
    out = one_hot(labels, 10)
    assert out.dtype == np.float32 and out.shape == (4, 10)
    np.testing.assert_array_equal(out, keras.utils.to_categorical(labels, num_classes=10))


def test_prepare_takes_the_first_samples_and_keeps_every_class_column(workdir):
    write_params(workdir, {"preprocess.train_samples": 7, "preprocess.test_samples": 3})
    raw = synthetic_mnist(n_train=20, n_test=10)
    prepared = prepare(raw, load_params().preprocess)
    assert prepared["x_train"].shape == (7, 784) and prepared["y_train"].shape == (7, 10)
    assert prepared["x_test"].shape == (3, 784) and prepared["y_test"].shape == (3, 10)
    assert list(prepared["y_train"].argmax(axis=1)) == list(raw["y_train"][:7])


def test_the_stage_writes_prepared_arrays_without_importing_tensorflow(tmp_path):
    write_params(tmp_path, {"preprocess.train_samples": 100, "preprocess.test_samples": 50})
    save_arrays(tmp_path / "data/raw", synthetic_mnist(n_train=100, n_test=50))
    probe = (
        "import runpy, sys; runpy.run_module('stages.preprocess', run_name='__main__'); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules))"
    )
    result = run([sys.executable, "-c", probe], tmp_path)
    assert result.stdout.strip().endswith("[]")
    assert sorted(p.name for p in (tmp_path / "data/prepared").iterdir()) == ["test.npz", "train.npz"]
    x, y = read_split(tmp_path / "data/prepared/train.npz")
    assert x.shape == (100, 784) and x.dtype == np.float32 and y.shape == (100, 10)
    with np.load(tmp_path / "data/prepared/test.npz", allow_pickle=False) as npz:  # a plain .npz for anyone
        assert npz.files == ["x", "y"] and npz["x"].shape == (50, 784)


def test_the_prepared_files_are_byte_identical_on_every_run(tmp_path):
    write_params(tmp_path, {"preprocess.train_samples": 100, "preprocess.test_samples": 50})
    save_arrays(tmp_path / "data/raw", synthetic_mnist(n_train=100, n_test=50))
    run_stage("preprocess", tmp_path)
    first = {p.name: p.read_bytes() for p in (tmp_path / "data/prepared").iterdir()}
    time.sleep(2.1)  # zip entry times have a two-second resolution: a stamped time would now differ
    run_stage("preprocess", tmp_path)
    assert {p.name: p.read_bytes() for p in (tmp_path / "data/prepared").iterdir()} == first


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.update(x_train=a["x_train"].astype(np.float64)), "x_train is float64 and y_train is uint8"),
        (lambda a: a.update(x_test=a["x_test"][:, :27]), "x_test has shape (50, 27, 28); expected (n, 28, 28)"),
        (lambda a: a.update(y_train=a["y_train"] + 10), "y_train holds label 19; labels must be 0..9"),
    ],
)
def test_bad_raw_data_is_an_error_naming_the_file_and_problem(tmp_path, change, message):
    write_params(tmp_path)
    raw = synthetic_mnist(n_train=100, n_test=50)
    change(raw)
    save_arrays(tmp_path / "data/raw", raw)
    result = run_stage("preprocess", tmp_path, check=False)
    assert result.returncode == 2
    assert f"error: data/raw: {message}" in result.stderr
    assert not (tmp_path / "data/prepared").exists()
