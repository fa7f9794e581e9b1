"""The resume state of a killed training run (.train-state/), kept until a run of the same params finishes.

Keras's BackupAndRestore saves weights, optimizer state and epoch after every epoch into one
folder per configuration, `.train-state/<hash of the train params>/`, and deletes it when the
run finishes. With `train.resume: true` a killed run continues from there. With `resume: false`
a new run starts over, but a killed run of the same params is never discarded unannounced: it is
moved to `kept/` inside that folder (a run of other params has a folder of its own), the stage
says so with the command that resumes it, and it goes only when a run of these params finishes.
"""

import hashlib
import json
import shutil
import sys
from pathlib import Path

STATE_ROOT = Path(".train-state")  # not a DVC output, so DVC never deletes it
KEPT = "kept"
METADATA = "training_metadata.json"  # BackupAndRestore's record of the last saved epoch


def state_dir(params, root: Path = STATE_ROOT) -> Path:
    """The folder for runs of these train params (`resume` aside)."""
    settings = json.dumps(params.model_dump(exclude={"resume"}), sort_keys=True)
    return Path(root) / hashlib.sha256(settings.encode()).hexdigest()[:12]


def epochs_saved(folder: Path) -> int:
    """Whole epochs a saved state holds (0 if none, or unreadable: then it cannot be resumed anyway)."""
    for name in (METADATA, f"{METADATA}.bkp"):  # .bkp: the save before, if the last was cut short
        try:
            return int(json.loads((Path(folder) / name).read_text())["epoch"])  # epochs completed
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return 0


def prepare_state(params, root: Path = STATE_ROOT) -> tuple[Path, bool]:
    """(the folder this run saves into, whether it resumes from it), keeping any killed run of these params."""
    folder, kept = state_dir(params, root), state_dir(params, root) / KEPT
    if params.resume:
        if epochs_saved(kept) > epochs_saved(folder):
            _replace(folder, kept)  # the kept run got further: continue that one
        resuming = epochs_saved(folder) > 0
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
