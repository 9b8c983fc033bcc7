"""PretrainPipeline: resume gives exactly the same batches, host slices equal the global batch."""

import json
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from modernbert_jax.data.pipeline import PretrainPipeline
from modernbert_jax.data.sentencepiece_tokenizer import train_sentencepiece
from modernbert_jax.data.sources import InMemorySource

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def source():
    # Small real modules (few rows each), so a handful of batches crosses epoch boundaries.
    files = sorted(p for p in STDLIB.glob("*.py") if 500 < p.stat().st_size < 6000)[:10]
    return InMemorySource([p.read_text(encoding="utf-8") for p in files])


@pytest.fixture(scope="module")
def tokenizer(source):
    return train_sentencepiece([source[i] for i in range(len(source))], 1024)


def _pipeline(source, tokenizer, **kw):
    args = dict(batch_size=4, seq_len=128, seed=3)
    args.update(kw)
    return PretrainPipeline(source, tokenizer, **args)


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_from_json_state_repeats_the_exact_batches(source, tokenizer):
    reference = _pipeline(source, tokenizer)
    expected = [next(reference) for _ in range(100)]
    assert reference.epoch >= 2, "the test should cross epoch boundaries"

    first = _pipeline(source, tokenizer)
    for _ in range(37):
        next(first)
    state = json.loads(json.dumps(first.get_state()))
    assert state["pending"], "resume should restore chunks waiting in the packing buffer"
    resumed = _pipeline(source, tokenizer)
    resumed.set_state(state)
    for want in expected[37:]:
        _assert_same(next(resumed), want)
    assert resumed.packing_efficiency == reference.packing_efficiency


def test_epochs_are_reshuffled_and_seeds_differ(source, tokenizer):
    a, b = _pipeline(source, tokenizer), _pipeline(source, tokenizer, seed=4)
    assert not np.array_equal(next(a)["input_ids"], next(b)["input_ids"])
    assert not np.array_equal(a._permutation(0), a._permutation(1))


def test_host_slices_concatenate_to_the_single_host_batch(source, tokenizer):
    single = _pipeline(source, tokenizer, batch_size=8)
    hosts = [_pipeline(source, tokenizer, batch_size=8, process_index=i, process_count=2) for i in range(2)]
    for _ in range(5):
        whole = next(single)
        parts = [next(h) for h in hosts]
        assert parts[0]["input_ids"].shape == (4, 128)
        _assert_same(whole, {k: np.concatenate([p[k] for p in parts]) for k in whole})


def test_batch_size_can_change_between_steps(source, tokenizer):
    # Batch-size warmup: a run that switches size must still resume exactly.
    a = _pipeline(source, tokenizer)
    sizes = [2, 2, 4, 6, 8]
    first = [a.next_batch(s) for s in sizes[:3]]
    assert [f["input_ids"].shape[0] for f in first] == [2, 2, 4]
    state = a.get_state()
    b = _pipeline(source, tokenizer)
    b.set_state(state)
    for s in sizes[3:]:
        _assert_same(a.next_batch(s), b.next_batch(s))


def test_state_from_another_configuration_is_rejected(source, tokenizer):
    state = _pipeline(source, tokenizer).get_state()
    with pytest.raises(ValueError, match="seed=3.*seed=5"):
        _pipeline(source, tokenizer, seed=5).set_state(state)
    with pytest.raises(ValueError, match="seq_len"):
        _pipeline(source, tokenizer, seq_len=64).set_state(state)
    with pytest.raises(ValueError, match="packing"):
        _pipeline(source, tokenizer, packing=False).set_state(state)
    with pytest.raises(ValueError, match="process_count=2"):
        _pipeline(source, tokenizer, batch_size=3, process_count=2)


def test_unpacked_rows_hold_one_sequence_each_in_arrival_order(source, tokenizer):
    """``packing=False`` (the padded-batch ablation): every row is one chunk, padded; packed rows hold several."""
    # Short documents (the modules' paragraphs), so a packed row has room for several.
    source = InMemorySource([p for i in range(len(source)) for p in source[i].split("\n\n") if p.strip()])
    packed, padded = _pipeline(source, tokenizer, seq_len=256), _pipeline(source, tokenizer, seq_len=256, packing=False)
    pb, ub = packed.next_batch(), padded.next_batch()
    assert pb["segment_ids"].max() > 1
    np.testing.assert_array_equal(ub["segment_ids"].max(axis=1), 1)
    assert padded.packing_efficiency < packed.packing_efficiency
    # The unpacked rows are the first chunks read, in order: the first document's tokens lead row 0.
    first = tokenizer.encode_batch([source[int(padded._permutation(0)[0])]])[0]
    restored = ub["input_ids"][0].copy()
    targets = ub["masked_weights"][0] > 0
    restored[ub["masked_positions"][0][targets]] = ub["masked_labels"][0][targets]
    n = min(len(first), 100)
    assert restored[1 : 1 + n].tolist() == first[:n]  # after [CLS]
    state = padded.get_state()
    after = padded.next_batch()
    resumed = _pipeline(source, tokenizer, seq_len=256, packing=False)
    resumed.set_state(state)
    _assert_same(resumed.next_batch(), after)
