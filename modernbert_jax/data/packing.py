"""Greedy sequence packing: tokenized documents -> fixed ``[B, T]`` rows with segment ids and positions.

ModernBERT trains on packed rows (its "unpadding" with static shapes): several sequences share a
row, ``segment_ids`` (0 = padding, 1..n) keep attention inside each sequence and ``positions``
restart at 0 in each segment. Each sequence is ``[CLS] tokens [SEP]``; a document longer than
``T - 2`` tokens is cut into consecutive chunks, each with its own ``[CLS]``/``[SEP]``, so no
sequence ever crosses a row.

Rows are filled by best-fit decreasing over a buffer of chunks (as ModernBERT's
``GreedyBestFitSequencePacker`` does): the longest chunk goes into the row whose free space fits
it most tightly. The pipeline takes the fullest rows and keeps the rest of the buffer for the
next batch, which is why the packing efficiency (non-padding fraction) is high. SetFit packs its
sentences with the same packer: ``locate_items`` records where each sentence sits (for pooling one
vector per sentence), ``pack`` lays a set of items into fixed-shape rows with that bookkeeping
(``PackedBatch``, pooled by ``modernbert_jax.pooling``) and ``max_rows`` splits a large set into
fixed-shape blocks for inference.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import Sequence

import jax

import numpy as np


def chunk_document(token_ids: Sequence[int], seq_len: int, cls_id: int, sep_id: int) -> list[list[int]]:
    """Split one document into ``[CLS] ... [SEP]`` chunks of at most ``seq_len`` tokens.

    An empty document gives no chunks (a bare ``[CLS][SEP]`` teaches nothing).
    """
    if seq_len < 3:
        raise ValueError(f"seq_len must be >= 3 to hold [CLS] x [SEP], got {seq_len}")
    body = seq_len - 2
    return [[cls_id, *token_ids[i : i + body], sep_id] for i in range(0, len(token_ids), body)]


def best_fit_decreasing(lengths: Sequence[int], seq_len: int, max_rows: int | None = None) -> list[list[int]]:
    """Assign items (by index) to rows of capacity ``seq_len``, longest first, tightest row first.

    Returns rows as lists of item indices in placement order. Ties are broken by item index so
    the result is a pure function of ``lengths``. With ``max_rows``, an item that fits none of
    the ``max_rows`` rows is left out (the caller packs it into a later block); the items placed
    sit exactly where ``best_fit_decreasing`` of those items alone would put them, since a
    left-out item never changes a row's free space.
    """
    for i, n in enumerate(lengths):
        if not 0 < n <= seq_len:
            raise ValueError(f"item {i} has length {n}, must be in [1, seq_len={seq_len}]")
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    # Sorted (free space, row id) pairs: bisect finds the tightest row that still fits.
    free: list[tuple[int, int]] = []
    for i in order:
        n = lengths[i]
        k = bisect.bisect_left(free, (n, -1))
        if k < len(free):
            space, row = free.pop(k)
            rows[row].append(i)
            bisect.insort(free, (space - n, row))
        elif max_rows is None or len(rows) < max_rows:
            rows.append([i])
            bisect.insort(free, (seq_len - n, len(rows) - 1))
    return rows


def rows_to_arrays(rows: Sequence[Sequence[Sequence[int]]], seq_len: int, pad_id: int,
                   num_rows: int | None = None) -> dict[str, np.ndarray]:
    """Lay out rows (each a list of chunks) as ``input_ids``/``segment_ids``/``positions`` int32 ``[B, T]``.

    ``num_rows`` pads the batch with empty rows to a fixed ``B`` (one ``jit`` shape for a run).
    """
    batch = len(rows) if num_rows is None else num_rows
    if len(rows) > batch:
        raise ValueError(f"{len(rows)} packed rows do not fit a batch of num_rows={num_rows}")
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


def locate_items(index_rows: Sequence[Sequence[int]], segment_ids: np.ndarray,
                 num_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each packed item sits, for pooling one vector per item (SetFit's sentence embeddings).

    ``index_rows`` are the item indices of each row in layout order (``best_fit_decreasing``'s
    rows, laid out by ``rows_to_arrays``), items numbered below ``num_slots``. Returns
    ``token_item [B, T]`` (the item of each token, ``num_slots`` for padding: a segment-sum id)
    and ``item_start [num_slots]`` (flat index of each item's first token, 0 for unused slots).
    """
    token_item = np.full(segment_ids.shape, num_slots, np.int32)
    item_start = np.zeros((num_slots,), np.int32)
    for b, row in enumerate(index_rows):
        if any(not 0 <= i < num_slots for i in row):
            raise ValueError(f"row {b} holds item indices {list(row)} outside [0, num_slots={num_slots})")
        owner = np.asarray([num_slots, *row], np.int32)  # segment id 0 is padding
        token_item[b] = owner[segment_ids[b]]
        starts = np.flatnonzero(np.diff(segment_ids[b], prepend=0) > 0)
        item_start[owner[segment_ids[b, starts]]] = b * segment_ids.shape[1] + starts
    return token_item, item_start


def packing_efficiency(segment_ids: np.ndarray) -> float:
    """Fraction of non-padding tokens in a packed batch."""
    return float(np.mean(segment_ids > 0)) if segment_ids.size else 0.0


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PackedBatch:
    """Sentences packed into ``[R, T]`` rows, with the slot bookkeeping pooling needs."""

    input_ids: np.ndarray  # [R, T] int32
    segment_ids: np.ndarray  # [R, T] int32, 0 = padding
    positions: np.ndarray  # [R, T] int32
    token_slot: np.ndarray  # [R, T] int32, slot of each token, num_slots for padding
    slot_first: np.ndarray  # [S] int32, flat index of each slot's first token (CLS pooling)
    slot_valid: np.ndarray  # [S] bool

    @property
    def num_slots(self) -> int:
        return int(self.slot_first.shape[0])


def pack(ids: Sequence[Sequence[int]], rows: int, row_len: int, num_slots: int, pad_id: int) -> PackedBatch:
    """Pack ``ids`` (sentence ``i`` into slot ``i``, at most ``num_slots``) into ``[rows, row_len]``."""
    if len(ids) > num_slots:
        raise ValueError(f"{len(ids)} sentences exceed the {num_slots} slots of the packed batch")
    index_rows = best_fit_decreasing([len(x) for x in ids], row_len)
    if len(index_rows) > rows:
        raise ValueError(f"sentences need {len(index_rows)} packed rows, the batch has {rows}")
    arrays = rows_to_arrays([[ids[i] for i in row] for row in index_rows], row_len, pad_id, num_rows=rows)
    token_slot, slot_first = locate_items(index_rows, arrays["segment_ids"], num_slots)
    return PackedBatch(**arrays, token_slot=token_slot, slot_first=slot_first,
                       slot_valid=np.arange(num_slots) < len(ids))


def rows_needed(lengths: Sequence[int], row_len: int) -> int:
    """Rows that ``pack`` needs for sentences of these lengths."""
    return len(best_fit_decreasing(lengths, row_len))
