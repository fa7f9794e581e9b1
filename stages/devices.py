"""Where training runs: the backend's devices, one process or several, set up before Keras starts.

`train.devices` is the number of devices the run trains on, so that params (and so dvc.lock,
the run-cache and `dvc repro --pull`) describe the run: a result from 8 GPUs is never handed to
a 1-GPU user under the same params, since the global batch and learning rate follow the count.
1 trains on the backend's first device (the GPU where JAX's CUDA build sees one, else the CPU);
N > 1 trains data-parallel on N, one replica each: every global batch of batch_size x N samples
is split between them and the gradients averaged every step (the linear scaling rule:
learning_rate x N). The stage refuses when that many devices are not there.

The engines do the work: on JAX a device mesh over which the batch is sharded (Keras's
`DataParallel` lays the variables out replicated); on TensorFlow `MirroredStrategy`, or
`MultiWorkerMirroredStrategy` when TF_CONFIG names a cluster. A multi-process JAX job is joined
with `keras.distribution.initialize()` when KERAS_DISTRIBUTION_NUM_PROCESSES (with
KERAS_DISTRIBUTION_JOB_ADDRESSES and KERAS_DISTRIBUTION_PROCESS_ID), Slurm or Open MPI describe
one; then `jax.devices()` spans every process and only process 0 writes outputs.

Environment, set here before the backend starts (a user's own setting wins):
- MNIST_CPU_DEVICES=N splits the host CPU into N devices (tests, trying it out);
- XLA's deterministic GPU ops, so the same params on the same GPU kind give the same metrics;
- JAX allocates GPU memory as it needs it, up to a share of the card, instead of taking 75% at
  start, so two sweep workers (`dvc queue start --jobs 2`) fit on one GPU.
"""

import atexit
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

from stages.errors import ParamsError, PipelineError

CPU_DEVICES_ENV = "MNIST_CPU_DEVICES"
XLA_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
XLA_DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"
GPU_MEMORY_SHARE = "0.45"  # of the card, per training process: two fit side by side
MULTI_PROCESS_ENV = ("KERAS_DISTRIBUTION_NUM_PROCESSES", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")


@dataclass(frozen=True)
class Devices:
    """The devices a run trains on, and the process this is."""

    backend: str
    kind: str  # e.g. "cpu", "NVIDIA H100 80GB HBM3"
    names: tuple[str, ...]  # one per replica, e.g. ("gpu:0",)
    processes: int = 1
    process_index: int = 0
    mesh: object = None  # JAX: the mesh batches are sharded over, when data-parallel

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def chief(self) -> bool:
        """Process 0 alone writes models/, metrics/ and logs/."""
        return self.process_index == 0

    def describe(self) -> dict:
        """What metrics/train.json records of the hardware."""
        return {"backend": self.backend, "kind": self.kind, "count": self.count, "processes": self.processes}

    @contextmanager
    def failures(self):
        """In a job of several processes, a collective that fails because another process died (or its
        host went away) becomes one PipelineError naming the job, and this process then leaves at once."""
        if self.processes == 1:
            yield
            return
        try:
            yield
        except Exception as exc:
            reason = _lost_peer(self.backend, exc)
            if reason is None:
                raise
            # JAX's exit handler waits at a shutdown barrier for every process, the dead one too, until
            # its heartbeat times out and then aborts; registered after it, this one runs first.
            atexit.register(_leave_now, 2)
            raise PipelineError(
                f"process {self.process_index} of this {self.processes}-process training job lost another "
                f"process ({reason}); the job is over: look in the other processes' logs for why, then start "
                "all of them again"
            ) from None

    def line(self) -> str:
        where = ", ".join(self.names)
        processes = f", process {self.process_index} of {self.processes}" if self.processes > 1 else ""
        return f"train: training on {where} ({self.kind}), backend {self.backend}{processes}"


# How a collective reports a peer that is gone: gloo (JAX on CPUs) and gRPC (TensorFlow, JAX's coordinator).
LOST_PEER_MARKERS = ("Gloo", "Connection reset", "Connection refused", "Connection closed", "Socket closed",
                     "UNAVAILABLE", "DEADLINE_EXCEEDED", "heartbeat", "Collective ops is aborted")  # fmt: skip


def _lost_peer(backend: str, exc: Exception) -> str | None:
    """The line of `exc` that says a peer process is gone, or None when it is some other error."""
    if backend == "tensorflow":
        import tensorflow as tf

        gone = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                tf.errors.CancelledError)  # fmt: skip
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


