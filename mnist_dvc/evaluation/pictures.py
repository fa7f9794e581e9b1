"""The pictures process: evaluate's figures are drawn by a second process while the first predicts.

So a two-core machine works on both at once, and only that process imports matplotlib. On Linux it
is forked (cheap, nothing to pickle but the arrays) before the backend starts threads; on macOS,
where forking a process that has loaded system frameworks is unsafe, it is spawned, as Python does
there by default.
"""

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mnist_dvc.runtime.backend import unblock_module


def pictures_process(start_method: str | None = None) -> ProcessPoolExecutor:
    """One worker for `draw`; it starts at the first submit, so submit before importing Keras."""
    context = multiprocessing.get_context(start_method or ("spawn" if sys.platform == "darwin" else "fork"))
    # A forked worker inherits start_process's block on matplotlib: it is the one process that draws.
    return ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=unblock_module, initargs=("matplotlib",))


def draw(figure: str, path: Path, *args) -> None:
    """Save `mnist_dvc.evaluation.figures.<figure>(*args)` to `path`; runs in the pictures process."""
    from mnist_dvc.evaluation import figures

    figures.save_figure(getattr(figures, figure)(*args), path)
