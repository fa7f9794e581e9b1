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


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main; a PipelineError becomes one clear line and exit code 2, not a traceback."""
    try:
        main()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if "DVC_STAGE" in os.environ:
            print(f"note: {RESTORE_HINT}", file=sys.stderr)
        raise SystemExit(2) from None
