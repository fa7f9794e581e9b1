"""The errors a stage reports to its user, and the one place they are turned into an exit."""

import errno
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

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


class WriteError(PipelineError):
    """A write the file system refused: no space left, a read-only file system, no permission."""

    def __init__(self, message: str, cause: str = ""):
        super().__init__(message)
        self.cause = cause  # the refusal in words: for a warning that goes on without the file


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
READ_ONLY = (errno.EROFS,)
NOT_PERMITTED = (errno.EACCES, errno.EPERM)
WRITE_ERRNOS = NO_SPACE + READ_ONLY + NOT_PERMITTED
# Some libraries (h5py, pip) put the cause in their own text: matched where the errno is not set.
_CAUSES = {os.strerror(number): number for number in WRITE_ERRNOS}
_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\]")


def write_errno(exc: BaseException) -> int | None:
    """The errno of a write refused for space, a read-only file system or permission; None for any other error."""
    if not isinstance(exc, OSError):
        return None
    if exc.errno in WRITE_ERRNOS:
        return exc.errno
    if exc.errno is None:
        return text_errno(str(exc))
    return None


def text_errno(text: str) -> int | None:
    """The write errno a message names, as `[Errno 28]` or in words ("No space left on device"), if any."""
    for match in _ERRNO_TEXT.finditer(text):
        if int(match.group(1)) in WRITE_ERRNOS:
            return int(match.group(1))
    return next((number for words, number in _CAUSES.items() if words in text), None)


def write_cause(exc: BaseException, path) -> tuple[str, str] | None:
    """(the cause in words, the fix) of a write of `path` refused by the file system, else None."""
    number = write_errno(exc)
    if number is None:
        return None
    folder = f"{Path(path).parent}/" if path is not None else "its folder"
    code = f"[Errno {number}] {os.strerror(number)}"
    if number == errno.EDQUOT:
        return f"the disk quota on the device holding {folder} is used up ({code})", "free space there"
    if number in NO_SPACE:
        return f"no space left on the device holding {folder} ({code})", "free space there"
    if number in READ_ONLY:
        return f"{folder} is on a read-only file system ({code})", "make it writable"
    name = path if path is not None else "the file"
    return f"not permitted to write {name} ({code})", f"give your user write permission on {folder} and the file"


def write_error(exc: BaseException, path, what_to_do: str = "") -> "WriteError | None":
    """The WriteError for a write of `path` refused by the file system (see WRITE_ERRNOS), else None.

    It names the file, the cause in words and the fix; `what_to_do` adds another way out
    (e.g. ", or point MNIST_CACHE_DIR elsewhere").
    """
    found = write_cause(exc, path)
    if found is None:
        return None
    cause, fix = found
    name = path if path is not None else "a file"
    return WriteError(f"could not write {name}: {cause}; {fix}{what_to_do}, then run the stage again", cause)


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
        _fail(exc)
    except OSError as exc:  # a write refused outside the project's own writes (a library's file, say)
        error = write_error(exc, exc.filename)
        if error is None:
            raise
        _fail(error)


def _fail(exc: PipelineError) -> None:
    print(f"error: {exc}", file=sys.stderr)
    if "DVC_STAGE" in os.environ:
        print(f"note: {RESTORE_HINT}", file=sys.stderr)
    raise SystemExit(2) from None
