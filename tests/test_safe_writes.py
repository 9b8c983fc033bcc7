"""Saves touch only their own files, atomically; loaders name the bad file.

Each saver (``hf.save_pretrained``, ``GLiNER.save_pretrained``, ``SetFitModel.save_pretrained``)
writes into a directory that already holds a tokenizer, notes and a subdirectory of runs: what it
does not write survives, with and without ``overwrite``. A save interrupted while it writes leaves
the previous model loadable and no temporary file. A truncated or malformed file is named in the
loader's error. Models are tiny and random (built by the helpers of the GLiNER and SetFit tests).
"""

import functools
import os
import re
import shutil
from pathlib import Path

import jax
import joblib
import numpy as np
import pytest
import safetensors.numpy
from test_gliner_training import tiny_model  # noqa: F401  (a fixture)
from test_setfit_pipeline import tiny_modernbert

from gliner_jax import GLiNER
from modernbert_jax import config as config_lib, hf, safe_io
from modernbert_jax.model import Encoder, init_params
from setfit_jax import SetFitModel

NOTES = "what this model is for\n"


@functools.lru_cache(maxsize=1)
def _tiny_bert_init():
    encoder = Encoder(config_lib.bert_config(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                                             vocab_size=128))
    return encoder, init_params(encoder, jax.random.key(0))


def _tiny_bert(version: int = 0):
    """A tiny BERT; each ``version`` has other weights (shifted, so only one initialisation runs)."""
    encoder, params = _tiny_bert_init()
    return encoder, jax.tree.map(lambda x: x + version, params)


