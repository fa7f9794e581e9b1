"""Stage 3, train: data/prepared/ -> models/ (the study's DNN, fitted as the study fitted it).

Outputs: models/model.h5 (with optimizer state), models/model-no-opt.h5 (prediction
only), models/model.weights.h5, models/summary.txt, models/checkpoints/ (best
val_loss weights, looked at every `checkpoint.every_epochs`), metrics/history.csv
(per-epoch curves), metrics/train.json, and TensorBoard logs under logs/ (this run's
only; not a DVC output, since their timestamps would change dvc.lock on every run).
"""

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from stages.backend import use_backend
from stages.distribute import start_distribution
from stages.errors import ParamsError, run_stage
from stages.files import write_json, write_text
from stages.history import HISTORY_CSV, read_history
from stages.params import TrainParams, load_params
from stages.prepared import read_split, split_path

MODELS_DIR = Path("models")
CHECKPOINT_DIR = MODELS_DIR / "checkpoints"
LOG_DIR = Path("logs")
TRAIN_METRICS = Path("metrics/train.json")
STATE_DIR = Path(".train-state")  # resume state: not a DVC output, so DVC never deletes it


def prepare_state(state_dir: Path, params: TrainParams) -> bool:
    """Keep a killed run's state only when resuming the same configuration; True if resuming."""
    settings = params.model_dump(exclude={"resume"})
    saved = state_dir / "params.json"
    if params.resume and saved.is_file():
        if json.loads(saved.read_text()) != settings:
            raise ParamsError(
                f"train.resume = True, but {state_dir}/ holds a run with other train params: "
                f"set train.resume: false to start over, or restore the params it was saved with ({saved})"
            )
        return (state_dir / "training_metadata.json").is_file()
    shutil.rmtree(state_dir, ignore_errors=True)
    write_json(saved, settings)
    return False


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
    use_backend(params.backend)
    distribution = start_distribution(params.backend, params.distribute)  # devices are fixed at start-up
    params = distribution.scale(params)  # global batch and learning rate for its replicas
    import keras  # only now: the backend is fixed at import

    from stages.model import (
        build_model,
        compile_model,
        make_callbacks,
        save_model_files,
        summary_text,
    )

    x, y = read_split(split_path("train"))
    distribution.check_samples(len(x), params)

    keras.utils.set_random_seed(params.seed)
    if params.backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()  # same params, same machine: same metrics

    # Many batches per compiled call, the same updates in the same order (README "Performance"):
    # on JAX scanned inside XLA (stages/fused.py), elsewhere Keras's steps_per_execution.
    fused = params.backend == "jax" and not params.distribute
    model = build_model(x.shape[1], y.shape[1], params)
    compile_model(model, params, steps_per_execution=1 if fused else params.steps_per_execution)
    distribution.report(model)
    print(summary_text(model), end="")
    print(f"train: backend {keras.backend.backend()}, devices {_devices(keras.backend.backend())}", file=sys.stderr)

    if prepare_state(STATE_DIR, params):
        print(f"train: resuming the run saved in {STATE_DIR}/ after its last whole epoch", file=sys.stderr)
    CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    callbacks = make_callbacks(params, HISTORY_CSV, CHECKPOINT_DIR, LOG_DIR, STATE_DIR)
    started = time.perf_counter()
    if fused:
        from stages.fused import fit_fused

        history = fit_fused(model, x, y, params, callbacks)
    else:
        history = model.fit(
            x,
            y,
            batch_size=params.batch_size,
            epochs=params.epochs,
            validation_split=params.validation_split,  # Keras's own: the last fraction, unshuffled
            shuffle=params.shuffle,
            callbacks=callbacks,
            verbose=2,
        )
    seconds = time.perf_counter() - started
    epochs = len(history.history["loss"])  # run by this process (fewer when resumed)
    print(f"train: {epochs} epochs in {seconds:.1f} s of fit ({seconds / epochs:.2f} s/epoch)", file=sys.stderr)

    save_model_files(model, MODELS_DIR)
    write_text(MODELS_DIR / "summary.txt", summary_text(model))
    write_json(TRAIN_METRICS, summarize_history(read_history(HISTORY_CSV), params.checkpoint.monitor))


def _devices(backend: str) -> str:
    if backend == "jax":
        import jax

        return ", ".join(str(d) for d in jax.devices())
    if backend == "tensorflow":
        import tensorflow as tf

        return ", ".join(d.name for d in tf.config.list_logical_devices())
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


if __name__ == "__main__":
    run_stage(main)
