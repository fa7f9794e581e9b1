"""The four DVC stages, `python -m stages.<name>`: fetch -> preprocess -> train -> evaluate.

Each is a short script over the library in mnist_dvc/. DVC runs a stage with whichever `python`
comes first on PATH, so before anything else is imported this checks that it is the project's
environment, in one line and exit code 2 if not. Written for any Python 3, so that an old one
gets the line too.
"""

import importlib.util
import sys

# What every stage imports, by its import name; the venv made by `make setup` has them all.
_NEEDED = ("numpy", "yaml", "pydantic", "keras", "jax", "h5py")
_SUPPORTED = (3, 11)


def _check_environment():
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if sys.version_info >= _SUPPORTED and not missing:
        return
    version = ".".join(map(str, sys.version_info[:3]))
    problem = f"it lacks {', '.join(missing)}" if missing else "the project needs Python 3.11 to 3.13"
    sys.stderr.write(
        f"error: this stage runs under {sys.executable} (Python {version}), which is not the project's "
        f"environment: {problem}. DVC runs each stage with the first `python` on PATH: activate the venv "
        "first (`source .venv/bin/activate`), or run the pipeline with `make repro`\n"
    )
    raise SystemExit(2)


_check_environment()
