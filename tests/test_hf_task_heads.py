"""Parity of the Hugging Face task heads with `transformers`: sequence and token classification.

Each case is a tiny random-initialised `transformers` model of a head (norms and biases perturbed
so a misplaced one shows), in eval mode, saved with its own ``save_pretrained``. Tolerance: max
|ours - torch| <= 1e-4 on the logits of a padded batch with a real attention mask (float32, CPU;
per-token logits on non-padding positions only); 1e-5 between our packed path (several sequences
to a row, pooled per slot) and the padded one, and after a save → `transformers` load round trip.
Sizes are the smallest that still exercise each family (one BERT-like layer; ModernBERT's global
and local layer), and the forwards run with the in-model input checks off (`model.checked_on_host`:
the inputs here are known good), both to keep the file's compilations within its time budget.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from modernbert_jax import hf, hf_families, model
from modernbert_jax.data import packing
from torch_models import perturb_norms_and_biases

TOL = 1e-4
VOCAB = 101
LENGTHS = [23, 9, 16]
_BERT_SIZES = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=48,
                   max_position_embeddings=64)


def _modernbert(**kw) -> transformers.ModernBertConfig:
    return transformers.ModernBertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
        max_position_embeddings=64, local_attention=8, global_attn_every_n_layers=2, pad_token_id=0, bos_token_id=1,
        eos_token_id=2, cls_token_id=1, sep_token_id=2, classifier_bias=True, attn_implementation="eager", **kw)


SEQ, TOKEN = "sequence_classification", "token_classification"
_DEBERTA_V3 = dict(relative_attention=True, position_buckets=8, max_relative_positions=64, pos_att_type="p2c|c2p",
                   share_att_key=True, position_biased_input=False, type_vocab_size=0, pad_token_id=0)
# name -> (transformers class, config, our head, pad id, labels, problem_type)
CASES = {
    "bert-seq": (transformers.BertForSequenceClassification, transformers.BertConfig(**_BERT_SIZES, num_labels=3),
                 SEQ, 0, ("neg", "neu", "pos"), "single_label_classification"),
    "bert-token": (transformers.BertForTokenClassification, transformers.BertConfig(**_BERT_SIZES, num_labels=5),
                   TOKEN, 0, ("O", "B-func", "I-func", "B-class", "I-class"), None),
    "modernbert-seq-cls": (transformers.ModernBertForSequenceClassification,
                           _modernbert(num_labels=4, classifier_pooling="cls"), SEQ, 0, ("a", "b", "c", "d"),
                           "multi_label_classification"),
    "modernbert-seq-mean": (transformers.ModernBertForSequenceClassification,
                            _modernbert(num_labels=1, classifier_pooling="mean"), SEQ, 0, (), "regression"),
    "modernbert-token": (transformers.ModernBertForTokenClassification, _modernbert(num_labels=3), TOKEN, 0,
                         ("O", "B-x", "I-x"), None),
    "roberta-seq": (transformers.RobertaForSequenceClassification,
                    transformers.RobertaConfig(**{**_BERT_SIZES, "max_position_embeddings": 72}, pad_token_id=1,
                                               type_vocab_size=1, num_labels=3), SEQ, 1, ("x", "y", "z"), None),
    "deberta-v3-seq": (transformers.DebertaV2ForSequenceClassification,
                       transformers.DebertaV2Config(**_BERT_SIZES, **_DEBERTA_V3, norm_rel_ebd="layer_norm",
                                                    num_labels=3),
                       SEQ, 0, ("a", "b", "c"), None),
}
# Families whose heads repeat a structure tested above under other tensor names: loaded and saved
# back, their tensors must be the reference's, name for name and bit for bit.
NAME_CASES = {
    "mpnet-seq": (transformers.MPNetForSequenceClassification,
                  transformers.MPNetConfig(**{**_BERT_SIZES, "max_position_embeddings": 72}, num_labels=2), SEQ),
    "xlm-roberta-seq": (transformers.XLMRobertaForSequenceClassification,
                        transformers.XLMRobertaConfig(**{**_BERT_SIZES, "max_position_embeddings": 72},
                                                      pad_token_id=1, num_labels=3), SEQ),
    "roberta-token": (transformers.RobertaForTokenClassification,
                      transformers.RobertaConfig(**{**_BERT_SIZES, "max_position_embeddings": 72}, pad_token_id=1,
                                                 num_labels=3), TOKEN),
    "mpnet-token": (transformers.MPNetForTokenClassification,
                    transformers.MPNetConfig(**{**_BERT_SIZES, "max_position_embeddings": 72}, num_labels=3), TOKEN),
    "deberta-v3-token": (transformers.DebertaV2ForTokenClassification,
                         transformers.DebertaV2Config(**_BERT_SIZES, **_DEBERTA_V3, num_labels=3), TOKEN),
}
_AUTO = {SEQ: transformers.AutoModelForSequenceClassification, TOKEN: transformers.AutoModelForTokenClassification}


def _padded_batch(pad: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    T = max(LENGTHS)
    ids = rng.integers(5, VOCAB, size=(len(LENGTHS), T))
    mask = (np.arange(T)[None] < np.array(LENGTHS)[:, None]).astype(np.int64)
    return np.where(mask, ids, pad), mask


def _torch_logits(model, ids, mask) -> np.ndarray:
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits.numpy()


def _max_err(ours, theirs, mask, head) -> float:
    diff = np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64))
    return float((diff[mask.astype(bool)] if head == TOKEN else diff).max())


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory):
    """(reference model, its directory, our head, pad id, labels, problem_type, our (module, params))."""
    cls, cfg, head, pad, labels, problem_type = CASES[request.param]
    torch.manual_seed(0)
    ref = perturb_norms_and_biases(cls(cfg).eval())
    path = tmp_path_factory.mktemp(request.param)
    ref.save_pretrained(path)
    return ref, path, head, pad, labels, problem_type, hf.from_pretrained(path, head=head)


def test_logits_match_transformers_padded_and_packed(case):
    ref, _, head, pad, _, _, (module, params) = case
    ids, mask = _padded_batch(pad)
    apply = jax.jit(module.clone(config=model.checked_on_host(module.config)).apply)
    padded = np.asarray(apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask)))
    assert _max_err(padded, _torch_logits(ref, ids, mask), mask, head) <= TOL
    if head == TOKEN:  # per-token logits are the encoder's packed states, classified (test_hf_families)
        return

    # The same sequences packed two rows deep; sequence logits come back per slot, in order.
    batch = packing.pack([list(row[:n]) for row, n in zip(ids, LENGTHS)], rows=2, row_len=32, num_slots=4,
                         pad_id=pad)
    packed = np.asarray(apply({"params": params}, jnp.asarray(batch.input_ids), jnp.asarray(batch.segment_ids),
                              jnp.asarray(batch.positions), token_slot=jnp.asarray(batch.token_slot),
                              slot_first=jnp.asarray(batch.slot_first)))
    assert packed.shape == (4, module.num_labels)
    np.testing.assert_allclose(packed[:len(LENGTHS)], padded, atol=1e-5)


def test_save_and_transformers_load_back(case, tmp_path):
    ref, _, head, pad, labels, problem_type, (module, params) = case
    out = hf.save_pretrained(tmp_path / "ours", module, params, labels=labels, problem_type=problem_type)
    back = _AUTO[head].from_pretrained(out, attn_implementation="eager").eval()
    assert type(back) is type(ref)
    ids, mask = _padded_batch(pad, seed=1)
    assert _max_err(_torch_logits(back, ids, mask), _torch_logits(ref, ids, mask), mask, head) <= 1e-5
    expected = labels or tuple(f"LABEL_{i}" for i in range(module.num_labels))
    assert tuple(back.config.id2label[i] for i in range(back.config.num_labels)) == expected
    assert back.config.problem_type == problem_type
    assert hf.task_labels(out) == (expected, problem_type)


@pytest.mark.parametrize("name", list(NAME_CASES))
def test_tensor_names_round_trip(name, tmp_path):
    from safetensors.numpy import load_file

    cls, cfg, head = NAME_CASES[name]
    torch.manual_seed(0)
    perturb_norms_and_biases(cls(cfg)).save_pretrained(tmp_path / "ref")
    module, params = hf.from_pretrained(tmp_path / "ref", head=head)
    out = hf.save_pretrained(tmp_path / "ours", module, params)
    ref, ours = (load_file(str(d / "model.safetensors")) for d in (tmp_path / "ref", out))
    # All the reference's tensors but its position_ids buffer, which we do not keep.
    assert set(ours) == {k for k in ref if not k.endswith("position_ids")}
    for key, value in ours.items():
        np.testing.assert_array_equal(value, ref[key], err_msg=key)
    assert json.loads((out / "config.json").read_text())["architectures"] == [cls.__name__]


# family config -> our (pooler_dropout, classifier_dropout), as each family's classes apply them in training.
DROPOUTS = [
    (transformers.BertConfig(hidden_dropout_prob=0.2), (0.0, 0.2)),
    (transformers.BertConfig(hidden_dropout_prob=0.2, classifier_dropout=0.3), (0.0, 0.3)),
    (transformers.RobertaConfig(hidden_dropout_prob=0.2, classifier_dropout=0.3), (0.3, 0.3)),
    (transformers.MPNetConfig(hidden_dropout_prob=0.2, classifier_dropout=0.3), (0.2, 0.2)),  # MPNet ignores it
    (transformers.DebertaV2Config(hidden_dropout_prob=0.2, pooler_dropout=0.1, cls_dropout=0.3), (0.1, 0.3)),
    (transformers.DebertaV2Config(hidden_dropout_prob=0.2), (0.0, 0.2)),
    (transformers.ModernBertConfig(classifier_dropout=0.3), (0.0, 0.3)),
]


@pytest.mark.parametrize("hf_config, expected", DROPOUTS, ids=[f"{type(c).__name__}-{i}" for i, (c, _) in enumerate(DROPOUTS)])
def test_classifier_dropouts_follow_transformers(hf_config, expected):
    cfg = hf_families.config_from_hf(hf_config.to_dict())
    assert (cfg.pooler_dropout, cfg.classifier_dropout) == pytest.approx(expected)
    back = hf_families.config_from_hf(hf_families.config_to_hf(cfg, SEQ))  # and our config.json keeps them
    assert (back.pooler_dropout, back.classifier_dropout) == pytest.approx(expected)


@pytest.fixture(scope="module")
def bert_encoder_dir(tmp_path_factory):
    """A bare BertModel (with its pooler), as fine-tuning starts from it."""
    torch.manual_seed(1)
    bert = perturb_norms_and_biases(transformers.BertModel(transformers.BertConfig(**_BERT_SIZES)).eval())
    path = tmp_path_factory.mktemp("bert_encoder")
    bert.save_pretrained(path)
    return path, bert


def test_fresh_head_on_a_bare_encoder(bert_encoder_dir):
    path, bert = bert_encoder_dir
    _, encoder = hf.from_pretrained(path)
    module, params = hf.from_pretrained(path, head=SEQ, num_labels=4, rng=jax.random.key(3))
    assert module.num_labels == 4
    jax.tree_util.tree_map(np.testing.assert_array_equal, params["encoder"], encoder)
    # transformers keeps BertModel's pooler for BertForSequenceClassification; so do we.
    np.testing.assert_array_equal(params["pooler"]["dense"]["kernel"], bert.pooler.dense.weight.detach().numpy().T)
    assert params["classifier"]["kernel"].shape == (32, 4) and params["classifier"]["bias"].shape == (4,)
    _, token_params = hf.from_pretrained(path, head=TOKEN, num_labels=7, rng=jax.random.key(3))
    assert set(token_params) == {"encoder", "classifier"} and token_params["classifier"]["kernel"].shape == (32, 7)


def test_bare_encoder_needs_num_labels_and_rng(bert_encoder_dir):
    path, _ = bert_encoder_dir
    with pytest.raises(ValueError, match="classifier.weight.*num_labels"):
        hf.from_pretrained(path, head=SEQ)
    with pytest.raises(ValueError, match="rng="):
        hf.from_pretrained(path, head=TOKEN, num_labels=3)
    with pytest.raises(ValueError, match="num_labels=3 is for a task head"):
        hf.from_pretrained(path, num_labels=3)


def test_num_labels_mismatch_names_the_tensor(case):
    ref, path, head, *_ = case
    n = ref.config.num_labels
    with pytest.raises(ValueError, match=rf"classifier(\.out_proj)?\.weight.*\({n}, 32\).*\({n + 1}, 32\)"):
        hf.from_pretrained(path, head=head, num_labels=n + 1)


def test_other_heads_checkpoint_names_the_tensor(case):
    ref, path, head, *_ = case
    other = TOKEN if head == SEQ else SEQ
    with pytest.raises(ValueError, match=rf"architectures=\['{type(ref).__name__}'\].*classifier.*weight.*shape"):
        hf.from_pretrained(path, head=other, num_labels=2, rng=jax.random.key(0))


def test_labels_must_fit_the_classifier(case, tmp_path):
    *_, (module, params) = case
    with pytest.raises(ValueError, match="num_labels"):
        hf.save_pretrained(tmp_path / "x", module, params, labels=tuple(f"c{i}" for i in range(module.num_labels + 1)))
    with pytest.raises(ValueError, match="problem_type"):
        hf.save_pretrained(tmp_path / "y", module, params, problem_type="ranking")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
