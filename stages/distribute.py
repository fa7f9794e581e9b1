"""Data-parallel training across every visible device, with the backend's own engine.

`train.distribute: true` replicates the model on every device the backend sees (all GPUs,
or else the CPU) and splits each batch between them: `tf.distribute.MirroredStrategy` on
TensorFlow, `keras.distribution.DataParallel` on JAX. Gradients are averaged across the
replicas every step, so the replicas stay identical and one model is saved.

The batch and learning-rate rule (`scale_for_replicas`): `train.batch_size` is the batch
each device sees, so with N devices the global batch is batch_size x N and the learning
rate is learning_rate x N (the linear scaling rule). Each device does as much work per
step as one device alone, an epoch takes N times fewer steps, and with N = 1 nothing
changes: `distribute: true` on one device is exactly the single-device run.

`steps_per_execution` counts global steps: one compiled call runs that many global batches
(steps_per_execution x batch_size x N samples), and an epoch that has fewer steps simply
ends the call early.

Simulating devices on one CPU (tests, trying it out): MNIST_CPU_DEVICES=N splits the host
CPU into N devices before the backend starts (JAX: XLA's
--xla_force_host_platform_device_count; TensorFlow: logical CPU devices). Several hosts:
see README "Experiments and scale".
"""

import math
import os
import sys
from dataclasses import dataclass

from stages.errors import ParamsError
from stages.params import TrainParams

CPU_DEVICES_ENV = "MNIST_CPU_DEVICES"
XLA_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


@dataclass(frozen=True)
class Distribution:
    """Where training runs: the devices holding a replica each (one entry when not distributed)."""

    backend: str
    enabled: bool
    devices: tuple[str, ...]

    @property
    def replicas(self) -> int:
        return len(self.devices) if self.enabled else 1

    def check_samples(self, num_samples: int, params: TrainParams) -> None:
        if self.enabled and self.backend == "jax":
            check_even_split(num_samples, params.validation_split, self.replicas)

    def report(self, model) -> None:
        """Say where the built model's weights live: one copy on each device when distributed."""
        if self.enabled:
            print(f"train: {self.replicas} replicas in sync; weights on {', '.join(weight_devices(model))}",
                  file=sys.stderr)  # fmt: skip

    def scale(self, params: TrainParams) -> TrainParams:
        """The params the model is compiled and fitted with under this distribution."""
        batch_size, learning_rate = scale_for_replicas(params.batch_size, params.learning_rate, self.replicas)
        update = {"batch_size": batch_size, "learning_rate": learning_rate}
        if self.enabled and self.backend == "tensorflow" and params.steps_per_execution > 1:
            # Keras 3's TensorFlow trainer fails under MirroredStrategy with steps_per_execution > 1
            # ("You must feed a value for placeholder tensor", keras-team/keras#19246). It changes
            # no result, only overhead, so run one step per call there.
            print("train: steps_per_execution 1 under MirroredStrategy (keras-team/keras#19246)", file=sys.stderr)
            update["steps_per_execution"] = 1
        return params.model_copy(update=update)


def keras_split(num_samples: int, validation_split: float) -> tuple[int, int]:
    """(training, validation) sizes as Keras's `validation_split` cuts them."""
    train = int(math.floor(num_samples * (1.0 - validation_split)))
    return train, num_samples - train


def check_even_split(num_samples: int, validation_split: float, replicas: int) -> None:
    """JAX shards every batch evenly over the devices, the last, partial one too: refuse early
    a sample count whose training or validation part does not divide by the device count."""
    train, validation = keras_split(num_samples, validation_split)
    if train % replicas == 0 and validation % replicas == 0:
        return
    fits = next(n for n in range(num_samples, 0, -1) if not any(p % replicas for p in keras_split(n, validation_split)))
    raise ParamsError(
        f"train.distribute over {replicas} devices on JAX splits every batch evenly, the last one too, but "
        f"preprocess.train_samples = {num_samples} makes a training part of {train} and a validation part of "
        f"{validation} (validation_split {validation_split}); both must be multiples of {replicas}: set "
        f"preprocess.train_samples to {fits}, for example, or use backend tensorflow"
    )


def weight_devices(model) -> list[str]:
    """The devices holding a copy of the model's first weight, as the backend placed it."""
    value = model.weights[0].value
    if hasattr(value, "sharding"):  # a jax.Array
        return sorted(f"{d.platform}:{d.id}" for d in value.sharding.device_set)
    if hasattr(value, "values"):  # a tf.distribute MirroredVariable: one component per replica
        return [component.device for component in value.values]
    return [str(getattr(value, "device", "?"))]


def scale_for_replicas(batch_size: int, learning_rate: float, replicas: int) -> tuple[int, float]:
    """(global batch, learning rate) for `replicas` devices, each seeing `batch_size` samples a step."""
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    return batch_size * replicas, learning_rate * replicas


def simulated_cpu_devices() -> int:
    """MNIST_CPU_DEVICES as a count (0 when unset)."""
    value = os.environ.get(CPU_DEVICES_ENV, "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) < 1:
        raise ParamsError(f"{CPU_DEVICES_ENV} = {value!r}: give a whole number of CPU devices, at least 1")
    return int(value)


def start_distribution(backend: str, enabled: bool) -> Distribution:
    """Set up this process's devices and, if `enabled`, make every model built, compiled and fitted
    from now on data-parallel across all of them. Call it after `use_backend` and before Keras
    touches a device (before `import keras` is safest): the device layout is fixed at start-up.
    """
    count = simulated_cpu_devices()
    if count and backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        if XLA_DEVICE_COUNT_FLAG not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {XLA_DEVICE_COUNT_FLAG}={count}".strip()
    if backend == "jax":
        distribution = _start_jax(enabled)
    elif backend == "tensorflow":
        distribution = _start_tensorflow(enabled, count)
    else:
        if enabled:
            raise ParamsError(
                f"train.distribute = true needs backend jax or tensorflow; Keras has no data-parallel engine "
                f"for {backend!r}: set train.backend to jax or tensorflow, or train.distribute to false"
            )
        distribution = Distribution(backend, False, ("cpu",))
    if enabled:
        print(f"train: data-parallel over {distribution.replicas} devices: {', '.join(distribution.devices)}",
              file=sys.stderr)  # fmt: skip
    return distribution


def _start_jax(enabled: bool) -> Distribution:
    import jax
    import keras

    devices = jax.devices()  # every accelerator, or the CPU devices when there is none
    names = tuple(f"{d.platform}:{d.id}" for d in devices)
    if enabled:
        # Process-wide: Keras lays every variable out replicated over the mesh and shards
        # each batch along it, in build, compile and fit alike.
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return Distribution("jax", enabled, names)


def _start_tensorflow(enabled: bool, simulated: int) -> Distribution:
    import tensorflow as tf

    if simulated:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * simulated)
    # MirroredStrategy's own default takes the GPUs only; with none, take every CPU device.
    names = tuple(d.name for d in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))
    if enabled:
        strategy = tf.distribute.MirroredStrategy(devices=list(names))
        # Process-wide, as `with strategy.scope()` around build, compile and fit would be.
        tf.distribute.experimental_set_strategy(strategy)
        names = tuple(strategy.extended.worker_devices)  # one replica each
    return Distribution("tensorflow", enabled, names)
