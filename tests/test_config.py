"""Config files and their args: typed ``parse_arg``, ``load_config`` by path, GLiNER's one head schema."""

import dataclasses

import pytest

from gliner_jax import GLiNERConfig
from modernbert_jax import config as config_lib
from modernbert_jax.attention import IMPLS


def test_parse_arg_types_each_value_from_its_default():
    args = config_lib.parse_arg("shots=16,lr=3e-4,name=minilm,demo=true", shots=8, lr=1.0, name="x", demo=False, seeds=5)
    assert args["shots"] == 16 and type(args["shots"]) is int
    assert args["lr"] == pytest.approx(3e-4) and type(args["lr"]) is float
    assert args["name"] == "minilm"
    assert args["demo"] is True
    assert args["seeds"] == 5  # not given: the default


@pytest.mark.parametrize("text, value", [("true", True), ("True", True), ("1", True), ("yes", True),
                                         ("false", False), ("FALSE", False), ("0", False), ("no", False)])
def test_bool_spellings_mean_the_same(text, value):
    assert config_lib.parse_arg(f"demo={text}", demo=not value)["demo"] is value


@pytest.mark.parametrize("arg, message", [
    ("shots=eight", r"shots='eight' does not parse as int"),
    ("shots=8.5", r"shots='8.5' does not parse as int"),
    ("lr=fast", r"lr='fast' does not parse as float"),
    ("demo=maybe", r"demo='maybe' does not parse as bool"),
    ("size=base", r"unknown config arg 'size'"),
    ("shots", r"'shots' is not of the form key=value"),
])
def test_bad_arg_is_named(arg, message):
    with pytest.raises(ValueError, match=message):
        config_lib.parse_arg(arg, shots=8, lr=1.0, demo=False)


def test_default_of_an_untyped_kind_is_rejected():
    with pytest.raises(TypeError, match="'path'"):
        config_lib.parse_arg("", path=None)


def test_load_config_reads_the_file_with_its_arg_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths fall back to the repository root
    cfg = config_lib.load_config("configs/setfit.py:shots=16,demo=1")
    assert cfg.shots == 16 and cfg.seeds == [0]
    assert config_lib.load_config("configs/setfit.py:demo=True").to_dict() == cfg.to_dict() | {"shots": 8}


def test_load_config_without_arg_calls_get_config_without_one(tmp_path):
    path = tmp_path / "exp.py"
    path.write_text("def get_config(arg='unset'):\n    return {'arg': arg}\n")
    assert config_lib.load_config(str(path)) == {"arg": "unset"}
    assert config_lib.load_config(f"{path}:a=1") == {"arg": "a=1"}


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="configs/nope.py"):
        config_lib.load_config("configs/nope.py:variant=tiny")
    path = tmp_path / "no_function.py"
    path.write_text("CONFIG = {}\n")
    with pytest.raises(ValueError, match=r"no_function\.py defines no get_config"):
        config_lib.load_config(str(path))


def test_gliner_head_block_is_the_schema():
    """configs/gliner.py's head is GLiNERConfig (every field, sampling knobs included); train has none of them."""
    cfg = config_lib.load_config("configs/gliner.py:demo=false")
    fields = {f.name for f in dataclasses.fields(GLiNERConfig)}
    assert set(cfg.head) == fields
    assert not fields & set(cfg.train)
    head = GLiNERConfig.from_dict(cfg.head.to_dict())
    assert head.drop_types_prob > 0 and head.negative_types == "batch"


def test_gliner_schema_rejects_bad_sampling_knobs():
    with pytest.raises(ValueError, match="negative_types='everything'"):
        GLiNERConfig(negative_types="everything").validate()
    with pytest.raises(ValueError, match="drop_types_prob=1.5"):
        GLiNERConfig(drop_types_prob=1.5).validate()


def test_attention_impl_is_validated():
    for impl in IMPLS:
        config_lib.replaced(config_lib.model_config("tiny"), attention_impl=impl)
    with pytest.raises(ValueError, match=r"model\.attention_impl='interpret'"):
        config_lib.replaced(config_lib.model_config("tiny"), attention_impl="interpret")
