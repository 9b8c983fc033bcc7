"""Turn span probabilities into entities: threshold, then greedy selection by score.

Mirrors the reference ``SpanDecoder``: candidates are taken in (start, width, type) order,
stably sorted by descending score, and kept unless they clash with an already kept span —
any overlap in flat mode, partial crossing in nested mode; with ``multi_label`` the same
span may carry several types. The result is sorted by start.

Candidates are parallel arrays rather than objects: an untrained or unsure model puts
thousands of spans above the threshold per text, and per-span Python objects would cost
more than the model.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np


class Candidates(NamedTuple):
    """Scored spans: word indices ``start``/``end`` (inclusive), ``label`` index, ``score``."""

    start: np.ndarray
    end: np.ndarray
    label: np.ndarray
    score: np.ndarray


def candidate_spans(probs: np.ndarray, num_words: int, threshold: float, label_offset: int = 0) -> Candidates:
    """All spans of ``probs [W, K, C]`` above ``threshold`` that end inside the text."""
    starts, widths, classes = np.nonzero(probs > threshold)
    keep = starts + widths < num_words
    starts, widths, classes = starts[keep], widths[keep], classes[keep]
    return Candidates(starts, starts + widths, classes + label_offset, probs[starts, widths, classes])


def merge(parts: Sequence[Candidates]) -> Candidates:
    """One candidate per (start, end, label), keeping its best score and its first position."""
    if not parts:
        return Candidates(*(np.zeros(0, dtype) for dtype in (np.int64, np.int64, np.int64, np.float32)))
    start, end, label, score = (np.concatenate(column) for column in zip(*parts))
    key = np.stack([start, end, label], axis=1)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    best = np.full(first.shape, -np.inf, np.float32)
    np.maximum.at(best, inverse.reshape(-1), score)
    order = np.argsort(first, kind="stable")
    keep = first[order]
    return Candidates(start[keep], end[keep], label[keep], best[order])


def greedy_search(spans: Candidates, flat_ner: bool = True, multi_label: bool = False) -> np.ndarray:
    """Indices into ``spans`` of the kept spans, sorted by start (see module docstring)."""
    order = np.argsort(-spans.score, kind="stable").tolist()
    starts, ends = spans.start.tolist(), spans.end.tolist()
    kept: list[int] = []
    if flat_ner:
        # Kept spans never overlap one another (except identical spans under multi_label), so a
        # word-occupancy map answers "does it overlap a kept span" in O(width).
        occupied = bytearray(max(ends, default=0) + 1)
        kept_spans: set[tuple[int, int]] = set()
        for i in order:
            s, e = starts[i], ends[i]
            if 1 in occupied[s: e + 1] and not (multi_label and (s, e) in kept_spans):
                continue
            occupied[s: e + 1] = b"\x01" * (e - s + 1)
            kept_spans.add((s, e))
            kept.append(i)
    else:
        for i in order:
            s, e = starts[i], ends[i]
            if not any(_crosses(s, e, starts[j], ends[j], multi_label) for j in kept):
                kept.append(i)
    kept.sort(key=lambda i: starts[i])
    return np.asarray(kept, np.int64)


def _crosses(s: int, e: int, ks: int, ke: int, multi_label: bool) -> bool:
    """Nested mode's clash: identical spans (unless ``multi_label``) or a partial crossing."""
    if (s, e) == (ks, ke):
        return not multi_label
    disjoint = s > ke or ks > e
    nested = (s <= ks and e >= ke) or (ks <= s and ke >= e)
    return not (disjoint or nested)
