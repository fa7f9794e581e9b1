"""The README and docs/ stay true: the experiment commands of the README and docs/experiments.md run in
order on a tiny pipeline and give what they say (an experiment run in the workspace would leave its
params there, and the next one would silently train with them); the Python snippet of
docs/from-the-article.md runs; every relative link resolves; the README stays short and starts with
its two commands; no page points outside the repository."""

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
from helpers import ROOT, TINY, commit_all, copy_project, dvc, run, write_params

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The sections whose `dvc exp run` / `dvc exp show` / `dvc plots diff` commands run here, in this order.
EXPERIMENT_SECTIONS = [("README.md", "## Change and compare"), ("docs/experiments.md", "## One change at a time")]
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def section(page: str, heading: str) -> str:
    """The text of `heading` up to the next heading of the same level."""
    text = (ROOT / page).read_text()
    assert heading in text, f"{page} has no {heading!r}"
    body = text.split(heading + "\n", 1)[1]
    level = heading.split(" ")[0]
    return re.split(rf"^{level} ", body, flags=re.MULTILINE)[0]


def commands(text: str) -> list[str]:
    """The lines of the shell blocks of `text`, `$ ` prompts and comments stripped."""
    lines = []
    for language, block in FENCE.findall(text):
        if language in ("sh", "bash", "console", "shell"):
            for line in block.splitlines():
                command = line.strip().removeprefix("$ ").split("#")[0].strip()
                if command:
                    lines.append(command)
    return lines


def experiment_commands() -> list[str]:
    found = []
    for page, heading in EXPERIMENT_SECTIONS:
        found += [c for c in commands(section(page, heading)) if re.match(r"dvc (exp run|exp show|plots diff)\b", c)]
    return found


def without_code(text: str) -> str:
    """Markdown without fenced blocks and inline code, where a link is not a link."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    found, seen = set(), {}
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", page.read_text()), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def test_every_relative_link_resolves_to_a_file_and_heading():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", without_code(page.read_text())):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_readme_is_short_and_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 210
    first = FENCE.search(readme)
    assert first and commands(first.group(0)) == ["make repro", "make test"], first and first.group(0)


def test_every_docs_page_opens_with_a_sentence_on_what_it_covers():
    for page in PAGES[1:]:
        title, blank, opening = page.read_text().split("\n", 3)[:3]
        assert title.startswith("# ") and not blank and re.match(r"[A-Z`]", opening), page.name


def test_no_page_points_outside_the_repository():
    for page in PAGES:
        assert "../shared" not in page.read_text() and "shared/docs" not in page.read_text(), page.name


def test_the_documented_experiments_leave_the_workspace_as_it_was():
    found = experiment_commands()
    assert len([c for c in found if c.startswith("dvc exp run")]) >= 3, found
    assert all("--temp" in c for c in found if c.startswith("dvc exp run")), found


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """The tiny pipeline, run once and committed, as after `make repro`."""
    project = copy_project(tmp_path_factory.mktemp("docs"))
    write_params(project, TINY)
    commit_all(project, "pipeline")
    dvc(project, "repro")
    commit_all(project, "the baseline run")
    return project


@pytest.mark.slow
def test_the_article_page_predicts_with_the_trained_model(baseline):
    snippet = FENCE.search(section("docs/from-the-article.md", "## What Keras 3 renamed")).group(2)
    printed = run([sys.executable, "-c", snippet], baseline).stdout
    accuracy = float(re.fullmatch(r"test accuracy (\S+)\n", printed).group(1))
    metrics = json.loads((baseline / "metrics/metrics.json").read_text())
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-4)


@pytest.mark.slow
def test_the_documented_experiment_commands_in_order_each_give_what_they_say(baseline):
    project = baseline
    committed = (project / "params.yaml").read_text()
    expected = {}
    for command in experiment_commands():
        args = shlex.split(command)[1:]
        dvc(project, *args)
        if args[:2] == ["exp", "run"]:
            name = args[args.index("-n") + 1]
            expected[name] = dict(arg.split("=", 1) for arg in args[args.index("-S") + 1 :: 2])
        if args[:2] == ["plots", "diff"]:
            assert (project / "dvc_plots/index.html").is_file(), f"`{command}` wrote no page"
        assert (project / "params.yaml").read_text() == committed, f"`{command}` changed the workspace's params"

    show = json.loads(dvc(project, "exp", "show", "--json").stdout)
    runs = {
        exp["name"]: exp["revs"][0]["data"]
        for rev in show
        if rev["rev"] != "workspace"
        for exp in rev.get("experiments") or []
    }
    assert set(expected) <= set(runs), (expected, runs.keys())
    for name, overrides in expected.items():
        params = runs[name]["params"]["params.yaml"]["data"]
        for key, value in overrides.items():
            section_name, leaf = key.split(".")
            assert params[section_name][leaf] == pytest.approx(float(value)), (name, key)
        trained = runs[name]["metrics"]["metrics/train.json"]["data"]["final"]["learning_rate"]
        assert trained == pytest.approx(float(overrides["train.learning_rate"])), f"{name} trained with its own rate"
