"""Turn span probabilities into entities: threshold, then greedy selection by score.

Mirrors the reference ``SpanDecoder``: candidates are taken in (start, width, type) order,
stably sorted by descending score, and kept unless they clash with an already kept span —
any overlap in flat mode, partial crossing in nested mode; with ``multi_label`` the same
span may carry several types. The result is sorted by start.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np


class Span(NamedTuple):
    start: int  # first word (inclusive)
    end: int  # last word (inclusive)
    label: str
    score: float


def _overlaps(a: Span, b: Span, multi_label: bool) -> bool:
    if (a.start, a.end) == (b.start, b.end):
        return not multi_label
    return not (a.start > b.end or b.start > a.end)


def _crosses(a: Span, b: Span, multi_label: bool) -> bool:
    if (a.start, a.end) == (b.start, b.end):
        return not multi_label
    disjoint = a.start > b.end or b.start > a.end
    nested = (a.start <= b.start and a.end >= b.end) or (b.start <= a.start and b.end >= a.end)
    return not (disjoint or nested)


def greedy_search(spans: Sequence[Span], flat_ner: bool = True, multi_label: bool = False) -> list[Span]:
    """Keep the best-scoring spans that do not clash (see module docstring)."""
    clash = _overlaps if flat_ner else _crosses
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: -s.score):
        if not any(clash(span, other, multi_label) for other in kept):
            kept.append(span)
    kept.sort(key=lambda s: s.start)
    return kept


def candidate_spans(probs: np.ndarray, num_words: int, labels: Sequence[str], threshold: float) -> list[Span]:
    """All spans of ``probs [W, K, C]`` above ``threshold`` that end inside the text."""
    probs = probs[:, :, : len(labels)]
    starts, widths, classes = np.nonzero(probs > threshold)
    keep = starts + widths < num_words
    starts, widths, classes = starts[keep], widths[keep], classes[keep]
    scores = probs[starts, widths, classes].tolist()
    return [
        Span(int(s), int(s + k), labels[c], score)
        for s, k, c, score in zip(starts.tolist(), widths.tolist(), classes.tolist(), scores)
    ]
