"""dvc.yaml describes the code: each stage lists every module it imports, file by file, so `dvc repro`
reruns exactly what a change affects."""

import ast
from pathlib import Path

import yaml
from helpers import ROOT

STAGES = ("fetch", "preprocess", "train", "evaluate")
PACKAGES = ("stages", "mnist_dvc")  # the project's own code; package __init__ files hold no code a stage runs


def project_imports(module: Path) -> set[str]:
    """Every project module that `module` imports, directly or through another, at any depth in the code."""
    found, pending = {module}, [module]
    while pending:
        tree = ast.parse(pending.pop().read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:  # `from a.b import c`: a.b, or the module a.b.c
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            for name in names:
                path = ROOT / (name.replace(".", "/") + ".py")
                if name.split(".")[0] in PACKAGES and path.is_file() and path not in found:
                    found.add(path)
                    pending.append(path)
    return {str(path.relative_to(ROOT)) for path in found}


def test_each_stage_depends_on_exactly_the_modules_it_imports():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name in STAGES:
        listed = {dep for dep in stages[name]["deps"] if dep.split("/")[0] in PACKAGES}
        assert listed == project_imports(ROOT / "stages" / f"{name}.py"), name


def test_stages_holds_the_four_stages_and_nothing_else():
    assert sorted(path.name for path in (ROOT / "stages").glob("*.py")) == sorted(
        ["__init__.py", *(f"{name}.py" for name in STAGES)]
    )
