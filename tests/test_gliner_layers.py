"""GLiNER building blocks against the reference implementations they mirror.

The BiLSTM against ``torch.nn.LSTM`` over packed sequences, the focal/span loss against
the reference ``UniEncoderSpanModel.loss``, greedy decoding against the reference
``SpanDecoder``, plus word splitting and candidate merging. The reference libraries are
imported by the tests that compare against them, so the others do not depend on them.
"""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from gliner_jax import decoding, loss, words
from gliner_jax.lstm import BiLSTM


def test_bilstm_matches_torch_packed():
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    rng = np.random.default_rng(0)
    B, T, I, H = 3, 11, 10, 6  # T > the unroll factor
    x = rng.normal(size=(B, T, I)).astype(np.float32)
    lengths = np.array([7, 4, 1])
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True)
    packed = pack_padded_sequence(torch.from_numpy(x), torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
    expected, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=T)
    params = {}
    for layer in range(2):
        params[f"l{layer}"] = {}
        for ours, sfx in (("forward", ""), ("backward", "_reverse")):
            get = lambda n: getattr(lstm, f"{n}_l{layer}{sfx}").detach().numpy()  # noqa: E731
            params[f"l{layer}"].update({f"{ours}_w_ih": get("weight_ih").T, f"{ours}_w_hh": get("weight_hh").T,
                                        f"{ours}_bias": get("bias_ih") + get("bias_hh")})
    got = BiLSTM(H, 2).apply({"params": params}, jnp.asarray(x), jnp.asarray(lengths))
    np.testing.assert_allclose(np.asarray(got), expected.detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(alpha=0.75, gamma=2.0),
    dict(label_smoothing=0.1, prob_margin=0.05, reduction="mean"),
])
def test_span_loss_matches_reference(kwargs):
    import types

    import torch
    from gliner.modeling.base import BaseModel, UniEncoderSpanModel

    # The reference loss only needs ``self._loss``, which in turn uses no state.
    host = types.SimpleNamespace(_loss=lambda *a, **k: BaseModel._loss(None, *a, **k))

    rng = np.random.default_rng(1)
    B, W, K, C = 2, 5, 3, 4
    logits = rng.normal(size=(B, W, K, C)).astype(np.float32) * 3
    labels = (rng.random((B, W, K, C)) < 0.2).astype(np.float32)
    type_mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    span_valid = rng.random((B, W, K)) < 0.8
    ref_kwargs = dict(kwargs)
    expected = UniEncoderSpanModel.loss(
        host, torch.from_numpy(logits), torch.from_numpy(labels), torch.from_numpy(type_mask.astype(np.int64)),
        torch.from_numpy(span_valid.reshape(B, W * K)), **ref_kwargs)
    got = loss.span_loss(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(type_mask), jnp.asarray(span_valid),
                         **kwargs)
    np.testing.assert_allclose(float(got), float(expected), rtol=1e-5)


def test_negative_masking_keeps_positives():
    labels = jnp.zeros((2, 6, 3)).at[0, 2, 1].set(1.0)
    for mode in ("global", "label", "span"):
        keep = loss.negative_mask(labels, mode, 0.0, jax.random.key(0))
        assert float(keep[0, 2, 1]) == 1.0  # a positive is never dropped
        assert float(jnp.asarray(keep)[1].sum()) == 0.0  # negatives dropped with probability 1
    with pytest.raises(ValueError, match="masking"):
        loss.negative_mask(labels, "bogus", 1.0, None)


@pytest.mark.parametrize("flat_ner,multi_label", [(True, False), (False, False), (True, True), (False, True)])
def test_greedy_decoding_matches_reference(flat_ner, multi_label):
    import torch
    from gliner.decoding import SpanDecoder

    rng = np.random.default_rng(2)
    W, K, C = 9, 4, 3
    labels = ["a", "b", "c"]
    logits = rng.normal(size=(1, W, K, C)).astype(np.float32) * 2
    tokens = [["w"] * 7]  # two padded words
    ref = SpanDecoder(None).decode(tokens, {1: "a", 2: "b", 3: "c"}, torch.from_numpy(logits),
                                   flat_ner=flat_ner, threshold=0.6, multi_label=multi_label)[0]
    probs = 1 / (1 + np.exp(-logits[0].astype(np.float64))).astype(np.float32)
    spans = decoding.merge([decoding.candidate_spans(probs, 7, 0.6)])
    got = [(int(spans.start[i]), int(spans.end[i]), labels[spans.label[i]])
           for i in decoding.greedy_search(spans, flat_ner, multi_label)]
    assert got == [(s.start, s.end, s.entity_type) for s in ref]
    assert got, "the random scores should leave some spans"


def test_word_splitter_offsets():
    text = "Use os.path-join_x (or 東京) — naïve!"
    ws = words.split_words(text)
    assert [w.text for w in ws] == ["Use", "os", ".", "path-join_x", "(", "or", "東京", ")", "—", "naïve", "!"]
    assert all(text[w.start: w.end] == w.text for w in ws)
    assert words.split_words(" \n ") == []


def test_merge_keeps_best_score_at_first_position():
    """Windows and label passes can score the same span twice: one candidate, best score, first place."""
    a = decoding.Candidates(np.array([3, 0]), np.array([4, 1]), np.array([1, 0]), np.array([0.6, 0.9], np.float32))
    b = decoding.Candidates(np.array([5, 3]), np.array([5, 4]), np.array([0, 1]), np.array([0.7, 0.8], np.float32))
    merged = decoding.merge([a, b])
    assert list(zip(merged.start.tolist(), merged.end.tolist(), merged.label.tolist())) == [(3, 4, 1), (0, 1, 0), (5, 5, 0)]
    np.testing.assert_allclose(merged.score, [0.8, 0.9, 0.7])
    assert decoding.merge([]).score.size == 0