def simulated_cpu_devices() -> int:
    """MNIST_CPU_DEVICES as a count (0 when unset)."""
    value = os.environ.get(CPU_DEVICES_ENV, "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) < 1:
        raise ParamsError(f"{CPU_DEVICES_ENV} = {value!r}: give a whole number of CPU devices, at least 1")
    return int(value)


def multi_process_job() -> bool:
    """Whether the environment describes a job of several processes (Keras's variables, Slurm, Open MPI)."""
    for name in MULTI_PROCESS_ENV:
        value = os.environ.get(name, "").strip()
        if value and (not value.isdigit() or int(value) < 1):
            raise ParamsError(f"{name} = {value!r}: give the number of processes in the job, at least 1")
        if value and int(value) > 1:
            return True
    return False


def prepare_environment(backend: str) -> None:
    """XLA and allocator settings that must be in place before the backend starts."""
    flags = os.environ.get("XLA_FLAGS", "")
    count = simulated_cpu_devices()
    if count and XLA_DEVICE_COUNT_FLAG not in flags:
        flags += f" {XLA_DEVICE_COUNT_FLAG}={count}"
    if "xla_gpu_deterministic_ops" not in flags:
        flags += f" {XLA_DETERMINISTIC_FLAG}"
    os.environ["XLA_FLAGS"] = flags.strip()
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", GPU_MEMORY_SHARE)
    if backend == "tensorflow":
        os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")


def start_devices(backend: str, wanted: int) -> Devices:
    """Start the backend on `wanted` devices (joining a multi-process job if the environment says so).

    Call it after `use_backend` and before Keras builds anything: the layout is fixed at start-up.
    """
    prepare_environment(backend)
    if backend == "jax":
        devices = _start_jax(wanted)
    elif backend == "tensorflow":
        devices = _start_tensorflow(wanted)
    else:
        if wanted != 1:
            raise ParamsError(
                f"train.devices = {wanted} needs backend jax or tensorflow; Keras has no data-parallel engine "
                f"for {backend!r}: set train.backend to jax or tensorflow, or train.devices to 1"
            )
        import torch

        kind = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        devices = Devices(backend, kind, ("cuda:0" if torch.cuda.is_available() else "cpu",))
    return devices


def _refuse(wanted: int, available: int, where: str) -> ParamsError:
    return ParamsError(
        f"train.devices = {wanted}, but {where} {available} device{'s' * (available != 1)}: set train.devices "
        f"to {available} (or fewer), or make {wanted} visible (more GPUs, CUDA_VISIBLE_DEVICES, or on a CPU "
        f"{CPU_DEVICES_ENV}={wanted})"
    )


def _start_jax(wanted: int) -> Devices:
    import jax

    processes = 1
    if multi_process_job():
        import keras

        # Collectives between processes on the CPU go through gloo (on GPUs, NCCL).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        keras.distribution.initialize()  # reads KERAS_DISTRIBUTION_*, or Slurm's / Open MPI's variables
        processes = jax.process_count()
    available = jax.devices()  # every process's, in process order
    if processes > 1 and wanted != len(available):
        raise _refuse(wanted, len(available), f"this job of {processes} processes has")
    if wanted > len(available):
        raise _refuse(wanted, len(available), "JAX sees")
    chosen = available[:wanted]
    mesh = None
    if wanted > 1:
        import keras

        # Every variable Keras makes from now on is replicated over these devices.
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=chosen))
        mesh = jax.sharding.Mesh(chosen, ("batch",))
    names = tuple(f"{d.platform}:{d.id}" for d in chosen)
    return Devices("jax", chosen[0].device_kind, names, processes, jax.process_index(), mesh)


