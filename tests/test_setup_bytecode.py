"""tools/bytecode: the .pyc `make setup` writes in place of compiling all of site-packages.

In a throwaway venv (no packages: `uv venv`, a second) with one module of its own in site-packages:
the .pyc is the one py_compile writes, a second venv takes it from the cache and Python accepts it,
and the venv keeps writing bytecode where PYTHONDONTWRITEBYTECODE is set. Then, in the venv that
`make setup` made, the stages find bytecode for everything they import.
"""

import importlib.util
import marshal
import os
import platform
import py_compile
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UV = ROOT / ".tools" / "uv" / "bin" / "uv"
TOOL = ROOT / "tools" / "bytecode"
MODULE = "def answer():\n    return 42\n"


def _venv(path: Path) -> tuple[Path, Path]:
    """A venv at `path` with demo_pkg/mod.py in its site-packages: (its python, the module's file)."""
    if not UV.exists():
        pytest.skip("no .tools/uv: run `make setup`")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON_PREFERENCE": "only-system"}
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, path], check=True, env=env)
    python = path / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    module = Path(site) / "demo_pkg" / "mod.py"
    module.parent.mkdir()
    (module.parent / "__init__.py").write_text("")
    module.write_text(MODULE)
    return python, module


def _bytecode(python: Path, listing: Path, cache: Path) -> str:
    env = {**os.environ, "MNIST_CACHE_DIR": str(cache), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([python, TOOL, listing], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bytecode_from_the_cache_is_what_python_itself_accepts(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# a comment\ndemo_pkg/__init__.py\ndemo_pkg/mod.py\ndemo_pkg/missing.py\n")
    cache = tmp_path / "cache"

    first, module = _venv(tmp_path / "first")
    assert re.fullmatch(
        r"bytecode: 2 modules \(0 from \S+, 2 compiled\) in [0-9.]+ s\n", _bytecode(first, listing, cache)
    )
    written = Path(importlib.util.cache_from_source(str(module))).read_bytes()
    reference = Path(py_compile.compile(str(module), cfile=str(tmp_path / "reference.pyc"))).read_bytes()
    assert written[:16] == reference[:16]  # magic, flags, the source's mtime and size
    assert marshal.loads(written[16:]) == marshal.loads(reference[16:])

    second, module = _venv(tmp_path / "second")
    assert "(2 from " in _bytecode(second, listing, cache) and " 0 compiled" in _bytecode(second, listing, cache)
    # Python takes the .pyc (not "bytecode is stale"), with tracebacks naming this venv's file.
    probe = "import demo_pkg.mod as m, sys, traceback; print(m.__file__); print(sys.dont_write_bytecode)"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([second, "-v", "-c", probe], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"code object from '{importlib.util.cache_from_source(str(module))}'" in result.stderr
    assert "bytecode is stale" not in result.stderr
    # The .pth: this venv writes bytecode although PYTHONDONTWRITEBYTECODE is set.
    assert result.stdout.split("\n")[:2] == [str(module), "False"]


def test_the_stages_find_bytecode_for_everything_they_import():
    if not list(Path(sys.prefix).glob(".installed-*")):
        pytest.skip(f"{sys.prefix} was not made by `make setup`")
    # Bytecode writing off in the probe itself, so that it reports what is there, and writes nothing.
    probe = """
import importlib.util, os, pathlib, re, sys, sysconfig
sys.dont_write_bytecode = True
for module in re.findall(r"python -m ([\\w.]+)", pathlib.Path("dvc.yaml").read_text()):
    __import__(module)
import keras, jax.numpy, matplotlib.pyplot
site = sysconfig.get_paths()["purelib"] + "/"
for m in list(sys.modules.values()):
    source = getattr(m, "__file__", None) or ""
    if source.startswith(site) and source.endswith(".py"):
        pyc, stat = pathlib.Path(importlib.util.cache_from_source(source)), os.stat(source)
        header = pyc.read_bytes()[:16] if pyc.exists() else b""
        fresh = header[8:12] == (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
        print(("ok" if fresh else "missing"), source[len(site):])
"""
    env = {**os.environ, "KERAS_BACKEND": "jax", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    status = dict(reversed(line.split(" ", 1)) for line in result.stdout.splitlines())
    assert len(status) > 1000
    missing = sorted(name for name, state in status.items() if state == "missing")
    assert not missing, f"no valid .pyc for {len(missing)} modules the stages import, e.g. {missing[:5]}"
    if (sys.platform, platform.machine()) == ("linux", "x86_64"):  # where the list is recorded
        listed = set((ROOT / "tools" / "bytecode-modules.txt").read_text().split())
        unlisted = sorted(set(status) - listed)
        assert not unlisted, f"run `.venv/bin/python tools/bytecode --record`: not listed: {unlisted[:5]}"
