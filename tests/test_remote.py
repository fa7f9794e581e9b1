"""A shared DVC remote (a local directory here): push, then fresh clones pull instead of recomputing."""

from pathlib import Path

import pytest
from helpers import TINY, clone, commit_all, copy_project, dvc, stages_run, write_params

pytestmark = pytest.mark.slow

OUTPUT_DIRS = ("data", "models", "metrics")


def output_files(project: Path) -> dict[str, bytes]:
    """Every file the pipeline wrote (DVC-cached and Git-tracked alike), by relative path."""
    return {
        str(path.relative_to(project)): path.read_bytes()
        for name in OUTPUT_DIRS
        for path in sorted((project / name).rglob("*"))
        if path.is_file() and path.name != ".gitignore"
    }


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    """A project run and committed twice (1 then 2 epochs), its remote committed, everything pushed.

    `--all-commits`: DVC 3.67's `push --run-cache` uploads the run entries but not the outputs of
    runs that the current commit does not use, so the 1-epoch run's outputs go up with its commit.
    """
    base = tmp_path_factory.mktemp("remote")
    project = copy_project(base)
    remote = base / "team-remote"
    dvc(project, "remote", "add", "-d", "team", str(remote))
    write_params(project, TINY | {"train.epochs": 1})
    commit_all(project, "pipeline and team remote")
    dvc(project, "repro")
    commit_all(project, "one epoch")  # a run someone did earlier: in dvc.lock no more after the next
    write_params(project, TINY)
    dvc(project, "repro")
    commit_all(project, "two epochs")
    pushed = dvc(project, "push", "--run-cache", "--all-commits")
    assert "files pushed" in pushed.stdout, pushed.stdout
    return project, remote


def test_a_fresh_clone_pulls_every_output_byte_identical_and_has_nothing_to_rerun(pushed, tmp_path):
    project, remote = pushed
    copy = clone(project, tmp_path / "colleague")
    assert not (copy / "models").exists()
    dvc(copy, "pull")
    pulled = output_files(copy)
    assert pulled == output_files(project)
    for path in (
        "data/raw/x_train.npy",
        "data/prepared/test.npz",
        "models/model.h5",
        "models/model-no-opt.h5",
        "models/model.weights.h5",
        "metrics/predictions.png",
        "metrics/misclassified.png",
    ):
        assert path in pulled, f"{path} was not pulled"
    again = dvc(copy, "repro")
    assert stages_run(again.stdout) == [] and "Data and pipelines are up to date" in again.stdout, again.stdout
    assert "Data and pipelines are up to date" in dvc(copy, "status").stdout


def test_repro_pull_in_a_fresh_clone_downloads_instead_of_retraining(pushed, tmp_path):
    project, _ = pushed
    copy = clone(project, tmp_path / "ci")
    result = dvc(copy, "repro", "--pull")
    assert stages_run(result.stdout) == [], result.stdout
    assert output_files(copy) == output_files(project)


@pytest.mark.xfail(
    strict=True,
    reason="DVC 3.67 finds the run in the pushed run-cache but `dvc push --run-cache` does not upload the "
    "`cache: false` metrics and plots it names (metrics/train.json, metrics/history.csv), so the pull misses "
    "them and train reruns; passes once those are cached or DVC pushes them (see docs/team.md)",
)
def test_repro_pull_restores_an_uncommitted_run_from_the_pushed_run_cache(pushed, tmp_path):
    project, _ = pushed
    copy = clone(project, tmp_path / "ci-one-epoch")
    write_params(copy, TINY | {"train.epochs": 1})  # not what dvc.lock says, but run (and pushed) before
    result = dvc(copy, "repro", "--pull")
    assert stages_run(result.stdout) == [], result.stdout
    assert "Stage 'train' is cached - skipping run, checking out outputs" in result.stdout
    assert "Stage 'evaluate' is cached - skipping run, checking out outputs" in result.stdout
    assert '"epochs": 1' in (copy / "metrics/train.json").read_text()
    assert (copy / "models/model.h5").is_file()
