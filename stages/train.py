"""Stage 3, train: data/prepared/train.npz -> models/ (the study's DNN, fitted as the study fitted it).

Outputs: models/model.h5 (with optimizer state), models/model-no-opt.h5 (prediction only),
models/model.weights.h5, models/summary.txt, models/checkpoints/ (best val_loss weights, looked
at every `checkpoint.every_epochs`), metrics/history.csv (per-epoch curves), metrics/train.json
(with the hardware it ran on), and TensorBoard logs under logs/ (this run's only; not a DVC
output, since their timestamps would change dvc.lock on every run). In a job of several
processes only process 0 writes them.
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mnist_dvc.core.errors import WriteError, run_stage
from mnist_dvc.core.files import reported_as, write_json, write_text
from mnist_dvc.core.params import TrainParams, load_params
from mnist_dvc.data.prepared import read_split, split_path
from mnist_dvc.runtime.devices import Devices, report_replicas, scale_for_replicas, start_devices
from mnist_dvc.runtime.distributed import peers_watched, weights_checksum
from mnist_dvc.runtime.process import start_process
from mnist_dvc.training.history import HISTORY_CSV, read_history

MODELS_DIR = Path("models")
CHECKPOINT_DIR = MODELS_DIR / "checkpoints"
LOG_DIR = Path("logs")
TRAIN_METRICS = Path("metrics/train.json")


def main() -> None:
    params = load_params().train
    x, y = read_split(split_path("train"))
    start_process(params.backend)
    devices = start_devices(params.backend, params.devices)  # before Keras builds anything
    print(devices.log_line(), file=sys.stderr)

    from mnist_dvc.training.stopping import Stopper  # imports Keras: only now, with the backend set

    model, scaled = configure(params, devices, num_samples=len(x), shape=(x.shape[1], y.shape[1]))
    # Saving reads the replicated weights with collectives between the processes, so every process runs
    # the same callbacks and saves alike: process 0 into the project, the others into a scratch folder.
    stopper = Stopper()
    with (
        tempfile.TemporaryDirectory(prefix="train-scratch-") as scratch,
        stopper.watching(watch_parent="DVC_STAGE" in os.environ),
        peers_watched(devices),
    ):
        outputs = Path() if devices.chief else Path(scratch)
        epochs = fit(model, x, y, params, scaled, callbacks=[stopper], outputs=outputs, mesh=devices.mesh)
        if devices.processes > 1:  # the same on every process: one model, trained in sync
            print(f"train: weights checksum {weights_checksum(model)}", file=sys.stderr)
        try:
            save(model, params, devices, outputs)
        except WriteError as exc:
            finished = f"{epochs} epoch{'s' if epochs != 1 else ''}"
            raise WriteError(
                f"training finished ({finished}) but {exc}; the trained weights are not kept, so the rerun trains again"
            ) from None


def configure(params: TrainParams, devices: Devices, num_samples: int, shape: tuple[int, int]):
    """The compiled model, and the params with the batch and learning rate scaled to the replicas."""
    import keras

    from mnist_dvc.training.jax_loop import check_even_split
    from mnist_dvc.training.network import build_model, compile_model, summary_text

    # With N devices each sees batch_size samples a step: the global batch and learning rate scale by N.
    batch_size, learning_rate = scale_for_replicas(params.batch_size, params.learning_rate, devices.count)
    scaled = params.model_copy(update={"batch_size": batch_size, "learning_rate": learning_rate})
    if params.backend == "jax" and devices.count > 1:
        check_even_split(num_samples, params.validation_split, devices.count)

    keras.utils.set_random_seed(params.seed)
    if params.backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()  # same params, same machine: same metrics
    model = build_model(*shape, params)
    steps_per_execution = params.steps_per_execution
    if params.backend == "tensorflow" and devices.count > 1:
        # Keras 3's TensorFlow trainer fails under a distribution strategy with steps_per_execution > 1
        # (keras-team/keras#19246); it changes no result, only overhead.
        steps_per_execution = 1
    compile_model(model, scaled, steps_per_execution=steps_per_execution)
    if devices.count > 1:
        print(
            f"train: {devices.count} replicas in sync, global batch {batch_size}, learning rate {learning_rate:g}; "
            f"weights on {report_replicas(model)}",
            file=sys.stderr,
        )
    if devices.chief:
        print(summary_text(model), end="")
    return model, scaled


def fit(model, x, y, params: TrainParams, scaled: TrainParams, callbacks: list, outputs: Path, mesh=None) -> int:
    """Train as the study did, with its callbacks after `callbacks`, resuming a killed run if asked;
    the curves, checkpoints and logs go under `outputs`. The epochs trained, a resumed run's included."""
    from mnist_dvc.training import jax_loop
    from mnist_dvc.training.callbacks import make_callbacks
    from mnist_dvc.training.resume import prepare_state

    state_folder, resuming = prepare_state(params)  # each process its own (not DVC's), so each can resume
    if resuming:
        print(f"train: resuming the run saved in {state_folder}/ after its last whole epoch", file=sys.stderr)
    with reported_as(outputs / CHECKPOINT_DIR):
        (outputs / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
    shutil.rmtree(outputs / LOG_DIR, ignore_errors=True)
    callbacks = callbacks + make_callbacks(
        params, outputs / HISTORY_CSV, outputs / CHECKPOINT_DIR, outputs / LOG_DIR, state_folder
    )
    started = time.perf_counter()
    if params.backend == "jax":  # a whole epoch per compiled call
        history = jax_loop.fit(model, x, y, scaled, callbacks, mesh=mesh)
    else:  # Keras's fit, with steps_per_execution; validation_split: the last part, unshuffled
        history = model.fit(
            x,
            y,
            batch_size=scaled.batch_size,
            epochs=params.epochs,
            callbacks=callbacks,
            verbose=2,
            validation_split=params.validation_split,
            shuffle=params.shuffle,
        )
    seconds = time.perf_counter() - started
    epochs = len(history.history["loss"])  # run by this process (fewer when resumed)
    print(f"train: {epochs} epochs in {seconds:.2f} s of fit ({seconds / epochs:.3f} s/epoch)", file=sys.stderr)
    return len(read_history(outputs / HISTORY_CSV))


def save(model, params: TrainParams, devices: Devices, outputs: Path) -> None:
    """The study's three model files, the summary, and metrics/train.json."""
    from mnist_dvc.training.model_files import save_model_files
    from mnist_dvc.training.network import summary_text

    save_model_files(model, outputs / MODELS_DIR)
    write_text(outputs / MODELS_DIR / "summary.txt", summary_text(model))
    summary = summarize_history(read_history(outputs / HISTORY_CSV), params.checkpoint.monitor)
    write_json(outputs / TRAIN_METRICS, summary | {"hardware": devices.describe()})


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


if __name__ == "__main__":
    run_stage(main)
