"""Jobs of several processes: telling one is asked for, ending it cleanly when a peer dies, and their checks.

A multi-process JAX job is joined with `keras.distribution.initialize()` when
KERAS_DISTRIBUTION_NUM_PROCESSES, Slurm or Open MPI describe one; TensorFlow's when TF_CONFIG does.
"""

import atexit
import hashlib
import os
import sys
from contextlib import contextmanager

import numpy as np

from mnist_dvc.core.errors import ParamsError, PipelineError

MULTI_PROCESS_ENV = ("KERAS_DISTRIBUTION_NUM_PROCESSES", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")
# How a collective reports a peer that is gone: gloo (JAX on CPUs) and gRPC (TensorFlow, JAX's coordinator).
LOST_PEER_MARKERS = (
    "Gloo",
    "Connection reset",
    "Connection refused",
    "Connection closed",
    "Socket closed",
    "UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "heartbeat",
    "Collective ops is aborted",
)


def multi_process_job() -> bool:
    """Whether the environment describes a job of several processes (Keras's variables, Slurm, Open MPI)."""
    for name in MULTI_PROCESS_ENV:
        value = os.environ.get(name, "").strip()
        if value and (not value.isdigit() or int(value) < 1):
            raise ParamsError(f"{name} = {value!r}: give the number of processes in the job, at least 1")
        if value and int(value) > 1:
            return True
    return False


@contextmanager
def peers_watched(devices):
    """In a job of several processes, a collective that fails because another process died (or its host
    went away) becomes one PipelineError naming the job, and this process then leaves at once."""
    if devices.processes == 1:
        yield
        return
    try:
        yield
    except Exception as exc:
        reason = _lost_peer(devices.backend, exc)
        if reason is None:
            raise
        # JAX's exit handler waits at a shutdown barrier for every process, the dead one too, until
        # its heartbeat times out and then aborts; registered after it, this one runs first.
        atexit.register(_leave_now, 2)
        raise PipelineError(
            f"process {devices.process_index} of this {devices.processes}-process training job lost another "
            f"process ({reason}); the job is over: look in the other processes' logs for why, then start "
            "all of them again"
        ) from None


def _lost_peer(backend: str, exc: Exception) -> str | None:
    """The line of `exc` that says a peer process is gone, or None when it is some other error."""
    if backend == "tensorflow":
        import tensorflow as tf

        gone = (
            tf.errors.UnavailableError,
            tf.errors.DeadlineExceededError,
            tf.errors.AbortedError,
            tf.errors.CancelledError,
        )
        if not isinstance(exc, gone):
            return None
    elif not isinstance(exc, (RuntimeError, ValueError)):  # jax.errors.JaxRuntimeError is a RuntimeError
        return None
    lines = [line.strip() for line in str(exc).splitlines()]
    found = next((line for line in lines if any(marker in line for marker in LOST_PEER_MARKERS)), None)
    if found is None and backend == "tensorflow":
        found = next((line for line in lines if line), type(exc).__name__)
    return found[:300] if found else None


def _leave_now(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def multi_worker_strategy():
    """MultiWorkerMirroredStrategy, with a `reduce` that takes what Keras 3's fit gives it.

    Keras 3's TensorFlow trainer fails under this strategy twice: to build the model it reduces
    the first (x, y) batch as one nest, which this strategy cannot ("Attempt to convert a value
    (PerReplica...) to a Tensor"); and it reduces every step's scalar metrics along axis 0
    ("Invalid reduction dimension 0 for input with 0 dimensions"). Here a nest is reduced value
    by value, and a scalar across the replicas only.
    """
    import tensorflow as tf

    class Strategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            def one(value):
                rank = self.experimental_local_results(value)[0].shape.rank
                return super(Strategy, self).reduce(reduce_op, value, axis if rank else None)

            return tf.nest.map_structure(one, value)

    return Strategy()


def weights_checksum(model) -> str:
    """A short hash of the weights' bytes: every process of a job in sync logs the same one."""
    import keras  # only here: importing Keras fixes the backend

    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable.value)).tobytes())
    return digest.hexdigest()[:16]
