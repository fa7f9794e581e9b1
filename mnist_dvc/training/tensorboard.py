"""TensorBoard event files for per-epoch scalars, written without TensorFlow.

Keras's TensorBoard callback writes through `tf.summary`, which imports TensorFlow (slow, and
chatty) even on the JAX backend. TensorBoard's own package has the record writer and the protocol
buffers, so this writes the same layout Keras does (logs/train and logs/validation, tags
`epoch_loss`, `epoch_accuracy`, `epoch_learning_rate`) and `tensorboard --logdir logs` reads it.
"""

import os
import socket
import time
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter


class EventFile:
    """One run's event file (e.g. logs/train/events.out.tfevents...), appended to and flushed per epoch."""

    def __init__(self, directory: Path):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.v2"
        self.file = open(directory / name, "wb")  # noqa: SIM115 (open for the whole run, closed by close())
        self.records = RecordWriter(self.file)
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=float(v)) for tag, v in values.items()])
        self._write(Event(wall_time=time.time(), step=step, summary=summary))
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    def _write(self, event: Event) -> None:
        self.records.write(event.SerializeToString())


def epoch_scalars(logs: dict[str, float]) -> dict[str, dict[str, float]]:
    """Keras's epoch logs split as its TensorBoard callback splits them: {"train": {...}, "validation": {...}}."""
    runs: dict[str, dict[str, float]] = {"train": {}, "validation": {}}
    for name, value in logs.items():
        run = "validation" if name.startswith("val_") else "train"
        runs[run][f"epoch_{name.removeprefix('val_')}"] = value
    return runs
