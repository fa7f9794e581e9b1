"""TensorBoard event files for per-epoch scalars, written without TensorFlow.

Keras's TensorBoard callback writes through `tf.summary`, which imports TensorFlow (slow, and
chatty) even on the JAX backend. TensorBoard's own package has the record writer and the protocol
buffers, so this writes the same layout Keras does (logs/train and logs/validation, tags
`epoch_loss`, `epoch_accuracy`, `epoch_learning_rate`) and `tensorboard --logdir logs` reads it.
"""

import contextlib
import os
import socket
import time
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter

from mnist_dvc.core.files import reported_as


class EventFile:
    """One run's event file (e.g. logs/train/events.out.tfevents...), appended to and flushed per epoch.

    Appended, not replaced (TensorBoard reads a file cut short up to its last whole record); a write
    the file system refuses is a WriteError naming the file.
    """

    def __init__(self, directory: Path):
        directory = Path(directory)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.v2"
        self.path = directory / name
        with reported_as(self.path):
            directory.mkdir(parents=True, exist_ok=True)
            self.file = open(self.path, "wb")  # noqa: SIM115 (open for the whole run, closed by close())
        self.records = RecordWriter(self.file)
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=float(v)) for tag, v in values.items()])
        self._write(Event(wall_time=time.time(), step=step, summary=summary))

    def close(self) -> None:
        self.file.close()

    def _write(self, event: Event) -> None:
        with reported_as(self.path):
            try:
                self.records.write(event.SerializeToString())
                self.file.flush()
            except OSError:
                # Closed at once, so what the buffer still holds is not written again (and refused
                # again) when the file object is collected at exit.
                with contextlib.suppress(OSError):
                    self.file.close()
                raise


def epoch_scalars(logs: dict[str, float]) -> dict[str, dict[str, float]]:
    """Keras's epoch logs split as its TensorBoard callback splits them: {"train": {...}, "validation": {...}}."""
    runs: dict[str, dict[str, float]] = {"train": {}, "validation": {}}
    for name, value in logs.items():
        run = "validation" if name.startswith("val_") else "train"
        runs[run][f"epoch_{name.removeprefix('val_')}"] = value
    return runs
