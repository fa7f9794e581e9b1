"""A sweep spread over machines with DVC's own sharing, and the model as a DVC artifact.

A bare Git repository stands for the team's Git remote and a local directory for its DVC remote
(committed in .dvc/config as the default). Two clones run one experiment each and push it; a
third pulls both, compares them and applies one without retraining; a version of the model is
registered as a `mnist-dnn@vX.Y.Z` tag and fetched with `dvc artifacts get`.
"""

import json
from pathlib import Path

import pytest
from helpers import TINY, clone, commit_all, copy_project, dvc, experiments, run, stages_run, write_params

pytestmark = pytest.mark.slow

# Two machines, one learning rate each; neither is the baseline's, so both really train.
MACHINES = {"machine-a": ("lr-0.002", 0.002), "machine-b": ("lr-0.005", 0.005)}
BRANCH = "main"


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """The team's remotes, a trained baseline pushed, and one experiment per machine pushed.

    Returns the Git remote and, per machine, what its run left in its workspace (model bytes, metrics).
    """
    base = tmp_path_factory.mktemp("team")
    git_remote, storage = base / "team.git", base / "dvc-storage"
    run(["git", "init", "-q", "--bare", "-b", BRANCH, str(git_remote)], base)

    project = copy_project(base)
    dvc(project, "remote", "add", "-d", "team", str(storage))
    write_params(project, TINY)
    commit_all(project, "pipeline, params and the team DVC remote")
    # A trained baseline, as the team's main branch has: the machines pull its data instead of fetching,
    # and its metrics/.gitignore keeps the DVC-cached figures out of Git in every commit after it.
    dvc(project, "repro")
    commit_all(project, "baseline run")
    dvc(project, "push")
    run(["git", "push", "-q", str(git_remote), f"HEAD:refs/heads/{BRANCH}"], project)

    runs = {}
    for machine, (name, learning_rate) in MACHINES.items():
        checkout = clone(git_remote, base / machine)
        if machine == "machine-b":  # this one pushes by itself after the run
            dvc(checkout, "config", "--local", "exp.auto_push", "true")
            dvc(checkout, "config", "--local", "exp.git_remote", "origin")
        result = dvc(checkout, "exp", "run", "--pull", "-n", name, "-S", f"train.learning_rate={learning_rate}")
        print(result.stdout)
        assert stages_run(result.stdout) == ["train", "evaluate"], result.stdout
        if machine == "machine-b":
            assert "Pushing experiment to 'origin'" in result.stdout, result.stdout
        else:
            pushed = dvc(checkout, "exp", "push", "origin", name)
            print(pushed.stdout)
            assert f"Pushed experiment {name} to Git remote 'origin'" in pushed.stdout, pushed.stdout
        runs[name] = {
            "learning_rate": learning_rate,
            "model": (checkout / "models/model.h5").read_bytes(),
            "metrics": read_json(checkout / "metrics/metrics.json"),
            "train": read_json(checkout / "metrics/train.json"),
        }
    listed = dvc(project, "exp", "list", str(git_remote)).stdout
    assert all(name in listed for name in runs), listed
    return git_remote, runs


def test_a_sweep_run_on_two_machines_is_pulled_compared_and_applied_on_a_third_without_retraining(team, tmp_path):
    git_remote, runs = team
    lead = clone(git_remote, tmp_path / "lead")

    pulled = dvc(lead, "exp", "pull", "origin")
    print(pulled.stdout)
    for name in runs:
        assert name in pulled.stdout, pulled.stdout

    shown = experiments(json.loads(dvc(lead, "exp", "show", "--json").stdout))
    assert sorted(shown) == sorted(runs)
    for name, expected in runs.items():
        data = shown[name]
        assert data["params"]["params.yaml"]["data"]["train"]["learning_rate"] == expected["learning_rate"]
        assert data["metrics"]["metrics/metrics.json"]["data"] == expected["metrics"], name
        assert data["metrics"]["metrics/train.json"]["data"] == expected["train"], name
        assert set(expected["metrics"]) >= {"test_accuracy", "test_loss"}
    assert len({run_["metrics"]["test_loss"] for run_ in runs.values()}) == len(runs), "each run has its own metrics"

    names = sorted(runs)
    page = dvc(lead, "plots", "diff", *names)
    assert (lead / "dvc_plots/index.html").is_file(), page.stdout
    plots = json.loads(dvc(lead, "plots", "diff", *names, "--json").stdout)["data"]
    accuracy = plots["Accuracy"][0]
    assert set(accuracy["revisions"]) == set(names), accuracy["revisions"]
    assert {point["rev"] for point in accuracy["content"]["data"]["values"]} == set(names)
    # The figures are DVC-cached outputs: each machine's own, from the DVC remote.
    images = plots["metrics/learning_curves.png"]
    assert sorted(rev for image in images for rev in image["revisions"]) == names
    assert all(Path(image["url"]).stat().st_size > 0 for image in images)

    chosen = names[0]
    assert not (lead / "models").exists()
    applied = dvc(lead, "exp", "apply", chosen)
    print(applied.stdout)
    assert stages_run(pulled.stdout + applied.stdout) == []
    assert (lead / "models/model.h5").read_bytes() == runs[chosen]["model"], "not the model that machine trained"
    assert read_json(lead / "metrics/metrics.json") == runs[chosen]["metrics"]
    assert not (lead / "logs").exists(), "the train stage ran here (it writes TensorBoard logs)"
    assert "Data and pipelines are up to date" in dvc(lead, "status").stdout


def test_a_registered_model_version_is_fetched_with_dvc_artifacts_get_without_cloning_or_training(team, tmp_path):
    git_remote, runs = team
    release = clone(git_remote, tmp_path / "release")
    dvc(release, "exp", "pull", "origin")
    # One version per experiment, committed as the team would adopt it, then tagged the GTO way.
    versions = dict(zip(sorted(runs), ("v1.0.0", "v1.1.0"), strict=True))
    for name, version in versions.items():
        dvc(release, "exp", "apply", name)
        commit_all(release, f"Adopt {name}")
        registered = run(["gto", "register", "mnist-dnn", "--version", version], release)
        print(registered.stdout)
        assert f"mnist-dnn@{version}" in registered.stdout, registered.stdout
    tracked = run(["git", "ls-files", "metrics", "models"], release).stdout.split()
    assert not [path for path in tracked if path.endswith((".png", ".h5"))], f"DVC outputs committed to Git: {tracked}"
    dvc(release, "push")  # the experiments' pushes already uploaded the models; this is the usual step
    run(["git", "push", "-q", "origin", f"HEAD:refs/heads/{BRANCH}", "--tags"], release)
    shown = run(["gto", "show", "mnist-dnn"], release).stdout
    print(shown)
    assert "v1.0.0" in shown and "v1.1.0" in shown, shown

    consumer = tmp_path / "serving"
    consumer.mkdir()  # not a Git or DVC repository: nothing cloned, nothing trained
    first, latest = sorted(runs)
    for version, name in (("v1.0.0", first), (None, latest)):  # no --rev: the highest version
        target = consumer / (version or "latest")
        args = ("--rev", version) if version else ()
        got = dvc(consumer, "artifacts", "get", str(git_remote), "mnist-dnn", *args, "-o", str(target))
        print(got.stdout)
        assert "Downloaded 1 file(s)" in got.stdout, got.stdout
        assert target.read_bytes() == runs[name]["model"], f"{version or 'latest'} is not {name}'s model"
    assert sorted(path.name for path in consumer.iterdir()) == ["latest", "v1.0.0"]
