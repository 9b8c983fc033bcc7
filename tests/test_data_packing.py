"""Greedy sequence packing: chunking, best-fit rows, packed layout, and efficiency on real code."""

import math
import sysconfig
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from modernbert_jax.data import packing
from modernbert_jax.data.pipeline import PretrainPipeline
from modernbert_jax.data.sentencepiece_tokenizer import train_sentencepiece
from modernbert_jax.data.sources import InMemorySource

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def documents():
    # A realistic mix of lengths: whole modules (long, split into chunks) and their individual
    # top-level blocks (short, often a few lines), from real standard-library files.
    texts = []
    for path in sorted(STDLIB.glob("*.py"))[:80]:
        source = path.read_text(encoding="utf-8")
        texts.append(source)
        texts.extend(block for block in source.split("\n\n\n") if block.strip())
    return texts


@pytest.fixture(scope="module")
def tokenizer(documents):
    return train_sentencepiece(documents[::20], 1024)


def test_chunk_document_splits_long_documents_into_cls_sep_sequences():
    tokens = list(range(10, 33))  # 23 tokens
    chunks = packing.chunk_document(tokens, seq_len=10, cls_id=2, sep_id=3)
    assert [len(c) for c in chunks] == [10, 10, 9]  # 8 + 8 + 7 tokens
    assert all(c[0] == 2 and c[-1] == 3 for c in chunks)
    assert [t for c in chunks for t in c[1:-1]] == tokens
    assert packing.chunk_document([], 10, 2, 3) == []


def test_best_fit_decreasing_places_every_item_once_within_capacity():
    rng = np.random.default_rng(0)
    lengths = [int(x) for x in rng.integers(1, 129, size=500)]
    rows = packing.best_fit_decreasing(lengths, 128)
    assert sorted(i for r in rows for i in r) == list(range(500))
    assert all(sum(lengths[i] for i in r) <= 128 for r in rows)
    # Best-fit decreasing uses at most 11/9 OPT + 1 rows; OPT >= total / capacity.
    assert len(rows) <= math.ceil(11 / 9 * math.ceil(sum(lengths) / 128)) + 1
    assert rows == packing.best_fit_decreasing(lengths, 128)
    with pytest.raises(ValueError, match="item 1 has length 200"):
        packing.best_fit_decreasing([5, 200], 128)


def test_rows_to_arrays_restart_positions_per_segment():
    arrays = packing.rows_to_arrays([[[2, 7, 3], [2, 8, 9, 3]], [[2, 5, 3]]], seq_len=8, pad_id=0)
    np.testing.assert_array_equal(arrays["segment_ids"], [[1, 1, 1, 2, 2, 2, 2, 0], [1, 1, 1, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(arrays["positions"], [[0, 1, 2, 0, 1, 2, 3, 0], [0, 1, 2, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(arrays["input_ids"][1], [2, 5, 3, 0, 0, 0, 0, 0])


def _segments(batch):
    """Packed sequences of a batch with the MLM corruption undone (labels restored)."""
    ids = batch["input_ids"].copy()
    for b in range(ids.shape[0]):
        real = batch["masked_weights"][b] > 0
        ids[b, batch["masked_positions"][b][real]] = batch["masked_labels"][b][real]
    out = []
    for b in range(ids.shape[0]):
        seg, pos = batch["segment_ids"][b], batch["positions"][b]
        for s in range(1, seg.max() + 1):
            where = np.flatnonzero(seg == s)
            assert np.array_equal(where, np.arange(where[0], where[-1] + 1)), "segment not contiguous"
            np.testing.assert_array_equal(pos[where], np.arange(len(where)))
            out.append(tuple(ids[b, where]))
        n_real = int((seg > 0).sum())
        assert (seg[n_real:] == 0).all(), "padding must follow the packed segments"
    return out


def test_packing_efficiency_on_real_code_mix(documents, tokenizer):
    pipe = PretrainPipeline(InMemorySource(documents), tokenizer, batch_size=16, seq_len=512, seed=0)
    for _ in range(40):
        batch = next(pipe)
        for segment in _segments(batch):
            assert segment[0] == tokenizer.cls_id and segment[-1] == tokenizer.sep_id
    assert pipe.packing_efficiency > 0.95, pipe.packing_efficiency


def test_one_pass_emits_every_chunk_exactly_once(documents, tokenizer):
    docs = documents[:150]
    pipe = PretrainPipeline(InMemorySource(docs), tokenizer, batch_size=8, seq_len=256, seed=1,
                            shuffle=False, num_epochs=1, mask_rate=0.15)
    seen = Counter(s for batch in pipe for s in _segments(batch))
    expected = Counter(tuple(c) for d in docs
                       for c in packing.chunk_document(tokenizer.encode(d), 256, tokenizer.cls_id, tokenizer.sep_id))
    assert seen == expected
