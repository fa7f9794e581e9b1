import pytest
from helpers import default_params, with_overrides

from mnist_dvc.core.errors import ParamsError
from mnist_dvc.core.params import load_params, parse_params


def problems(overrides: dict) -> str:
    with pytest.raises(ParamsError) as error:
        parse_params(with_overrides(default_params(), overrides))
    return str(error.value)


def test_the_committed_params_are_valid_and_reproduce_the_study():
    params = load_params()
    assert params.train.hidden_units == [256, 128]
    assert params.train.dropout == [0.2, 0.5]
    assert (params.train.epochs, params.train.batch_size, params.train.learning_rate) == (50, 32, 0.001)
    assert params.train.validation_split == 0.2
    assert params.evaluate.num_images == 30


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"train.batch_size": "32"}, "train.batch_size = '32': Input should be a valid integer"),
        ({"train.epochs": 2.5}, "train.epochs = 2.5: Input should be a valid integer"),
        ({"train.batch_size": 0}, "train.batch_size = 0: Input should be greater than or equal to 1"),
        ({"train.learning_rate": 0}, "train.learning_rate = 0: Input should be greater than 0"),
        ({"train.learning_rate": -0.1}, "train.learning_rate = -0.1: Input should be greater than 0"),
        ({"train.dropout": [0.2, 1.0]}, "train.dropout.1 = 1.0: Input should be less than 1"),
        ({"train.validation_split": 1.0}, "train.validation_split = 1.0: Input should be less than 1"),
        ({"train.validation_split": 0}, "train.validation_split = 0: Input should be greater than 0"),
        ({"train.optimizer": "adamm"}, "train.optimizer = 'adamm': Input should be 'adam', 'adamw'"),
        ({"train.activation": "relu6x"}, "train.activation = 'relu6x': Input should be 'relu'"),
        ({"train.loss": "mse"}, "train.loss = 'mse': Input should be 'categorical_crossentropy'"),
        ({"train.backend": "theano"}, "train.backend = 'theano': Input should be 'jax', 'tensorflow' or 'torch'"),
        ({"train.dropout": [0.2]}, "dropout has 1 rates but hidden_units has 2 layers"),
        ({"evaluate.num_images": 0}, "evaluate.num_images = 0: Input should be greater than or equal to 1"),
        ({"preprocess.train_samples": 70000}, "preprocess.train_samples = 70000: Input should be less than or equal"),
        ({"fetch.sources": ["kaggle"]}, "unknown source 'kaggle': use keras or pypi, or a path or URL"),
        ({"train.epoch": 3}, "train.epoch: unknown key; allowed here: backend, seed, hidden_units"),
        ({"train.early_stopping.patiance": 3}, "train.early_stopping.patiance: unknown key; allowed here: monitor"),
    ],
)
def test_a_bad_value_names_the_key_the_value_and_what_is_allowed(overrides, expected):
    assert expected in problems(overrides)


def test_a_missing_key_is_named():
    params = default_params()
    del params["train"]["epochs"]
    with pytest.raises(ParamsError, match="train.epochs: missing"):
        parse_params(params)


def test_every_problem_is_listed_at_once():
    message = problems({"train.batch_size": 0, "evaluate.num_images": "x"})
    assert "train.batch_size" in message and "evaluate.num_images" in message


def test_a_file_that_is_not_yaml_is_named(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(ParamsError, match="params.yaml is not valid YAML"):
        load_params(path)
