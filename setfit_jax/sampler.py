"""Pair sampling for SetFit's siamese stage: positive pairs share a label, negative pairs do not.

Matches ``setfit.sampler.ContrastiveDataset`` (setfit 1.2):

* candidate pairs are all (i, j) with i <= j (self-pairs included: a sentence paired with itself
  is a positive with target 1.0), visited in the order of ``RandomState(42).permutation`` over
  ``np.triu_indices(n, 0)`` -- the reference fixes 42 there whatever the training seed;
* positives and negatives are collected in that order, each capped at ``max_pairs // 2``
  (``max_pairs = max_steps * batch_size``), stopping once both are full;
* ``num_iterations=R`` asks for R * n positives and R * n negatives, otherwise the
  ``sampling_strategy`` decides: ``oversampling`` (default) repeats the smaller side up to the
  larger, ``undersampling`` truncates the larger to the smaller, ``unique`` keeps both as they are;
  a side shorter than requested is cycled;
* the output alternates positive, negative, positive, ... (the reference's ``zip_longest``).

The sampler works on indices, never on strings, and is vectorised: it walks the permutation in
chunks and stops as soon as the pairs it will emit are known, so a cap (``max_steps``) keeps it
fast on large inputs. Above ``exact_limit`` candidate pairs the full permutation itself would be
too large; it then draws candidates uniformly without replacement instead. That is the same
distribution over pair sets (a prefix of a uniform permutation, filtered by kind, is a uniform
sample of that kind without replacement) but not the reference's exact order.

Multi-label inputs (a 0/1 matrix) count a pair as positive when the two rows share any label.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from modernbert_jax.config import check_number

SAMPLING_STRATEGIES = ("oversampling", "undersampling", "unique")
_REFERENCE_PAIR_SEED = 42  # the reference shuffles candidate pairs with this seed, always
_CHUNK = 1 << 16


@dataclasses.dataclass(frozen=True)
class Pairs:
    """Sentence-index pairs with float targets (1.0 positive, 0.0 negative, or teacher similarity)."""

    first: np.ndarray  # [P] int
    second: np.ndarray  # [P] int
    target: np.ndarray  # [P] float32

    def __len__(self) -> int:
        return int(self.first.shape[0])


def _check_counts(num_iterations: int | None, max_pairs: int) -> None:
    if num_iterations is not None:
        check_number("num_iterations (or None)", num_iterations, low=1, integer=True)
    if max_pairs != -1:  # a cap below 2 leaves no pair of either kind
        check_number("max_pairs (or -1: no cap)", max_pairs, low=2, integer=True)


def triu_decode(k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Map flat indices into ``np.triu_indices(n, 0)`` (row-major) back to (row, col)."""
    rows = np.arange(n, dtype=np.int64)
    starts = rows * n - rows * (rows - 1) // 2
    i = np.searchsorted(starts, k, side="right") - 1
    j = k - starts[i] + i
    return i, j


def _is_positive(labels: np.ndarray, i: np.ndarray, j: np.ndarray, multilabel: bool) -> np.ndarray:
    if multilabel:
        return np.logical_and(labels[i], labels[j]).any(axis=-1)
    return labels[i] == labels[j]


