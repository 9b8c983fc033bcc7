"""The efficiency table's measurements: the largest-batch search and the tokens it counts."""

import functools

import jax
import numpy as np
import pytest

from experiments import efficiency
from modernbert_jax import config as config_lib
from modernbert_jax import model


@pytest.mark.parametrize("budget", [0, 1_036, 1_037, 5_000, 123_456, 10**6, 10**9])
@pytest.mark.parametrize("curve", [lambda b: 1_000 + 37 * b + b * b // 500,  # convex
                                   lambda b: 5_000 + 4_096 * ((b + 7) // 8)],  # steps of 8 rows
                         ids=["convex", "steps"])
def test_largest_batch_matches_an_exhaustive_search(curve, budget):
    limit = 1 << 12
    expected = max([b for b in range(1, limit + 1) if curve(b) <= budget], default=0)
    assert efficiency.largest_batch(curve, budget, limit=limit) == expected


def test_largest_batch_fits_the_compiled_memory_and_one_more_row_does_not():
    cfg = config_lib.replaced(config_lib.model_config("tiny"), num_layers=1, hidden_size=32, num_heads=2,
                              intermediate_size=64, vocab_size=256)
    module = model.Encoder(cfg)
    forward = efficiency.forward_fn(module)
    # Shapes only: the memory analysis needs no weights, and skipping init saves a compilation.
    params = jax.eval_shape(lambda key: model.init_params(module, key), jax.random.key(0))
    # Each call compiles; the search's logic is covered above, so three batch sizes suffice here.
    memory = functools.lru_cache(lambda b: efficiency.compiled_bytes(forward, params, b, 16))
    assert memory(3) > memory(2) > memory(1)  # the analysis sees the batch, not only the weights
    budget = (memory(2) + memory(3)) // 2  # a tiny budget between two and three rows
    found = efficiency.largest_batch(memory, budget)
    assert memory(found) <= budget < memory(found + 1)
    assert found == 2


def test_packed_and_padded_batches_count_only_the_real_tokens():
    rng = np.random.default_rng(0)
    lengths = efficiency.sequence_lengths("variable", 21, 64, rng)
    seqs = efficiency.sequences(lengths, 100, rng)
    packed = efficiency.packed_batches(seqs, 64, batch=3)
    padded = efficiency.padded_batches(seqs, batch=6)
    for batches in (packed, padded):
        assert batches.real_tokens == sum(lengths)
        assert sum(int((a["segment_ids"] > 0).sum()) for a in batches.arrays) == sum(lengths)
        assert batches.slots > batches.real_tokens  # both carry some padding, counted apart
    # Packing keeps every sequence whole and only once.
    packed_tokens = sorted(t for a in packed.arrays for t in a["input_ids"][a["segment_ids"] > 0])
    assert packed_tokens == sorted(t for s in seqs for t in s)
    assert {a["input_ids"].shape for a in packed.arrays} == {(3, 64)}  # one shape: one compilation
    # BERT's rows: one sequence each, padded to the longest of their batch.
    assert [a["input_ids"].shape for a in padded.arrays] == [
        (len(lengths[i:i + 6]), max(lengths[i:i + 6])) for i in range(0, 21, 6)]
    assert padded.slots > packed.slots  # which is what unpadding saves


def test_variable_lengths_follow_the_papers_distribution():
    lengths = efficiency.sequence_lengths("variable", 20_000, 512, np.random.default_rng(0))
    assert lengths.min() >= 1 and lengths.max() <= 512
    assert abs(lengths.mean() - 256) < 2 and abs(lengths.std() - 64) < 2  # the paper's 256 ± 64
    assert set(efficiency.sequence_lengths("fixed", 5, 512, np.random.default_rng(0))) == {512}
