"""The pipeline end to end: real `dvc` commands in a temporary git repository."""

import json

import keras
import pytest
from helpers import TINY, commit_all, copy_project, dvc, run, stages_run, write_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    """A tiny configuration reproduced once; the tests below each look at one consequence."""
    project = copy_project(tmp_path_factory.mktemp("e2e"))
    write_params(project, TINY)
    commit_all(project, "pipeline")
    first = dvc(project, "repro")
    commit_all(project, "first run")
    return project, first


def test_repro_runs_every_stage_and_every_output_loads(repro):
    project, first = repro
    assert stages_run(first.stdout) == ["fetch", "preprocess", "train", "evaluate"]
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert (project / "data/raw" / f"{name}.npy").is_file()
    assert sorted(path.name for path in (project / "data/prepared").iterdir()) == ["test.npz", "train.npz"]
    keras.models.load_model(project / "models/model.h5")
    keras.models.load_model(project / "models/model-no-opt.h5", compile=False)
    assert (project / "models/model.weights.h5").stat().st_size > 0
    metrics = json.loads((project / "metrics/metrics.json").read_text())
    assert 0 <= metrics["test_accuracy"] <= 1
    assert (project / "dvc.lock").is_file()


# Library chatter a normal run must not print: TensorFlow's and absl's start-up logging, the oneDNN
# note (which worries anyone who came for reproducibility), Keras's HDF5 "legacy" warning.
CHATTER = (
    "absl::InitializeLog",
    "oneDNN custom operations",
    "You are saving your model as an HDF5 file",
    "Compiled the loaded model",
    "WARNING:absl",
    "rebuild TensorFlow",
    "cpu_feature_guard",
)


def test_the_console_shows_the_projects_keras_and_dvc_lines_only(repro):
    _, first = repro
    output = first.stdout + first.stderr
    assert not [line for line in output.splitlines() if any(noise in line for noise in CHATTER)], output
    assert "train: training on cpu:0 (cpu), backend jax" in output
    assert "Epoch 1/2" in output and "evaluate: test_loss" in output


def test_a_second_repro_does_nothing(repro):
    project, _ = repro
    again = dvc(project, "repro")
    assert stages_run(again.stdout) == []
    assert "Data and pipelines are up to date" in again.stdout


def test_changing_num_images_reruns_evaluate_alone_and_params_diff_shows_it(repro):
    project, _ = repro
    write_params(project, TINY | {"evaluate.num_images": 10})
    result = dvc(project, "repro")
    assert stages_run(result.stdout) == ["evaluate"]
    diff = dvc(project, "params", "diff", "--md").stdout
    assert "evaluate.num_images" in diff and "20" in diff and "10" in diff
    commit_all(project, "fewer images")


def test_changing_epochs_reruns_train_and_evaluate_but_not_the_data_stages(repro):
    project, _ = repro
    write_params(project, TINY | {"evaluate.num_images": 10, "train.epochs": 1})
    result = dvc(project, "repro")
    assert stages_run(result.stdout) == ["train", "evaluate"]
    metrics_diff = dvc(project, "metrics", "diff", "--md").stdout
    assert "metrics/train.json" in metrics_diff and "epochs" in metrics_diff
    commit_all(project, "one epoch")


def test_going_back_to_earlier_params_is_restored_from_the_run_cache(repro):
    project, _ = repro
    write_params(project, TINY | {"evaluate.num_images": 10})  # train.epochs 2 again, as two tests ago
    result = dvc(project, "repro")
    assert stages_run(result.stdout) == []
    assert "Stage 'train' is cached - skipping run, checking out outputs" in result.stdout
    write_params(project, TINY | {"evaluate.num_images": 10, "train.epochs": 1})
    assert stages_run(dvc(project, "repro").stdout) == []


def test_plots_show_writes_every_chart(repro):
    project, _ = repro
    dvc(project, "plots", "show")
    html = (project / "dvc_plots/index.html").read_text()
    for title in ("Accuracy per epoch", "Loss per epoch", "Learning rate per epoch", "Test set confusion matrix"):
        assert title in html
    assert all(name in html for name in ("learning_curves.png", "predictions.png", "misclassified.png"))


def test_a_bad_param_stops_repro_with_a_clear_message_and_nothing_is_lost(repro):
    project, _ = repro
    model_before = (project / "models/model.h5").read_bytes()
    write_params(project, TINY | {"train.epochs": 1, "evaluate.num_images": 10, "train.batch_size": "32"})
    result = dvc(project, "repro", check=False)
    assert result.returncode != 0
    output = result.stderr + result.stdout
    assert "error: params.yaml is not valid:" in output
    assert "train.batch_size = '32': Input should be a valid integer" in output
    assert "`git checkout -- metrics && dvc checkout` restores them" in output
    write_params(project, TINY | {"evaluate.num_images": 10, "train.epochs": 1})
    run(["git", "checkout", "--", "metrics"], project)
    dvc(project, "checkout")
    assert (project / "models/model.h5").read_bytes() == model_before
    assert stages_run(dvc(project, "repro").stdout) == []


def test_an_experiment_with_a_bad_value_fails_the_same_clear_way(repro):
    project, _ = repro
    result = dvc(project, "exp", "run", "-S", "train.dropout=[0.2,1.5]", check=False)
    assert result.returncode != 0
    assert "train.dropout.1 = 1.5: Input should be less than 1" in result.stdout + result.stderr