def _kind_totals(labels: np.ndarray, multilabel: bool) -> tuple[int, int]:
    """Exact number of positive and negative candidate pairs (i <= j)."""
    n = labels.shape[0]
    total = n * (n + 1) // 2
    if multilabel:
        shares = (labels.astype(np.int64) @ labels.astype(np.int64).T) > 0
        positive = int(np.triu(shares).sum())
    else:
        _, counts = np.unique(labels, return_counts=True)
        positive = int((counts * (counts + 1) // 2).sum())
    return positive, total - positive


def _emitted_lengths(n_pos: int, n_neg: int, n: int, num_iterations: int | None, strategy: str) -> tuple[int, int]:
    if num_iterations is not None and num_iterations > 0:
        return num_iterations * n, num_iterations * n
    if strategy == "unique":
        return n_pos, n_neg
    if strategy == "undersampling":
        return (min(n_pos, n_neg),) * 2
    return (max(n_pos, n_neg),) * 2


def _cycle(idx: np.ndarray, length: int) -> np.ndarray:
    if length == 0 or idx.shape[0] == 0:
        return idx[:0]
    return np.resize(idx, length)  # np.resize repeats the array cyclically


def _interleave(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """pos0, neg0, pos1, neg1, ... then the tail of the longer one (``zip_longest``)."""
    m = min(pos.shape[0], neg.shape[0])
    head = np.stack([pos[:m], neg[:m]], axis=1).reshape(-1)
    return np.concatenate([head, pos[m:], neg[m:]])


class PairSampler:
    """Generates the reference's contrastive pair list over sentence indices.

    Args:
        labels: [n] class ids (any hashable values), or [n, C] 0/1 matrix when ``multilabel``.
        multilabel: pairs are positive when they share at least one label.
        num_iterations: if set (> 0), emit R * n positives and R * n negatives.
        sampling_strategy: ``oversampling`` | ``undersampling`` | ``unique``.
        max_pairs: -1 for no cap, else each side holds at most ``max_pairs // 2`` distinct pairs.
        exact_limit: above this many candidate pairs, sample instead of permuting (see module doc).
    """

    def __init__(
        self,
        labels: Sequence | np.ndarray,
        *,
        multilabel: bool = False,
        num_iterations: int | None = None,
        sampling_strategy: str = "oversampling",
        max_pairs: int = -1,
        exact_limit: int = 1 << 23,
    ) -> None:
        if sampling_strategy not in SAMPLING_STRATEGIES:
            raise ValueError(
                f"sampling_strategy={sampling_strategy!r}: must be one of {SAMPLING_STRATEGIES}."
            )
        _check_counts(num_iterations, max_pairs)
        check_number("exact_limit", exact_limit, low=1, integer=True)
        labels = np.asarray(labels)
        if multilabel and labels.ndim != 2:
            raise ValueError(f"multilabel labels must be a [n, num_classes] 0/1 matrix, got shape {labels.shape}.")
        if not multilabel:
            _, labels = np.unique(labels, return_inverse=True)
        self.labels = labels
        self.multilabel = multilabel
        self.n = int(labels.shape[0])
        if self.n == 0:
            raise ValueError("PairSampler needs at least one sentence, got an empty label list.")
        self.total = self.n * (self.n + 1) // 2
        cap = -1 if max_pairs == -1 else max_pairs // 2
        total_pos, total_neg = _kind_totals(labels, multilabel)
        # Sizes of the reference's pos_pairs / neg_pairs lists, then how many pairs it emits.
        self.n_pos = total_pos if cap == -1 else min(cap, total_pos)
        self.n_neg = total_neg if cap == -1 else min(cap, total_neg)
        self.len_pos, self.len_neg = _emitted_lengths(self.n_pos, self.n_neg, self.n, num_iterations, sampling_strategy)
        # Only the first min(list size, emitted length) entries of each list are ever used.
        self._need_pos = min(self.n_pos, self.len_pos)
        self._need_neg = min(self.n_neg, self.len_neg)
        if self.len_neg > 0 and self.n_neg == 0:
            raise ValueError(
                "no negative pairs can be formed: every example shares a label with every other "
                "(a single class). SetFit needs at least two classes."
            )
        if self.len_pos > 0 and self.n_pos == 0:
            raise ValueError("no positive pairs can be formed: no two examples share a label.")
        self.exact = self.total <= exact_limit

    def __len__(self) -> int:
        return self.len_pos + self.len_neg

    def _collect_exact(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.random.RandomState(_REFERENCE_PAIR_SEED).permutation(self.total)
        return self._collect(iter(np.array_split(order, max(1, self.total // _CHUNK))))

    def _collect_sampled(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        seen: set[int] = set()

        def chunks():
            while True:
                draw = rng.integers(0, self.total, size=_CHUNK)
                _, first = np.unique(draw, return_index=True)
                draw = draw[np.sort(first)]
                fresh = np.fromiter((k for k in draw.tolist() if k not in seen), dtype=np.int64)
                seen.update(fresh.tolist())
                yield fresh

        return self._collect(chunks())

    def _collect(self, chunks) -> tuple[np.ndarray, np.ndarray]:
        pos, neg = [], []
        got_pos = got_neg = 0
        for k in chunks:
            if got_pos >= self._need_pos and got_neg >= self._need_neg:
                break
            i, j = triu_decode(k, self.n)
            is_pos = _is_positive(self.labels, i, j, self.multilabel)
            pos.append(k[is_pos][: max(0, self._need_pos - got_pos)])
            neg.append(k[~is_pos][: max(0, self._need_neg - got_neg)])
            got_pos += pos[-1].shape[0]
            got_neg += neg[-1].shape[0]
        empty = np.zeros((0,), np.int64)
        return np.concatenate(pos or [empty]), np.concatenate(neg or [empty])

    def sample(self, seed: int = 0) -> Pairs:
        """The emitted pair list. ``seed`` only matters above ``exact_limit`` (sampled mode)."""
        if self.exact:
            pos, neg = self._collect_exact()
        else:
            pos, neg = self._collect_sampled(seed)
        pos = _cycle(pos, self.len_pos)
        neg = _cycle(neg, self.len_neg)
        k = _interleave(pos, neg)
        i, j = triu_decode(k, self.n)
        target = _interleave(np.ones(pos.shape[0]), np.zeros(neg.shape[0]))
        return Pairs(i.astype(np.int32), j.astype(np.int32), target.astype(np.float32))


def distillation_pairs(
    teacher_similarity: np.ndarray,
    *,
    num_iterations: int | None = None,
    max_pairs: int = -1,
) -> Pairs:
    """All candidate pairs in the reference order, targets = the teacher's cosine similarity.

    ``setfit.sampler.ContrastiveDistillationDataset`` intends this but looks the similarity up by
    label instead of by sentence index (every target becomes ``sim[0][0]``); we use the indices.
    """
    _check_counts(num_iterations, max_pairs)
    if teacher_similarity.ndim != 2 or teacher_similarity.shape[0] != teacher_similarity.shape[1]:
        raise ValueError(f"teacher_similarity must be a square [n, n] matrix, got shape {teacher_similarity.shape}")
    n = teacher_similarity.shape[0]
    if n == 0:
        raise ValueError("distillation needs at least one sentence, got an empty teacher_similarity")
    total = n * (n + 1) // 2
    order = np.random.RandomState(_REFERENCE_PAIR_SEED).permutation(total)
    if max_pairs != -1:
        order = order[: max_pairs // 2 + 1]
    length = num_iterations * n if num_iterations else order.shape[0]
    k = _cycle(order, length)
    i, j = triu_decode(k, n)
    return Pairs(i.astype(np.int32), j.astype(np.int32), teacher_similarity[i, j].astype(np.float32))


def epoch_order(num_pairs: int, seed: int, epoch: int) -> np.ndarray:
    """Shuffled pair order for one epoch (the reference's trainer shuffles with its own seed too)."""
    return np.random.default_rng([seed, epoch]).permutation(num_pairs)


def group_by_label_batches(labels: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Batches for in-batch losses (SupCon, triplet): each holds >= 2 labels with >= 2 samples each.

    Follows sentence-transformers' ``GroupByLabelBatchSampler``: shuffle each label's samples,
    trim to an even count, then round-robin two samples per label in a reshuffled label order
    until fewer than two labels remain; a last partial batch is kept if it has >= 4 samples.
    """
    if batch_size < 4 or batch_size % 2:
        raise ValueError(f"batch_size must be an even number >= 4 for in-batch losses, got {batch_size}.")
    rng = np.random.default_rng([seed, epoch])
    labels = np.asarray(labels)
    queues = {}
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        if idx.shape[0] >= 2:
            queues[label] = list(rng.permutation(idx)[: idx.shape[0] // 2 * 2])
    if len(queues) < 2:
        raise ValueError(
            "in-batch losses (SupCon, triplet) need at least 2 labels with >= 2 examples each, "
            f"got {len(queues)} such label(s)."
        )
    batches, batch, last = [], [], None
    remaining = list(queues)
    while len(remaining) >= 2:
        remaining = [remaining[i] for i in rng.permutation(len(remaining))]
        if batch and remaining[0] == last:
            remaining[0], remaining[1] = remaining[1], remaining[0]
        for label in remaining:
            batch += [queues[label].pop(0), queues[label].pop(0)]
            if len(batch) >= batch_size:
                batches.append(np.array(batch[:batch_size]))
                batch = batch[batch_size:]
        last = remaining[-1]
        remaining = [label for label in remaining if queues[label]]
    if len(batch) >= 4:
        batches.append(np.array(batch))
    return batches
