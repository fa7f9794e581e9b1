"""Stopping a training run cleanly: on Ctrl-C, on SIGTERM, and when the DVC run that started it is gone.

A signal only sets a flag; the run stops between compiled calls, where plain Python runs (a
KeyboardInterrupt raised while JAX runs Python from inside its dispatch can be lost there).
`kill -9` of the `dvc` process gives DVC no chance to pass anything on, and the stage would go
on writing models/ with no lock held, so under DVC a thread watches the `dvc` process and stops
the run once it is gone. That process is the stage's parent, or its grandparent: DVC runs the
command with `$SHELL -c` (`/bin/sh` where SHELL is unset, as under CI runners and cron), and
dash, unlike bash, stays as the command's parent instead of replacing itself with it.
"""

import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

import keras

from mnist_dvc.core.errors import PipelineError

PARENT_POLL_S = 0.5
SHELLS = {"sh", "dash", "bash", "zsh", "ksh", "mksh", "fish"}


class Stopped(PipelineError):
    pass


class Stopper(keras.callbacks.Callback):
    """A callback that raises Stopped at the next batch or epoch end once a stop was asked for."""

    def __init__(self):
        super().__init__()
        self.reason: str | None = None

    @contextmanager
    def watching(self, watch_parent: bool):
        """SIGINT and SIGTERM ask for a stop; so does the parent's death, if `watch_parent`."""

        def on_signal(signum, frame):
            self.reason = f"{signal.Signals(signum).name} received"

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        done = threading.Event()
        if watch_parent:
            threading.Thread(target=self._watch_launcher, args=(done,), daemon=True).start()
        try:
            yield self
        finally:
            done.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _watch_launcher(self, done: threading.Event) -> None:
        pid, started = launcher()
        while not done.wait(PARENT_POLL_S):
            # Where there is no /proc (macOS), the parent's pid changes when it dies: the orphan is adopted.
            gone = process_info(pid)[2] != started if started else os.getppid() != pid
            if gone:
                self.reason = f"the process that started this stage (pid {pid}, `dvc`) is gone"
                return

    def check(self, *args, **kwargs) -> None:
        if self.reason:
            raise Stopped(
                f"training stopped: {self.reason}; the last whole epoch is saved in .train-state/ "
                "(train.resume: true continues it)"
            )

    on_train_batch_end = on_test_batch_end = on_epoch_end = check


def launcher() -> tuple[int, str | None]:
    """The process that started this one, past any shell it ran the command in: (pid, start time).

    The start time (None without /proc) tells that process from a later one given the same pid.
    """
    pid = os.getppid()
    name, parent, started = process_info(pid)
    while name in SHELLS and parent > 1:
        pid = parent
        name, parent, started = process_info(pid)
    return pid, started


def process_info(pid: int) -> tuple[str | None, int, str | None]:
    """(name, parent pid, start time) of a live process, from /proc; (None, 0, None) where it is gone or
    there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None, 0, None
    # The name is in parentheses and may hold spaces; the fields after it are state, ppid, ... starttime (22nd).
    name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
    return name, int(fields[1]), fields[19]
