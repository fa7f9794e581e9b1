"""The study's network, built and compiled from params, and its summary.

Import this only after `mnist_dvc.runtime.process.start_process`: importing Keras fixes the backend.
"""

import keras

from mnist_dvc.core.params import TrainParams


def build_model(input_dim: int, num_classes: int, params: TrainParams) -> keras.Model:
    """784 -> [Dense + Dropout] per hidden layer -> Dense(num_classes), as the study's Sequential."""
    layers = [keras.Input(shape=(input_dim,))]
    for units, rate in zip(params.hidden_units, params.dropout, strict=True):
        layers += [keras.layers.Dense(units, activation=params.activation), keras.layers.Dropout(rate)]
    layers.append(keras.layers.Dense(num_classes, activation=params.output_activation))
    return keras.Sequential(layers, name="mnist_dnn")


def compile_model(model: keras.Model, params: TrainParams, steps_per_execution: int) -> None:
    optimizer = keras.optimizers.get(
        {"class_name": params.optimizer, "config": {"learning_rate": params.learning_rate}}
    )
    model.compile(optimizer=optimizer, loss=params.loss, metrics=["accuracy"], steps_per_execution=steps_per_execution)


def summary_text(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    return "\n".join(lines) + "\n"
