"""The devices a run trains on (`train.devices`): started on the backend, counted, refused when missing.

1 trains on the backend's first device; N > 1 trains data-parallel on N, one replica each, with
the global batch and the learning rate scaled by N. On JAX a device mesh over which batches are
sharded; on TensorFlow `MirroredStrategy`, or a multi-worker strategy when TF_CONFIG names a cluster.
"""

import os
from dataclasses import dataclass

from mnist_dvc.core.errors import ParamsError
from mnist_dvc.runtime.distributed import multi_process_job, multi_worker_strategy
from mnist_dvc.runtime.process import CPU_DEVICES_ENV, simulated_cpu_devices


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

    def log_line(self) -> str:
        processes = f", process {self.process_index} of {self.processes}" if self.processes > 1 else ""
        return f"train: training on {', '.join(self.names)} ({self.kind}), backend {self.backend}{processes}"


def device_names(devices) -> str:
    """JAX devices as `platform:id`, e.g. "cpu:0, cpu:1", in order."""
    return ", ".join(sorted(f"{d.platform}:{d.id}" for d in devices))


def start_devices(backend: str, wanted: int) -> Devices:
    """Start the backend on `wanted` devices (joining a multi-process job if the environment says so).

    Call it after `start_process` and before Keras builds anything: the layout is fixed at start-up.
    """
    if backend == "jax":
        return _start_jax(wanted)
    if backend == "tensorflow":
        return _start_tensorflow(wanted)
    if wanted != 1:
        raise ParamsError(
            f"train.devices = {wanted} needs backend jax or tensorflow; Keras has no data-parallel engine "
            f"for {backend!r}: set train.backend to jax or tensorflow, or train.devices to 1"
        )
    import torch

    gpu = torch.cuda.is_available()
    return Devices(backend, torch.cuda.get_device_name(0) if gpu else "cpu", ("cuda:0" if gpu else "cpu",))


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
    names = tuple(device_names([d]) for d in chosen)
    return Devices("jax", chosen[0].device_kind, names, processes, jax.process_index(), mesh)


def _start_tensorflow(wanted: int) -> Devices:
    import tensorflow as tf

    simulated = simulated_cpu_devices()
    if simulated:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * simulated)
    if os.environ.get("TF_CONFIG"):
        # A cluster of workers, each with its own devices; the chief (worker 0) writes outputs.
        strategy = multi_worker_strategy()
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


def _tf_kind(gpus: list) -> str:
    if not gpus:
        return "cpu"
    import tensorflow as tf

    details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
    return details.get("device_name", "GPU")


def report_replicas(model) -> str:
    """Where the built model's weights live: one copy on each device when data-parallel."""
    value = model.weights[0].value
    if hasattr(value, "sharding"):  # a jax.Array
        return device_names(value.sharding.device_set)
    if hasattr(value, "values"):  # a tf.distribute MirroredVariable: one component per replica
        return ", ".join(component.device for component in value.values)
    return str(getattr(value, "device", "?"))


def scale_for_replicas(batch_size: int, learning_rate: float, replicas: int) -> tuple[int, float]:
    """(global batch, learning rate) for `replicas` devices, each seeing `batch_size` samples a step."""
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    return batch_size * replicas, learning_rate * replicas
