"""The study's network and its training callbacks, built from params (models/ is saved by model_files.py).

Import this only after `stages.backend.use_backend`: importing Keras fixes the backend.
"""

import hashlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np

from stages.errors import DataError
from stages.events import EventFile, epoch_scalars
from stages.files import atomic_path
from stages.history import history_text, read_history
from stages.params import TrainParams
from stages.state import STATE_FILE, read_state, write_state


def build_model(input_dim: int, num_classes: int, params: TrainParams) -> keras.Model:
    """784 -> [Dense + Dropout] per hidden layer -> Dense(num_classes), as the study's Sequential."""
    layers = [keras.Input(shape=(input_dim,))]
    for units, rate in zip(params.hidden_units, params.dropout, strict=True):
        layers += [keras.layers.Dense(units, activation=params.activation), keras.layers.Dropout(rate)]
    layers.append(keras.layers.Dense(num_classes, activation=params.output_activation))
    return keras.Sequential(layers, name="mnist_dnn")


def compile_model(model: keras.Model, params: TrainParams, steps_per_execution: int) -> None:
    optimizer = keras.optimizers.get(
        {"class_name": params.optimizer, "config": {"learning_rate": params.learning_rate}}
    )
    model.compile(optimizer=optimizer, loss=params.loss, metrics=["accuracy"], steps_per_execution=steps_per_execution)


def summary_text(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    return "\n".join(lines) + "\n"


class PeriodicCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that looks only every `period` epochs, as Keras 2's `period=` did.

    Keras 3 dropped `period`; its `save_freq` counts batches, when val_loss is unknown.
    """

    def __init__(self, *args, period: int, **kwargs):
        super().__init__(*args, save_freq="epoch", **kwargs)
        self.period = period

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.period == 0:
            super().on_epoch_end(epoch, logs)


class HistoryCSV(keras.callbacks.Callback):
    """Per-epoch metrics and learning rate as one CSV for `dvc plots`, epochs counted from 1.

    Rewritten atomically each epoch (it is tiny), so a killed run leaves a whole file. A copy
    goes beside the resume state: DVC deletes metrics/ before rerunning the stage, and a
    resumed run must still report the epochs the killed one finished.
    """

    def __init__(self, path: Path, backup: Path):
        super().__init__()
        self.paths = (Path(path), Path(backup))
        self.rows: list[dict] = []

    def on_epoch_end(self, epoch, logs=None):
        if epoch > 0 and not self.rows:  # resumed at `epoch`: keep the rows before it
            self.rows = [row for row in read_history(self.paths[1], missing_ok=True) if row["epoch"] <= epoch]
        self.rows.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})
        text = history_text(self.rows)
        for path in self.paths:
            with atomic_path(path) as tmp:
                tmp.write_text(text)


class EpochEvents(keras.callbacks.Callback):
    """TensorBoard scalars per epoch (loss, accuracy, learning rate; train and validation), as Keras's
    TensorBoard callback lays them out, written without TensorFlow (stages/events.py)."""

    def __init__(self, log_dir: Path):
        super().__init__()
        self.log_dir = Path(log_dir)
        self.files: dict[str, EventFile] = {}

    def on_epoch_end(self, epoch, logs=None):
        for run, values in epoch_scalars(logs or {}).items():
            if run not in self.files:
                self.files[run] = EventFile(self.log_dir / run)
            self.files[run].scalars(epoch, values)

    def on_train_end(self, logs=None):
        for events in self.files.values():
            events.close()


class ResumeState(keras.callbacks.Callback):
    """The resume state (stages/state.py): after every epoch, the epochs completed and every variable of
    the model (its dropout seeds too) and of the optimizer (the learning rate too), in one file replaced
    atomically; restored before the first epoch when `folder` holds one; deleted, folder and all, when
    training ends.

    Keras's BackupAndRestore does this with an HDF5 save and a copy of the save before it (for a kill
    mid-save): about 25 ms an epoch here, more than all the other host work between epochs, which a
    GPU waits on. Here the values are copied to the host at the epoch's end and written to disk by a
    thread while the next epoch trains; a kill before that write ends resumes from the epoch before.
    """

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = Path(folder)
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="resume-state")
        self.saving = None  # the last epoch's write

    def _variables(self) -> list:
        model = self.model
        return [*model.trainable_variables, *model.non_trainable_variables, *model.optimizer.variables]

    def on_train_begin(self, logs=None):
        if not (self.folder / STATE_FILE).is_file():
            return
        if not self.model.optimizer.built:  # Keras's own fit builds it at the first step
            self.model.optimizer.build(self.model.trainable_variables)
        epoch, values = read_state(self.folder)
        variables = self._variables()
        if [tuple(v.shape) for v in variables] != [value.shape for value in values]:
            raise DataError(f"{self.folder / STATE_FILE} holds {len(values)} arrays that do not fit this model's "
                            f"{len(variables)} variables (saved by other code?): to start over instead, set "
                            "train.resume: false")  # fmt: skip
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
        self.model._initial_epoch = epoch  # where fit (and stages/loop.py) starts counting

    def on_epoch_end(self, epoch, logs=None):
        # Copied now: the next epoch changes the variables, in place or (Keras's fit on JAX) by donating
        # their arrays, which deletes them.
        values = [keras.ops.convert_to_numpy(variable) for variable in self._variables()]
        self._wait()
        self.saving = self.writer.submit(write_state, self.folder, epoch + 1, values)

    def on_train_end(self, logs=None):
        self._wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _wait(self) -> None:
        try:
            if self.saving is not None:
                self.saving.result()
        except OSError as exc:  # a full disk, say: the save before it is still whole
            raise DataError(f"the resume state could not be saved in {self.folder}/ ({exc}): make room there "
                            "and run the stage again (train.resume: true continues from the last saved epoch)"
                            ) from None  # fmt: skip


def make_callbacks(
    params: TrainParams, history_csv: Path, checkpoint_dir: Path, log_dir: Path, state_dir: Path
) -> list:
    """The study's callbacks. In a multi-process job every process runs them all, on the same global
    metrics (saving takes part in collectives); all but process 0 write into a scratch folder."""
    monitor = params.checkpoint.monitor
    callbacks = [
        keras.callbacks.EarlyStopping(monitor=params.early_stopping.monitor, patience=params.early_stopping.patience),
        # Before HistoryCSV: it adds the epoch's learning rate to the logs.
        keras.callbacks.ReduceLROnPlateau(
            monitor=params.reduce_lr.monitor, factor=params.reduce_lr.factor, patience=params.reduce_lr.patience
        ),
    ]
    callbacks += [
        PeriodicCheckpoint(
            # The study's name pattern, e.g. val_loss0.081.weights.h5 (Keras 3 wants .weights.h5).
            str(checkpoint_dir / f"{monitor}{{{monitor}:.3f}}.weights.h5"),
            monitor=monitor,
            save_best_only=True,
            save_weights_only=True,
            period=params.checkpoint.every_epochs,
        ),
        HistoryCSV(history_csv, backup=state_dir / "history.csv"),
        # After HistoryCSV: each epoch it saves after the history is written.
        ResumeState(state_dir),
    ]
    if params.tensorboard:
        callbacks.append(EpochEvents(log_dir))
    return callbacks


def weights_checksum(model: keras.Model) -> str:
    """A short hash of the weights' bytes: every process of a job in sync logs the same one."""
    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable.value)).tobytes())
    return digest.hexdigest()[:16]
