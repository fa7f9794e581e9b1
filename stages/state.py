"""The resume state of a killed training run (.train-state/), kept until a run of the same params finishes.

After every epoch the train stage saves the epoch and the model's and optimizer's variables
(stages/model.py's ResumeState) into one file, `state.npz`, in one folder per configuration,
`.train-state/<hash of the train params>/`, and deletes the folder when the run finishes. The
file is replaced atomically, so a kill mid-save leaves the save before it whole. With
`train.resume: true` a killed run continues from there. With `resume: false` a new run starts
over, but a killed run of the same params is never discarded unannounced: it is moved to `kept/`
inside that folder (a run of other params has a folder of its own), the stage says so with the
command that resumes it, and it goes only when a run of these params finishes.
"""

import hashlib
import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np

from stages.errors import DataError
from stages.files import atomic_path

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
        raise DataError(f"{path} cannot be resumed: it is not a readable saved state ({exc}); to start over "
                        "instead, set train.resume: false (this file is then discarded)") from None  # fmt: skip


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
            print(f"train: train.resume is true, but {root}/ holds no killed run of these params; starting from "
                  "epoch 1", file=sys.stderr)  # fmt: skip
        _write_settings(folder, params)
        return folder, resuming
    if epochs_saved(folder) > epochs_saved(kept):
        shutil.rmtree(kept, ignore_errors=True)
        _move_files(folder, kept)
    _clear_files(folder)
    if epochs_saved(kept):
        print(f"train: kept {kept}/, a killed run of these params ({epochs_saved(kept)} of {params.epochs} epochs); "
              "this run starts over (train.resume is false). To continue that one instead: "
              "dvc exp run -S train.resume=true", file=sys.stderr)  # fmt: skip
    _write_settings(folder, params)
    return folder, False


def _write_settings(folder: Path, params) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.json").write_text(json.dumps(params.model_dump(exclude={"resume"}), indent=2, sort_keys=True))


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
