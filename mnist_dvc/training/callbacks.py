"""The study's training callbacks from params: early stopping, LR reduction, checkpoints, history, TensorBoard.

Import this only after `mnist_dvc.runtime.process.start_process`: importing Keras fixes the backend.
"""

from pathlib import Path

import keras

from mnist_dvc.core.files import atomic_path
from mnist_dvc.core.params import TrainParams
from mnist_dvc.training.history import read_history, write_history
from mnist_dvc.training.resume import ResumeState
from mnist_dvc.training.tensorboard import EventFile, epoch_scalars


class PeriodicCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that looks only every `period` epochs, as Keras 2's `period=` did.

    Keras 3 dropped `period`; its `save_freq` counts batches, when val_loss is unknown.
    Keras writes a checkpoint straight under its name; here it goes through `atomic_path`, so a
    full disk or a kill never leaves half a checkpoint, and a refused write is one WriteError.
    """

    def __init__(self, *args, period: int, **kwargs):
        super().__init__(*args, save_freq="epoch", **kwargs)
        self.period = period

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.period == 0:
            super().on_epoch_end(epoch, logs)

    def _save_model(self, epoch, batch, logs):
        # Keras's own _save_model less its direct write: the same choice of file and of when to save.
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        with atomic_path(Path(filepath)) as tmp:
            if self.save_weights_only:
                self.model.save_weights(tmp, overwrite=True)
            else:
                self.model.save(tmp, overwrite=True)


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
        for path in self.paths:
            write_history(path, self.rows)


class EpochEvents(keras.callbacks.Callback):
    """TensorBoard scalars per epoch (loss, accuracy, learning rate; train and validation), as Keras's
    TensorBoard callback lays them out, written without TensorFlow (tensorboard.py)."""

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
