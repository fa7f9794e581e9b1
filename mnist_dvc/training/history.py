"""metrics/history.csv: the per-epoch curves, one row per epoch. Written and read only here."""

import csv
import io
from pathlib import Path

from mnist_dvc.core.errors import damaged, missing
from mnist_dvc.core.files import write_text

HISTORY_CSV = Path("metrics/history.csv")
COLUMNS = ("epoch", "accuracy", "loss", "val_accuracy", "val_loss", "learning_rate")


def history_text(rows: list[dict]) -> str:
    """The CSV for `rows` (dicts keyed by COLUMNS; other keys are left out)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_history(path: Path, rows: list[dict]) -> None:
    """Replace the history CSV at `path` with `rows`, at once (a killed run leaves a whole file)."""
    write_text(path, history_text(rows))


def read_history(path: Path, missing_ok: bool = False) -> list[dict]:
    """Every row of a history CSV, epoch as int and the rest as floats; [] if absent and `missing_ok`."""
    path = Path(path)
    if not path.is_file():
        if missing_ok:
            return []
        raise missing(path, "train")
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise ValueError(f"its header is {reader.fieldnames}, expected {list(COLUMNS)}")
            rows = [{"epoch": int(row["epoch"]), **{k: float(row[k]) for k in COLUMNS[1:]}} for row in reader]
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        raise damaged(path, f"is damaged ({exc})", "train", restore=f"git checkout -- {path}") from None
    if not rows or [row["epoch"] for row in rows] != list(range(1, len(rows) + 1)):
        raise damaged(path, "is damaged (its epochs are not 1, 2, 3, ...)", "train", restore=f"git checkout -- {path}")
    return rows
