"""The errors a stage reports to its user, and the one place they are turned into an exit."""

import os
import sys
from collections.abc import Callable

# Under `dvc repro` DVC deletes a stage's outputs before its command runs; they stay in
# DVC's cache, and the user should know how to get them back.
RESTORE_HINT = (
    "DVC removed this stage's previous outputs before running it. Nothing is lost: after fixing the "
    "problem, `git checkout -- metrics && dvc checkout` restores them (metrics live in Git, the rest "
    "in DVC's cache), or `dvc repro` rebuilds them"
)


class PipelineError(Exception):
    """A problem the user can fix: the message says what and how."""


class ParamsError(PipelineError):
    pass


class DataError(PipelineError):
    pass


class FetchError(PipelineError):
    pass


class ModelError(PipelineError):
    pass


def missing(path, stage: str) -> "DataError":
    """The error for an input that is not there: the stage that writes it."""
    return DataError(f"{path} is missing: run the {stage} stage (`dvc repro`)")


def damaged(path, problem: str, stage: str, restore: str | None = None) -> "DataError":
    """The error for an input that exists but is wrong: what is wrong, and the two ways back.

    `restore` is the command that brings back the committed copy (by default DVC's checkout of
    the file); rebuilding reruns the stage that writes it.
    """
    restore = restore or f"dvc checkout -f {path}"
    return DataError(f"{path} {problem}: restore it with `{restore}` or rebuild it with `dvc repro -f -s {stage}`")


def unreadable(exc: Exception, kind: str) -> str:
    """What numpy's refusal of an .npy/.npz file says, in this project's words (never its pickle advice)."""
    if isinstance(exc, ValueError) and ("pickle" in str(exc) or "Object arrays" in str(exc)):
        return "holds pickled Python objects, which are never loaded"
    return f"is not a readable {kind} file ({exc})"


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main; a PipelineError becomes one clear line and exit code 2, not a traceback."""
    try:
        main()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if "DVC_STAGE" in os.environ:
            print(f"note: {RESTORE_HINT}", file=sys.stderr)
        raise SystemExit(2) from None
