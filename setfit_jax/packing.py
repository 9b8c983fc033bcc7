"""Pack tokenised sentences into fixed ``[rows, row_len]`` blocks for the packed encoder.

Few-shot texts are short and ragged; padding each to the longest in its batch wastes most of
the compute. The encoder takes packed inputs (``segment_ids`` 1..k per row, ``positions``
restarting per sentence; attention never crosses a segment), so sentences are placed
first-fit-decreasing into rows, and every batch of a run shares one static shape: one
``jit`` compilation for the whole of stage 1.

``token_slot[r, t]`` says which sentence slot a token belongs to (``num_slots`` for padding),
which is all pooling needs: a segment sum over slots.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import numpy as np


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PackedBatch:
    input_ids: np.ndarray  # [R, T] int32
    segment_ids: np.ndarray  # [R, T] int32, 0 = padding
    positions: np.ndarray  # [R, T] int32
    token_slot: np.ndarray  # [R, T] int32, slot of each token, num_slots for padding
    slot_first: np.ndarray  # [S] int32, flat index of each slot's first token (CLS pooling)
    slot_valid: np.ndarray  # [S] bool

    @property
    def num_slots(self) -> int:
        return int(self.slot_first.shape[0])


def first_fit(lengths: Sequence[int], row_len: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Row and offset of each sentence under first-fit-decreasing; returns (row, offset, rows used)."""
    row = np.zeros(len(lengths), np.int32)
    offset = np.zeros(len(lengths), np.int32)
    free: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda k: -lengths[k]):
        n = lengths[i]
        if n > row_len:
            raise ValueError(f"sentence of {n} tokens does not fit a packed row of {row_len}")
        for r, room in enumerate(free):
            if room >= n:
                break
        else:
            free.append(row_len)
            r = len(free) - 1
        row[i], offset[i] = r, row_len - free[r]
        free[r] -= n
    return row, offset, len(free)


def rows_needed(lengths: Sequence[int], row_len: int) -> int:
    return first_fit(lengths, row_len)[2]


def pack(ids: Sequence[Sequence[int]], rows: int, row_len: int, num_slots: int, pad_id: int) -> PackedBatch:
    """Pack ``ids`` (at most ``num_slots`` sentences) into ``[rows, row_len]``."""
    if len(ids) > num_slots:
        raise ValueError(f"{len(ids)} sentences exceed the {num_slots} slots of the packed batch")
    row, offset, used = first_fit([len(x) for x in ids], row_len)
    if used > rows:
        raise ValueError(f"sentences need {used} packed rows, the batch has {rows}")
    input_ids = np.full((rows, row_len), pad_id, np.int32)
    segment_ids = np.zeros((rows, row_len), np.int32)
    positions = np.zeros((rows, row_len), np.int32)
    token_slot = np.full((rows, row_len), num_slots, np.int32)
    slot_first = np.zeros((num_slots,), np.int32)
    slot_valid = np.zeros((num_slots,), bool)
    next_segment = np.ones((rows,), np.int32)
    for s, x in enumerate(ids):
        r, o, n = row[s], offset[s], len(x)
        input_ids[r, o: o + n] = x
        segment_ids[r, o: o + n] = next_segment[r]
        positions[r, o: o + n] = np.arange(n)
        token_slot[r, o: o + n] = s
        slot_first[s] = r * row_len + o
        slot_valid[s] = True
        next_segment[r] += 1
    return PackedBatch(input_ids, segment_ids, positions, token_slot, slot_first, slot_valid)


def chunk_for_inference(lengths: Sequence[int], rows: int, row_len: int,
                        num_slots: int) -> list[tuple[list[int], int]]:
    """Split sentence indices (visited longest first) into chunks that each pack into one block.

    Returns ``(indices, rows used)`` per chunk. Within a chunk the placement is exactly
    ``first_fit`` on that chunk's lengths (same order, same rule), so ``pack`` needs no more rows.
    """
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    chunks: list[tuple[list[int], int]] = []
    current: list[int] = []
    free: list[int] = []
    for i in order:
        n = lengths[i]
        fits = next((r for r, room in enumerate(free) if room >= n), None)
        if len(current) == num_slots or (fits is None and len(free) == rows):
            chunks.append((current, len(free)))
            current, free, fits = [], [], None
        if fits is None:
            free.append(row_len)
            fits = len(free) - 1
        current.append(i)
        free[fits] -= n
    if current:
        chunks.append((current, len(free)))
    return chunks
