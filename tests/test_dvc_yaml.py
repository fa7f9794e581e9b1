"""dvc.yaml describes the code: each stage lists every module it imports, so `dvc repro` reruns
exactly what a change affects."""

import ast
from pathlib import Path

import yaml
from conftest import ROOT

STAGES = ("fetch", "preprocess", "train", "evaluate")


def project_imports(module: Path) -> set[str]:
    """Every stages/*.py that `module` imports, directly or through another, at any depth in the code."""
    found, pending = {module}, [module]
    while pending:
        tree = ast.parse(pending.pop().read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:  # `from stages.x import y`, `from stages import x`
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            for name in names:
                path = ROOT / (name.replace(".", "/") + ".py")
                if name.startswith("stages.") and path.is_file() and path not in found:
                    found.add(path)
                    pending.append(path)
    return {str(path.relative_to(ROOT)) for path in found}


def test_each_stage_depends_on_exactly_the_modules_it_imports():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name in STAGES:
        listed = {dep for dep in stages[name]["deps"] if dep.startswith("stages/")}
        assert listed == project_imports(ROOT / "stages" / f"{name}.py"), name
