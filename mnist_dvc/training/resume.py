"""The resume state of a training run (.train-state/<hash of the train params>/state.npz): saved, found, restored.

One folder per configuration; a killed run of the same params is kept (in `kept/`), never discarded
unannounced, until a run of these params finishes.
"""

import hashlib
import json
import shutil
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np

from mnist_dvc.core.errors import DataError, WriteError
from mnist_dvc.core.files import atomic_path, write_text

STATE_ROOT = Path(".train-state")  # not a DVC output, so DVC never deletes it
KEPT = "kept"
STATE_FILE = "state.npz"  # `epoch` (epochs completed) and the variables in order, arr_0, arr_1, ...


def state_dir(params, root: Path = STATE_ROOT) -> Path:
    """The folder for runs of these train params (`resume` aside)."""
    settings = json.dumps(params.model_dump(exclude={"resume"}), sort_keys=True)
    return Path(root) / hashlib.sha256(settings.encode()).hexdigest()[:12]


def write_state(folder: Path, epoch: int, values: list[np.ndarray]) -> None:
    """Save `epoch` (epochs completed) and the variables' values, replacing the previous save at once."""
    with atomic_path(Path(folder) / STATE_FILE) as tmp:
        np.savez(tmp, *values, epoch=np.int64(epoch))


def read_state(folder: Path) -> tuple[int, list[np.ndarray]]:
    """(epochs completed, the variables' values) of a saved state; a damaged one is a DataError."""
    path = Path(folder) / STATE_FILE
    try:
        with np.load(path, allow_pickle=False) as saved:
            return int(saved["epoch"]), [saved[f"arr_{i}"] for i in range(len(saved.files) - 1)]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path} cannot be resumed: it is not a readable saved state ({exc}); to start over "
            "instead, set train.resume: false (this file is then discarded)"
        ) from None


def epochs_saved(folder: Path) -> int:
    """Whole epochs a saved state holds (0 if none, or unreadable: then it cannot be resumed anyway)."""
    try:
        return read_state(folder)[0]
    except DataError:
        return 0


def prepare_state(params, root: Path = STATE_ROOT) -> tuple[Path, bool]:
    """(the folder this run saves into, whether it resumes from it), keeping any killed run of these params."""
    folder, kept = state_dir(params, root), state_dir(params, root) / KEPT
    if params.resume:
        if epochs_saved(kept) > epochs_saved(folder):
            _replace(folder, kept)  # the kept run got further: continue that one
        resuming = epochs_saved(folder) > 0
        if not resuming and (folder / STATE_FILE).exists():
            read_state(folder)  # unreadable: say so (a DataError) rather than start over unannounced
        if not resuming:
            print(
                f"train: train.resume is true, but {root}/ holds no killed run of these params; starting from epoch 1",
                file=sys.stderr,
            )
        _write_settings(folder, params)
        return folder, resuming
    if epochs_saved(folder) > epochs_saved(kept):
        shutil.rmtree(kept, ignore_errors=True)
        _move_files(folder, kept)
    _clear_files(folder)
    if epochs_saved(kept):
        print(
            f"train: kept {kept}/, a killed run of these params ({epochs_saved(kept)} of {params.epochs} epochs); "
            "this run starts over (train.resume is false). To continue that one instead: "
            "dvc exp run -S train.resume=true",
            file=sys.stderr,
        )
    _write_settings(folder, params)
    return folder, False


def _write_settings(folder: Path, params) -> None:
    write_text(folder / "params.json", json.dumps(params.model_dump(exclude={"resume"}), indent=2, sort_keys=True))


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name != KEPT] if folder.is_dir() else []


def _clear_files(folder: Path) -> None:
    for path in _files(folder):
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _move_files(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for path in _files(source):
        path.rename(target / path.name)


def _replace(folder: Path, kept: Path) -> None:
    _clear_files(folder)
    _move_files(kept, folder)
    shutil.rmtree(kept)


class ResumeState(keras.callbacks.Callback):
    """After every epoch, the epochs completed and every variable of the model (its dropout seeds too) and
    of the optimizer (the learning rate too), in one file replaced atomically; restored before the first
    epoch when `folder` holds one; deleted, folder and all, when training ends.

    Unlike Keras's BackupAndRestore (an HDF5 save and a backup copy, both on the main thread, which a GPU
    waits on), the values are copied to the host at the epoch's end and written by a thread while the
    next epoch trains; a kill before that write ends resumes from the epoch before.
    """

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = Path(folder)
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="resume-state")
        self.saving = None  # the last epoch's write
        self.restored_epoch = 0  # the epochs a restored state had completed

    def variables(self) -> list:
        """What is saved and restored, in order: the model's variables, then the optimizer's."""
        model = self.model
        return [*model.trainable_variables, *model.non_trainable_variables, *model.optimizer.variables]

    def on_train_begin(self, logs=None):
        if not (self.folder / STATE_FILE).is_file():
            return
        if not self.model.optimizer.built:  # Keras's own fit builds it at the first step
            self.model.optimizer.build(self.model.trainable_variables)
        epoch, values = read_state(self.folder)
        variables = self.variables()
        if [tuple(v.shape) for v in variables] != [value.shape for value in values]:
            raise DataError(
                f"{self.folder / STATE_FILE} holds {len(values)} arrays that do not fit this model's "
                f"{len(variables)} variables (saved by other code?): to start over instead, set "
                "train.resume: false"
            )
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
        self.restored_epoch = epoch
        self.model._initial_epoch = epoch  # where fit (and jax_loop.py) starts counting

    def on_epoch_end(self, epoch, logs=None):
        # Copied now: the next epoch changes the variables, in place or (Keras's fit on JAX) by donating
        # their arrays, which deletes them.
        values = [keras.ops.convert_to_numpy(variable) for variable in self.variables()]
        self.wait()
        self.saving = self.writer.submit(write_state, self.folder, epoch + 1, values)

    def on_train_end(self, logs=None):
        self.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def wait(self) -> None:
        """Until the last epoch's save is written; a save that failed is a WriteError (the file system's
        refusal) or a DataError."""
        try:
            if self.saving is not None:
                self.saving.result()
        except WriteError as exc:  # a full disk, say (atomic_path's words): the save before it is still whole
            raise WriteError(
                f"the resume state could not be saved: {exc} (train.resume: true continues from the last saved epoch)"
            ) from None
        except OSError as exc:
            raise DataError(
                f"the resume state could not be saved in {self.folder}/ ({exc}): make room there "
                "and run the stage again (train.resume: true continues from the last saved epoch)"
            ) from None