def _user_files(directory: Path) -> dict[str, str]:
    """Files a user keeps beside a model: a tokenizer of theirs, notes, a subdirectory of runs."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "runs").mkdir()
    files = {"tokenizer.json": '{"not": "ours"}', "NOTES.md": NOTES, "runs/run1.log": "step 1 loss 2.0\n"}
    for name, text in files.items():
        (directory / name).write_text(text)
    return files


def _assert_kept(directory: Path, files: dict[str, str]) -> None:
    assert {name: (directory / name).read_text() for name in files} == files


def _assert_same_params(a, b) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _fitted_setfit(differentiable: bool) -> SetFitModel:
    model = tiny_modernbert(num_layers=1, labels=["games", "mail"], use_differentiable_head=differentiable)
    if differentiable:
        model.model_head.init(0)
    else:  # any embeddings do: the test is about the file, not the fit
        model.model_head.fit(np.random.default_rng(0).normal(size=(4, model.model_body.dim)), [0, 1, 0, 1])
    model.fitted = True
    return model


def _torn_save_file(real):
    """safetensors' ``save_file`` that dies half-way through, as on a full disk."""
    def save_file(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        os.truncate(filename, os.path.getsize(filename) // 2)
        raise OSError(28, "No space left on device")
    return save_file


# ---------------------------------------------------------------- files we do not write survive

def test_hf_save_keeps_every_file_it_does_not_write(tmp_path):
    path = tmp_path / "model"
    kept = _user_files(path)
    module, params = _tiny_bert(0)
    hf.save_pretrained(path, module, params)  # into a non-empty directory holding none of our files
    _assert_kept(path, kept)
    _, loaded = hf.from_pretrained(path)
    _assert_same_params(loaded, params)

    module, params = _tiny_bert(1)
    hf.save_pretrained(path, module, params, overwrite=True)  # back into the model's own directory
    _assert_kept(path, kept)
    _assert_same_params(hf.from_pretrained(path)[1], params)
    assert sorted(os.listdir(path)) == sorted(["config.json", "model.safetensors", "NOTES.md", "runs", "tokenizer.json"])


def test_hf_save_refuses_to_replace_its_files_without_overwrite_and_names_them(tmp_path):
    module, params = _tiny_bert(0)
    hf.save_pretrained(tmp_path, module, params)
    with pytest.raises(FileExistsError, match="config.json, model.safetensors.*overwrite=True"):
        hf.save_pretrained(tmp_path, *_tiny_bert(1))
    _assert_same_params(hf.from_pretrained(tmp_path)[1], params)


def test_gliner_save_keeps_other_files_and_refuses_to_replace_its_own(tiny_model, tmp_path):  # noqa: F811
    path = tmp_path / "gliner"
    _user_files(path)
    (path / "tokenizer.json").unlink()  # GLiNER writes its own tokenizer.json
    kept = {"NOTES.md": NOTES, "runs/run1.log": "step 1 loss 2.0\n"}
    tiny_model.save_pretrained(path)
    with pytest.raises(FileExistsError, match="gliner_config.json.*model.safetensors.*tokenizer.json"):
        tiny_model.save_pretrained(path)
    tiny_model.save_pretrained(path, overwrite=True)
    _assert_kept(path, kept)
    _assert_same_params(GLiNER.from_pretrained(path).params, tiny_model.params)


def test_setfit_save_twice_keeps_other_files_and_no_stale_head(tmp_path):
    path = tmp_path / "setfit"
    _user_files(path)
    (path / "tokenizer.json").unlink()  # SetFit writes its own tokenizer.json
    kept = {"NOTES.md": NOTES, "runs/run1.log": "step 1 loss 2.0\n"}
    _fitted_setfit(differentiable=True).save_pretrained(path)
    assert SetFitModel.from_pretrained(path).has_differentiable_head
    with pytest.raises(FileExistsError, match="config_setfit.json"):
        _fitted_setfit(differentiable=False).save_pretrained(path)

    # A scikit-learn head replaces the differentiable one: the earlier model_head.npz (which the
    # loader would prefer) must go, and everything that is not ours stays.
    logistic = _fitted_setfit(differentiable=False)
    logistic.save_pretrained(path, overwrite=True)
    _assert_kept(path, kept)
    loaded = SetFitModel.from_pretrained(path)
    assert loaded.fitted and not loaded.has_differentiable_head
    np.testing.assert_array_equal(loaded.model_head.coef_, logistic.model_head.coef_)

    tiny_modernbert(num_layers=1).save_pretrained(path, overwrite=True)  # an untrained model: no head at all
    assert not SetFitModel.from_pretrained(path).fitted
    _assert_kept(path, kept)


# ---------------------------------------------------------------- interrupted saves

def test_interrupted_gliner_save_leaves_the_previous_one_loadable(tiny_model, tmp_path, monkeypatch):  # noqa: F811
    path = tiny_model.save_pretrained(tmp_path / "gliner")
    before = sorted(os.listdir(path))
    monkeypatch.setattr(safetensors.numpy, "save_file", _torn_save_file(safetensors.numpy.save_file))
    with pytest.raises(OSError, match="No space left"):
        tiny_model.save_pretrained(path, overwrite=True)
    assert sorted(os.listdir(path)) == before  # no temporary file left behind
    _assert_same_params(GLiNER.from_pretrained(path).params, tiny_model.params)


def test_interrupted_setfit_save_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    model = _fitted_setfit(differentiable=False)
    path = model.save_pretrained(tmp_path / "setfit")
    before = sorted(os.listdir(path))

    def dump(*args, **kwargs):
        raise KeyboardInterrupt  # the user stops the save while the head is written

    monkeypatch.setattr(joblib, "dump", dump)
    with pytest.raises(KeyboardInterrupt):
        model.save_pretrained(path, overwrite=True)
    assert sorted(os.listdir(path)) == before
    loaded = SetFitModel.from_pretrained(path)
    assert loaded.fitted and loaded.labels == model.labels


def test_a_failed_write_leaves_no_temporary_file_and_old_files_untouched(tmp_path):
    safe_io.write_files(tmp_path, {"a.json": "old a", "sub/b.bin": b"old b"})

    def torn(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        safe_io.write_files(tmp_path, {"a.json": "new a", "sub/b.bin": torn}, overwrite=True)
    assert (tmp_path / "a.json").read_text() == "old a"  # staged, never renamed: the save failed first
    assert (tmp_path / "sub" / "b.bin").read_bytes() == b"old b"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["a.json", "sub", "sub/b.bin"]


def test_write_files_stays_inside_its_directory(tmp_path):
    with pytest.raises(ValueError, match="'../x'"):
        safe_io.write_files(tmp_path / "d", {"../x": "escape"})
    assert not (tmp_path / "x").exists()
    (tmp_path / "model").write_text("a file")
    with pytest.raises(NotADirectoryError, match="model is a file, not a directory"):
        hf.save_pretrained(tmp_path / "model", *_tiny_bert(0))


# ---------------------------------------------------------------- loaders name the bad file

def _truncate(file: Path) -> None:
    os.truncate(file, file.stat().st_size // 2)


def _drop_field(field: str):
    def corrupt(file: Path) -> None:
        text = file.read_text()
        file.write_text(re.sub(rf'\s*"{field}": [^,\n]+,', "", text, count=1))
    return corrupt


@pytest.fixture(scope="module")
def saved(tiny_model, tmp_path_factory):  # noqa: F811
    """Pristine directories of each kind, copied by each test before it breaks one file."""
    root = tmp_path_factory.mktemp("saved")
    module, params = _tiny_bert(0)
    hf.save_pretrained(root / "hf", module, params)
    (root / "hf" / "tokenizer.json").write_text(tiny_model.tokenizer.to_str())
    tiny_model.save_pretrained(root / "gliner")
    _fitted_setfit(differentiable=True).save_pretrained(root / "setfit")
    return root


HF_LOAD = lambda p: hf.from_pretrained(p)  # noqa: E731
CASES = {
    "config.json invalid JSON": ("hf", "config.json", _truncate, HF_LOAD, "invalid JSON"),
    "config.json without hidden_size": ("hf", "config.json", _drop_field("hidden_size"), HF_LOAD,
                                        "required field 'hidden_size' is missing"),
    "model.safetensors truncated": ("hf", "model.safetensors", _truncate, HF_LOAD, "truncated or corrupt"),
    "tokenizer.json truncated": ("hf", "tokenizer.json", _truncate, hf.load_tokenizer, "truncated or malformed"),
    "gliner_config.json invalid JSON": ("gliner", "gliner_config.json", _truncate, GLiNER.from_pretrained,
                                        "invalid JSON"),
    "GLiNER model.safetensors truncated": ("gliner", "model.safetensors", _truncate, GLiNER.from_pretrained,
                                           "truncated or corrupt"),
    "config_setfit.json invalid JSON": ("setfit", "config_setfit.json", _truncate, SetFitModel.from_pretrained,
                                        "invalid JSON"),
    "modules.json invalid JSON": ("setfit", "modules.json", _truncate, SetFitModel.from_pretrained, "invalid JSON"),
    "model_head.npz truncated": ("setfit", "model_head.npz", _truncate, SetFitModel.from_pretrained,
                                 "truncated or corrupt"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_loader_error_names_the_bad_file(case, saved, tmp_path):
    kind, name, corrupt, load, what = CASES[case]
    directory = Path(shutil.copytree(saved / kind, tmp_path / kind))
    corrupt(directory / name)
    with pytest.raises(ValueError, match=re.escape(str(directory / name)) + ".*" + re.escape(what)):
        load(directory)
