"""GLiNER on a DeBERTa-v3 backbone, the one every published GLiNER model uses, against the
reference ``gliner`` library.

No real DeBERTa-v3 weights are downloadable here, so the backbone is a random ``transformers``
DeBERTa-v3 with odd sizes (5 heads of 12, 3 layers), its recipe (no absolute positions, 16 log
buckets, shared keys, a layer-normed relative table) and perturbed norms and biases, beside a
SentencePiece-style (Unigram, ``▁`` word prefix) ``DebertaV2Tokenizer`` saved as ``tokenizer.json``,
whose vocabulary is short enough that many words start with a lone ``▁`` piece (the sub-token whose
vector is the word's). Its token table has rows past the tokenizer's size, as the released one
(128,100 rows for 128,001 tokens), so the reference's resize cuts it.

The reference builds a GLiNER on that directory (projection 60 → 32, BiLSTM) with a random head
whose scores spread, and saves it; we load that and compare span probabilities (1e-4)
and ``predict_entities`` in flat, nested and multi-label modes; the reference reads our save back
with equal predictions. Training goes through ``experiment.train`` with ``backbone_path`` the
DeBERTa directory, and the reference reads the trained model.
"""

import json
import string

import gliner
import numpy as np
import pytest
import torch
import transformers
from test_gliner_parity import assert_predictions_match, reference_gliner, reference_logits

from gliner_jax import GLiNER, experiment, processor
from modernbert_jax import config as config_lib
from modernbert_jax import hf
from modernbert_jax.train import metrics as metrics_lib
from torch_models import perturb_norms_and_biases

TEXTS = [
    "Barack Obama was born in Honolulu, Hawaii on August 4, 1961, and later moved to Chicago.",
    "Call json.loads() to parse a string; it raises ValueError when the input is not valid JSON.",
    "Die Universität München wurde 1472 gegründet, another large university near Österreich.",
]
LABELS = ["person", "location", "date", "function", "organization"]
MODES = [(True, False), (False, False), (True, True)]
THRESHOLD = 0.5
# Scores agree within float32 noise, not to the last bit, so one printed at 4 decimals may round either way.
SCORE_TOL = 1e-4
_WORDS = ("the of and in to is was born city capital call parse string raises when input not valid see large "
          "another university founded on later moved function module class type error value person").split()
_PIECES = ("ing", "ed", "er", "es", "tion", "on", "an", "in", "ar", "or", "am", "ob", "ul", "at", "io")


