"""PairSampler against the reference ``setfit.sampler.ContrastiveDataset``: same pairs, same order."""

import numpy as np
import pytest
import setfit.sampler as setfit_sampler

from setfit_jax import sampler


def _reference_pairs(labels, multilabel, num_iterations, strategy, max_pairs):
    texts = [f"s{i}" for i in range(len(labels))]
    y = [list(row) for row in labels] if multilabel else list(labels)
    ds = setfit_sampler.ContrastiveDataset(texts, y, multilabel, num_iterations, strategy, max_pairs)
    return [(r["sentence_1"], r["sentence_2"], r["label"]) for r in ds]


@pytest.mark.parametrize("n,k,num_iterations,strategy,max_pairs,multilabel", [
    (20, 3, None, "oversampling", -1, False),
    (30, 4, None, "undersampling", -1, False),
    (25, 5, None, "unique", -1, False),
    (40, 4, 3, "oversampling", -1, False),
    (40, 4, None, "oversampling", 64, False),   # capped by max_steps * batch_size
    (12, 3, 20, "oversampling", 32, False),     # cap smaller than num_iterations asks: cycles
    (9, 9, None, "oversampling", -1, False),    # one example per class: only self-pairs are positive
    (15, 3, None, "oversampling", -1, True),
])
def test_pairs_match_reference(n, k, num_iterations, strategy, max_pairs, multilabel):
    rng = np.random.default_rng(n * 31 + k)
    labels = rng.integers(0, 2, size=(n, k)) if multilabel else (np.arange(n) % k)[rng.permutation(n)]
    ours = sampler.PairSampler(labels, multilabel=multilabel, num_iterations=num_iterations,
                               sampling_strategy=strategy, max_pairs=max_pairs).sample()
    got = [(f"s{i}", f"s{j}", float(t)) for i, j, t in zip(ours.first, ours.second, ours.target)]
    assert got == _reference_pairs(labels, multilabel, num_iterations, strategy, max_pairs)


def test_string_labels_and_self_pairs():
    pairs = sampler.PairSampler(["a", "b", "a", "b"], sampling_strategy="unique").sample()
    assert len(pairs) == 10  # all i <= j pairs, self-pairs included
    same = np.array(["a", "b", "a", "b"])
    np.testing.assert_array_equal(pairs.target, (same[pairs.first] == same[pairs.second]).astype(np.float32))


def test_sampled_mode_is_deterministic_and_correct():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 300, size=20_000)  # 2e8 candidate pairs: never enumerated
    s = sampler.PairSampler(labels, max_pairs=2000, exact_limit=1 << 20)
    assert not s.exact
    a, b = s.sample(seed=3), s.sample(seed=3)
    np.testing.assert_array_equal(a.first, b.first)
    assert len(a) == 2000
    np.testing.assert_array_equal(a.target, (labels[a.first] == labels[a.second]).astype(np.float32))
    assert a.target.sum() == 1000  # balanced, though positives are ~0.3% of candidates
    assert len(set(zip(a.first.tolist(), a.second.tolist()))) == 2000  # without replacement


def test_single_class_is_an_error():
    with pytest.raises(ValueError, match="single class"):
        sampler.PairSampler([1, 1, 1])


def test_bad_strategy():
    with pytest.raises(ValueError, match="sampling_strategy"):
        sampler.PairSampler([0, 1], sampling_strategy="balanced")


def test_group_by_label_batches():
    labels = np.array([0] * 7 + [1] * 4 + [2] * 5 + [3])
    batches = sampler.group_by_label_batches(labels, 6, seed=0, epoch=0)
    flat = np.concatenate(batches)
    assert len(flat) == len(set(flat.tolist()))
    assert 16 not in flat  # the single-example class cannot form a pair
    for b in batches:
        counts = np.bincount(labels[b])
        assert (counts[counts > 0] >= 2).all() and (counts > 0).sum() >= 2
    again = sampler.group_by_label_batches(labels, 6, seed=0, epoch=0)
    assert all((x == y).all() for x, y in zip(batches, again))