def _start_tensorflow(wanted: int) -> Devices:
    import tensorflow as tf

    simulated = simulated_cpu_devices()
    if simulated:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * simulated)
    if os.environ.get("TF_CONFIG"):
        # A cluster of workers, each with its own devices; the chief (worker 0) writes outputs.
        strategy = _multi_worker_strategy()
        resolver = strategy.cluster_resolver
        processes, index = len(resolver.cluster_spec().as_dict().get("worker", [])), resolver.task_id
        if strategy.num_replicas_in_sync != wanted:
            raise _refuse(wanted, strategy.num_replicas_in_sync, f"this cluster of {processes} workers has")
        tf.distribute.experimental_set_strategy(strategy)
        gpus = tf.config.list_logical_devices("GPU")
        names = tuple(f"worker{w}:{'GPU' if gpus else 'CPU'}" for w in range(wanted))
        return Devices("tensorflow", _tf_kind(gpus), names, processes, index)
    gpus = tf.config.list_logical_devices("GPU")
    available = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
    if wanted > len(available):
        raise _refuse(wanted, len(available), "TensorFlow sees")
    chosen = tuple(available[:wanted])
    if wanted > 1:
        # Process-wide, as `with strategy.scope()` around build, compile and fit would be.
        tf.distribute.experimental_set_strategy(tf.distribute.MirroredStrategy(devices=list(chosen)))
    return Devices("tensorflow", _tf_kind(gpus), chosen)


def _multi_worker_strategy():
    """MultiWorkerMirroredStrategy, with a `reduce` that takes what Keras 3's fit gives it.

    Keras 3.15's TensorFlow trainer fails under this strategy twice: to build the model it reduces
    the first (x, y) batch as one nest, which this strategy cannot (a TODO in `Strategy.reduce`:
    "Attempt to convert a value (PerReplica...) to a Tensor"); and it reduces every step's
    scalar metrics along axis 0 ("Invalid reduction dimension 0 for input with 0 dimensions").
    Here a nest is reduced value by value, and a scalar across the replicas only.
    """
    import tensorflow as tf

    class Strategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            def one(value):
                rank = self.experimental_local_results(value)[0].shape.rank
                return super(Strategy, self).reduce(reduce_op, value, axis if rank else None)

            return tf.nest.map_structure(one, value)

    return Strategy()


def _tf_kind(gpus: list) -> str:
    if not gpus:
        return "cpu"
    import tensorflow as tf

    details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
    return details.get("device_name", "GPU")


def put_replicated(array, mesh=None):
    """An array copied to the device once: the first device, or every device of `mesh` (all processes')."""
    import jax

    if mesh is None:
        return jax.device_put(array)
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def shard_batch(batch, mesh=None):
    """Inside the compiled step: split a batch between the devices of `mesh` (unchanged without one)."""
    if mesh is None:
        return batch
    import jax

    return jax.lax.with_sharding_constraint(
        batch, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    )


def report_replicas(model) -> str:
    """Where the built model's weights live: one copy on each device when data-parallel."""
    value = model.weights[0].value
    if hasattr(value, "sharding"):  # a jax.Array
        return ", ".join(sorted(f"{d.platform}:{d.id}" for d in value.sharding.device_set))
    if hasattr(value, "values"):  # a tf.distribute MirroredVariable: one component per replica
        return ", ".join(component.device for component in value.values)
    return str(getattr(value, "device", "?"))


def scale_for_replicas(batch_size: int, learning_rate: float, replicas: int) -> tuple[int, float]:
    """(global batch, learning rate) for `replicas` devices, each seeing `batch_size` samples a step."""
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    return batch_size * replicas, learning_rate * replicas