def _tokenizer() -> transformers.DebertaV2Tokenizer:
    """DeBERTa-v3's special-token layout ([PAD] 0, [CLS] 1, [SEP] 2, [UNK] 3, [MASK] last) over a
    small Unigram vocabulary: whole words, a few sub-words, single characters (with and without
    ``▁``), and the lone ``▁``; anything else (``ä``, ``ü``) is [UNK]."""
    chars = string.ascii_letters + string.digits
    vocab = [("[PAD]", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[UNK]", 0.0), ("▁", -2.0)]
    vocab += [(c, -6.0) for c in chars + string.punctuation] + [("▁" + c, -6.5) for c in chars]
    vocab += [("▁" + w, -3.0) for w in _WORDS] + [(p, -4.0) for p in _PIECES] + [("[MASK]", 0.0)]
    return transformers.DebertaV2Tokenizer(vocab=vocab)


def assert_same_entities(got: list[dict], expected: list[dict]) -> None:
    """The same spans and labels in the same order, scores within ``SCORE_TOL``."""
    assert [(e["start"], e["end"], e["text"], e["label"]) for e in got] == \
        [(e["start"], e["end"], e["text"], e["label"]) for e in expected]
    np.testing.assert_allclose([e["score"] for e in got], [e["score"] for e in expected], atol=SCORE_TOL, rtol=0)


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    """A random DeBERTa-v3 encoder directory with its tokenizer."""
    path = tmp_path_factory.mktemp("deberta_v3")
    tok = _tokenizer()
    tok.save_pretrained(path)
    config = transformers.DebertaV2Config(
        vocab_size=len(tok) + 7, hidden_size=60, num_hidden_layers=3, num_attention_heads=5, intermediate_size=90,
        max_position_embeddings=128, relative_attention=True, position_buckets=16, max_relative_positions=64,
        pos_att_type="p2c|c2p", share_att_key=True, norm_rel_ebd="layer_norm", position_biased_input=False,
        type_vocab_size=0, layer_norm_eps=1e-7, pad_token_id=0)
    torch.manual_seed(0)
    model = transformers.DebertaV2Model(config).eval()
    perturb_norms_and_biases(model)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def models(backbone, tmp_path_factory):
    """(reference GLiNER, ours loaded from the reference's save, that directory)."""
    return reference_gliner(tmp_path_factory.mktemp("ref") / "gliner_deberta", backbone, 32, 0.18)


def test_backbone_is_deberta_v3_and_words_start_with_a_lone_metaspace(models):
    ref, ours, _ = models
    cfg = ours.encoder_config
    assert cfg.architecture == "deberta-v2" and cfg.relative_attention == "disentangled"
    assert cfg.position_embedding != "absolute" and cfg.pad_token_id == 0
    # The reference cut the padded table to the tokenizer's size (+3 prompt tokens); so did the load.
    assert cfg.vocab_size == len(ref.data_processor.transformer_tokenizer) == ours.tokenizer.get_vocab_size()
    enc = ours.tokenizer.encode(["Österreich", "Obama"], is_pretokenized=True, add_special_tokens=False)
    # A word whose first sub-token is a lone "▁": the case the first-sub-token rule must get right.
    assert enc.tokens[0] == "▁" and enc.word_ids[:2] == [0, 0] and "▁" not in enc.tokens[2:]


def test_span_scores_match_reference(models):
    ref, ours, _ = models
    expected, words = reference_logits(ref, TEXTS, LABELS)
    # The jitted probabilities predict_entities runs (its compilation is reused below).
    batch = processor.collate(processor.encode_batch(ours.tokenizer, words, [LABELS] * len(words)))
    got = np.asarray(ours._probs(ours.params, batch))
    spread = 0.0
    for b, w in enumerate(words):
        n = len(w)
        valid = (np.arange(n)[:, None] + np.arange(expected.shape[2])[None, :]) < n
        e = expected[b, :n][valid][:, : len(LABELS)]
        g = got[b, :n, : expected.shape[2]][valid][:, : len(LABELS)]
        np.testing.assert_allclose(g, 1 / (1 + np.exp(-e)), atol=1e-4, rtol=0)
        spread = max(spread, float(np.abs(e).max()))
    assert spread > 1.0, "the head's logits should spread for the comparison to mean something"


@pytest.mark.parametrize("flat_ner,multi_label", MODES)
def test_predict_entities_match_reference(models, flat_ner, multi_label):
    ref, ours, _ = models
    assert_predictions_match(ref, ours, TEXTS, LABELS, flat_ner, multi_label, assert_same_entities,
                             min_found=len(TEXTS) + 1)


def test_reference_reads_our_save(models, tmp_path):
    _, ours, _ = models
    out = ours.save_pretrained(tmp_path / "ours")
    reread = gliner.GLiNER.from_pretrained(str(out), local_files_only=True)
    for text in TEXTS[:2]:
        expected = ours.predict_entities(text, LABELS, threshold=THRESHOLD, multi_label=True)
        assert expected
        assert_same_entities(reread.predict_entities(text, LABELS, threshold=THRESHOLD, multi_label=True), expected)


def test_unsupported_backbone_names_the_supported_families(models, tmp_path):
    _, ours, _ = models
    path = ours.save_pretrained(tmp_path / "electra")
    values = json.loads((path / "gliner_config.json").read_text())
    values["encoder_config"].update(model_type="electra", architectures=["ElectraModel"])
    (path / "gliner_config.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match="electra.*ElectraModel.*" + ", ".join(hf.SUPPORTED)):
        GLiNER.from_pretrained(path)


_TRAIN = [
    ("Call json . loads to parse the string", [[1, 3, "function"]]),
    ("The os module was born in the city", [[1, 1, "module"]]),
    ("Barack Obama moved to Chicago later", [[0, 1, "person"], [4, 4, "location"]]),
    ("A ValueError raises when the input is not valid", [[1, 1, "class"]]),
]


def test_training_on_a_deberta_backbone_directory(backbone, tmp_path):
    """``experiment.train`` with ``backbone_path`` a DeBERTa-v3 directory: a finite, falling loss,
    and the saved model (new prompt-token rows, the cut table) is one the reference reads."""
    rows = [{"tokenized_text": text.split(), "ner": ner} for text, ner in _TRAIN]
    (tmp_path / "train.json").write_text(json.dumps(rows))
    cfg = config_lib.load_config("configs/gliner.py:demo=true")
    cfg.backbone_path = str(backbone)
    cfg.data.train_file = cfg.data.eval_file = str(tmp_path / "train.json")
    cfg.head.update(dict(hidden_size=32, max_width=4, max_types=4, dropout=0.0, num_rnn_layers=0))
    cfg.train.update(dict(num_steps=6, batch_size=4, max_words=10, max_tokens=32, log_every=1, checkpoint_every=6,
                          eval_every=6, bf16=False, learning_rate=1e-3, others_lr=3e-3, warmup_ratio=0.0))
    cfg.eval.update(dict(max_examples=0, batch_size=4, threshold=0.5))
    workdir = tmp_path / "run"
    summary = experiment.train(cfg, str(workdir))
    losses = [r["loss"] for r in metrics_lib.read_jsonl(str(workdir / "metrics.jsonl")) if r["split"] == "train"]
    assert len(losses) == 6 and np.isfinite(losses).all() and np.isfinite(summary["train"]["loss"])
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2]), losses
    ours = GLiNER.from_pretrained(workdir / "model")
    assert ours.encoder_config.vocab_size == ours.tokenizer.get_vocab_size()
    reread = gliner.GLiNER.from_pretrained(str(workdir / "model"), local_files_only=True)
    text = "Barack Obama moved to Chicago later"
    expected = ours.predict_entities(text, ["person", "location"], threshold=0.3)
    assert_same_entities(reread.predict_entities(text, ["person", "location"], threshold=0.3), expected)
