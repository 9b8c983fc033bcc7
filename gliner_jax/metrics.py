"""Span-level NER evaluation: exact-match micro precision / recall / F1, per type and by group.

A prediction counts only if its first word, last word and type all equal a gold entity's.
Per-type scores, the micro average over all types, and micro averages over the types seen
in training and the held-out (zero-shot) types are reported separately.
"""

from __future__ import annotations

import collections
from typing import Iterable, Sequence

from gliner_jax import decoding


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn, "support": tp + fn}


def score(gold: Sequence[Iterable[tuple]], pred: Sequence[Iterable[tuple]], types: Sequence[str],
          unseen: Sequence[str] = ()) -> dict:
    """``gold``/``pred``: per example, ``(start, end, label)`` triples."""
    counts = collections.defaultdict(lambda: [0, 0, 0])
    for g, p in zip(gold, pred):
        g, p = set(g), set(p)
        for _, _, label in p & g:
            counts[label][0] += 1
        for _, _, label in p - g:
            counts[label][1] += 1
        for _, _, label in g - p:
            counts[label][2] += 1

    def group(names):
        sums = [sum(counts[n][i] for n in names) for i in range(3)]
        return prf(*sums)

    held_out = set(unseen)
    return {
        "micro": group(types),
        "seen": group([t for t in types if t not in held_out]),
        "unseen": group([t for t in types if t in held_out]) if unseen else None,
        "per_type": {t: prf(*counts[t]) for t in types},
    }


def evaluate(model, examples: Sequence[dict], types: Sequence[str], *, unseen: Sequence[str] = (),
             threshold: float = 0.5, batch_size: int = 8, flat_ner: bool = True) -> dict:
    """Predict every example with all ``types`` as the prompt and score against its gold spans."""
    words = [ex["tokenized_text"] for ex in examples]
    types = list(types)
    candidates = model.score_candidates(words, types, threshold, batch_size)
    pred = [[(int(c.start[i]), int(c.end[i]), types[c.label[i]]) for i in decoding.greedy_search(c, flat_ner, False)]
            for c in candidates]
    allowed = set(types)
    gold = [[(a, b, label) for a, b, label in ex["ner"] if label in allowed] for ex in examples]
    return score(gold, pred, types, unseen)
