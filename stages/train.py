"""Stage 3, train: data/prepared/train.npz -> models/ (the study's DNN, fitted as the study fitted it).

Outputs: models/model.h5 (with optimizer state), models/model-no-opt.h5 (prediction
only), models/model.weights.h5, models/summary.txt, models/checkpoints/ (best
val_loss weights, looked at every `checkpoint.every_epochs`), metrics/history.csv
(per-epoch curves), metrics/train.json (with the hardware it ran on), and TensorBoard
logs under logs/ (this run's only; not a DVC output, since their timestamps would change
dvc.lock on every run). In a multi-process job only process 0 writes them.
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from stages.backend import use_backend, without_plotting
from stages.devices import report_replicas, scale_for_replicas, start_devices
from stages.errors import run_stage
from stages.files import write_json, write_text
from stages.history import HISTORY_CSV, read_history
from stages.params import load_params
from stages.prepared import read_split, split_path
from stages.state import prepare_state

MODELS_DIR = Path("models")
CHECKPOINT_DIR = MODELS_DIR / "checkpoints"
LOG_DIR = Path("logs")
TRAIN_METRICS = Path("metrics/train.json")


def summarize_history(rows: list[dict], monitor: str) -> dict:
    """What metrics/train.json reports: the final epoch and the best by the checkpoint's monitor."""
    values = [row[monitor] for row in rows]
    best = int(np.argmin(values) if monitor.endswith("loss") else np.argmax(values))
    return {
        "epochs": len(rows),
        "best_epoch": best + 1,
        f"best_{monitor}": values[best],
        "final": {name: value for name, value in rows[-1].items() if name != "epoch"},
    }


def main() -> None:
    params = load_params().train
    x, y = read_split(split_path("train"))
    use_backend(params.backend)
    devices = start_devices(params.backend, params.devices)  # before Keras builds anything
    print(devices.line(), file=sys.stderr)
    without_plotting()

    import keras  # only now: the backend is fixed at import

    from stages.loop import check_even_split, fit_on_device
    from stages.model import build_model, compile_model, make_callbacks, summary_text, weights_checksum
    from stages.model_files import save_model_files
    from stages.stopper import Stopper

    # With N devices each sees batch_size samples a step: the global batch and learning rate scale by N.
    batch_size, learning_rate = scale_for_replicas(params.batch_size, params.learning_rate, devices.count)
    fitted = params.model_copy(update={"batch_size": batch_size, "learning_rate": learning_rate})
    on_device = params.backend == "jax"  # stages/loop.py; elsewhere Keras's fit with steps_per_execution
    if on_device and devices.count > 1:
        check_even_split(len(x), params.validation_split, devices.count)

    keras.utils.set_random_seed(params.seed)
    if params.backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()  # same params, same machine: same metrics
    model = build_model(x.shape[1], y.shape[1], params)
    steps_per_execution = params.steps_per_execution
    if params.backend == "tensorflow" and devices.count > 1:
        # Keras 3's TensorFlow trainer fails under a distribution strategy with steps_per_execution > 1
        # (keras-team/keras#19246); it changes no result, only overhead.
        steps_per_execution = 1
    compile_model(model, fitted, steps_per_execution=steps_per_execution)
    if devices.count > 1:
        print(f"train: {devices.count} replicas in sync, global batch {batch_size}, learning rate {learning_rate:g}; "
              f"weights on {report_replicas(model)}", file=sys.stderr)  # fmt: skip
    if devices.chief:
        print(summary_text(model), end="")

    # Saving reads the replicated weights with collectives between the processes, so every process runs
    # the same callbacks and saves alike: process 0 into the project, the others into a scratch folder.
    with tempfile.TemporaryDirectory(prefix="train-scratch-") as scratch:
        root = Path() if devices.chief else Path(scratch)
        state, resuming = prepare_state(params)  # each process its own (not DVC's), so each can resume
        if resuming:
            print(f"train: resuming the run saved in {state}/ after its last whole epoch", file=sys.stderr)
        (root / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
        shutil.rmtree(root / LOG_DIR, ignore_errors=True)
        stopper = Stopper()
        callbacks = [stopper, *make_callbacks(params, root / HISTORY_CSV, root / CHECKPOINT_DIR, root / LOG_DIR, state)]
        started = time.perf_counter()
        with stopper.watching(watch_parent="DVC_STAGE" in os.environ), devices.failures():
            if on_device:
                history = fit_on_device(model, x, y, fitted, callbacks, mesh=devices.mesh)
            else:
                history = model.fit(x, y, batch_size=batch_size, epochs=params.epochs, callbacks=callbacks, verbose=2,
                                    validation_split=params.validation_split,  # Keras's own: the last part, unshuffled
                                    shuffle=params.shuffle)  # fmt: skip
            seconds = time.perf_counter() - started
            epochs = len(history.history["loss"])  # run by this process (fewer when resumed)
            print(f"train: {epochs} epochs in {seconds:.2f} s of fit ({seconds / epochs:.3f} s/epoch)", file=sys.stderr)
            if devices.processes > 1:  # the same on every process: one model, trained in sync
                print(f"train: weights checksum {weights_checksum(model)}", file=sys.stderr)

            save_model_files(model, root / MODELS_DIR)
            write_text(root / MODELS_DIR / "summary.txt", summary_text(model))
            summary = summarize_history(read_history(root / HISTORY_CSV), params.checkpoint.monitor)
            write_json(root / TRAIN_METRICS, summary | {"hardware": devices.describe()})


if __name__ == "__main__":
    run_stage(main)
