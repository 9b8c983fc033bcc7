"""Greedy sequence packing: tokenized documents -> fixed ``[B, T]`` rows with segment ids and positions.

ModernBERT trains on packed rows (its "unpadding" with static shapes): several sequences share a
row, ``segment_ids`` (0 = padding, 1..n) keep attention inside each sequence and ``positions``
restart at 0 in each segment. Each sequence is ``[CLS] tokens [SEP]``; a document longer than
``T - 2`` tokens is cut into consecutive chunks, each with its own ``[CLS]``/``[SEP]``, so no
sequence ever crosses a row.

Rows are filled by best-fit decreasing over a buffer of chunks (as ModernBERT's
``GreedyBestFitSequencePacker`` does): the longest chunk goes into the row whose free space fits
it most tightly. The pipeline takes the fullest rows and keeps the rest of the buffer for the
next batch, which is why the packing efficiency (non-padding fraction) is high.
"""

from __future__ import annotations

import bisect
from typing import Sequence

import numpy as np


def chunk_document(token_ids: Sequence[int], seq_len: int, cls_id: int, sep_id: int) -> list[list[int]]:
    """Split one document into ``[CLS] ... [SEP]`` chunks of at most ``seq_len`` tokens.

    An empty document gives no chunks (a bare ``[CLS][SEP]`` teaches nothing).
    """
    if seq_len < 3:
        raise ValueError(f"seq_len must be >= 3 to hold [CLS] x [SEP], got {seq_len}")
    body = seq_len - 2
    return [[cls_id, *token_ids[i : i + body], sep_id] for i in range(0, len(token_ids), body)]


def best_fit_decreasing(lengths: Sequence[int], seq_len: int) -> list[list[int]]:
    """Assign items (by index) to rows of capacity ``seq_len``, longest first, tightest row first.

    Returns rows as lists of item indices in placement order. Ties are broken by item index so
    the result is a pure function of ``lengths``.
    """
    for i, n in enumerate(lengths):
        if not 0 < n <= seq_len:
            raise ValueError(f"item {i} has length {n}, must be in [1, seq_len={seq_len}]")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    # Sorted (free space, row id) pairs: bisect finds the tightest row that still fits.
    free: list[tuple[int, int]] = []
    for i in order:
        n = lengths[i]
        k = bisect.bisect_left(free, (n, -1))
        if k == len(free):
            rows.append([i])
            bisect.insort(free, (seq_len - n, len(rows) - 1))
        else:
            space, row = free.pop(k)
            rows[row].append(i)
            bisect.insort(free, (space - n, row))
    return rows


def rows_to_arrays(rows: Sequence[Sequence[Sequence[int]]], seq_len: int, pad_id: int) -> dict[str, np.ndarray]:
    """Lay out rows (each a list of chunks) as ``input_ids``/``segment_ids``/``positions`` int32 ``[B, T]``."""
    batch = len(rows)
    input_ids = np.full((batch, seq_len), pad_id, np.int32)
    segment_ids = np.zeros((batch, seq_len), np.int32)
    positions = np.zeros((batch, seq_len), np.int32)
    for b, row in enumerate(rows):
        start = 0
        for seg, chunk in enumerate(row, start=1):
            end = start + len(chunk)
            if end > seq_len:
                raise ValueError(f"row {b} holds {end} tokens, more than seq_len={seq_len}")
            input_ids[b, start:end] = chunk
            segment_ids[b, start:end] = seg
            positions[b, start:end] = np.arange(len(chunk))
            start = end
    return {"input_ids": input_ids, "segment_ids": segment_ids, "positions": positions}


def packing_efficiency(segment_ids: np.ndarray) -> float:
    """Fraction of non-padding tokens in a packed batch."""
    return float(np.mean(segment_ids > 0)) if segment_ids.size else 0.0
