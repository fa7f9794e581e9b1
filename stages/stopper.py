"""Stopping a training run cleanly: on Ctrl-C, on SIGTERM, and when the DVC run that started it is gone.

A signal only sets a flag; the run stops between compiled calls, where plain Python runs (a
KeyboardInterrupt raised while JAX runs Python from inside its dispatch can be lost there).
`kill -9` of the `dvc` process gives DVC no chance to pass anything on, and the stage would go
on writing models/ with no lock held, so under DVC a thread watches for the stage's parent to
change (the orphan is handed to init or a subreaper). Every file is written atomically, so a
stop leaves nothing half-written; the resume state holds the last whole epoch.
"""

import os
import signal
import threading
from contextlib import contextmanager

import keras

from stages.errors import PipelineError

PARENT_POLL_S = 0.5


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
            parent = os.getppid()
            threading.Thread(target=self._watch_parent, args=(parent, done), daemon=True).start()
        try:
            yield self
        finally:
            done.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _watch_parent(self, parent: int, done: threading.Event) -> None:
        while not done.wait(PARENT_POLL_S):
            if os.getppid() != parent:
                self.reason = f"the process that started this stage (pid {parent}, `dvc`) is gone"
                return

    def check(self, *args, **kwargs) -> None:
        if self.reason:
            raise Stopped(f"training stopped: {self.reason}; the last whole epoch is saved in .train-state/ "
                          "(train.resume: true continues it)")  # fmt: skip

    on_train_batch_end = on_test_batch_end = on_epoch_end = check
