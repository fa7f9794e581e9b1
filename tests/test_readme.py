"""The README's experiment commands, run in the README's order on a tiny pipeline: each gives what
it says, whatever ran before it (an experiment run in the workspace would leave its params there,
and the next one would silently train with them)."""

import json
import re
import shlex

import pytest
from helpers import ROOT, TINY, commit_all, copy_project, dvc, write_params

pytestmark = pytest.mark.slow


def readme_experiment_commands() -> list[str]:
    """Every `dvc exp run` / `dvc plots diff` / `dvc exp show` command of the README's sections for
    one machine (up to "Experiments and scale"), in order, comments stripped."""
    text = (ROOT / "README.md").read_text().split("## Experiments and scale")[0]
    commands = []
    for line in text.splitlines():
        command = line.strip().removeprefix("$ ").split("#")[0].strip()
        if re.match(r"dvc (exp run|exp show|plots diff)\b", command) and "<" not in command:
            commands.append(command)
    return commands


def test_the_readme_shows_experiments_that_leave_the_workspace_as_it_was():
    commands = readme_experiment_commands()
    assert len([c for c in commands if c.startswith("dvc exp run")]) >= 3, commands
    assert all("--temp" in c or "--queue" in c for c in commands if c.startswith("dvc exp run")), commands


def test_the_readme_experiment_commands_in_order_each_give_what_they_say(tmp_path):
    project = copy_project(tmp_path)
    write_params(project, TINY)
    commit_all(project, "pipeline")
    dvc(project, "repro")
    commit_all(project, "the baseline run")
    committed = (project / "params.yaml").read_text()

    expected = {}
    for command in readme_experiment_commands():
        args = shlex.split(command)[1:]
        dvc(project, *args)
        if args[:2] == ["exp", "run"]:
            name = args[args.index("-n") + 1]
            expected[name] = dict(arg.split("=", 1) for arg in args[args.index("-S") + 1 :: 2])
        assert (project / "params.yaml").read_text() == committed, f"`{command}` changed the workspace's params"

    show = json.loads(dvc(project, "exp", "show", "--json").stdout)
    runs = {
        exp["name"]: exp["revs"][0]["data"]
        for rev in show
        if rev["rev"] != "workspace"
        for exp in rev.get("experiments") or []
    }
    for name, overrides in expected.items():
        params = runs[name]["params"]["params.yaml"]["data"]
        for key, value in overrides.items():
            section, leaf = key.split(".")
            assert params[section][leaf] == pytest.approx(float(value)), (name, key)
        trained = runs[name]["metrics"]["metrics/train.json"]["data"]["final"]["learning_rate"]
        assert trained == pytest.approx(float(overrides["train.learning_rate"])), f"{name} trained with its own rate"
