"""BERT masked-language-model corruption with static-shape sparse targets.

For each row, ``round(rate * n)`` of its ``n`` maskable tokens (not padding, not special tokens)
are chosen uniformly without replacement (stochastic rounding keeps the expected rate exact).
Each chosen token becomes ``[MASK]`` with probability 0.8, a random ordinary token with 0.1 and
stays itself with 0.1 (Devlin et al.); ModernBERT trains at rate 0.30 and we evaluate at 0.15.

Targets are sparse so the MLM head only decodes the chosen positions: ``masked_positions``
``[B, M]`` indexes into ``T``, with ``M = ceil(rate * T)`` so shapes never change; unused slots have
position 0, label ``pad_id`` and weight 0.
"""

from __future__ import annotations

import functools

import math
from typing import Sequence

import numpy as np


def num_mask_slots(seq_len: int, rate: float) -> int:
    """Static width ``M`` of the sparse targets: enough for ``rate`` of every token in a row."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"mask rate must be in (0, 1), got {rate}")
    return math.ceil(rate * seq_len)


def mask_row(
    input_ids: np.ndarray,
    maskable: np.ndarray,
    rng: np.random.Generator,
    *,
    rate: float,
    num_slots: int,
    mask_id: int,
    pad_id: int,
    random_token_ids: np.ndarray,
    mask_prob: float = 0.8,
    random_prob: float = 0.1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Corrupt one row. Returns (corrupted ids [T], positions [M], labels [M], weights [M])."""
    candidates = np.flatnonzero(maskable)
    count = min(int(math.floor(rate * len(candidates) + rng.random())), num_slots)
    chosen = np.sort(rng.choice(candidates, size=count, replace=False)) if count else candidates[:0]
    corrupted = input_ids.copy()
    action = rng.random(count)
    use_mask = action < mask_prob
    use_random = (action >= mask_prob) & (action < mask_prob + random_prob)
    corrupted[chosen[use_mask]] = mask_id
    corrupted[chosen[use_random]] = rng.choice(random_token_ids, size=int(use_random.sum()))
    positions = np.zeros(num_slots, np.int32)
    labels = np.full(num_slots, pad_id, np.int32)
    weights = np.zeros(num_slots, np.float32)
    positions[:count] = chosen
    labels[:count] = input_ids[chosen]
    weights[:count] = 1.0
    return corrupted, positions, labels, weights


@functools.lru_cache(maxsize=8)
def ordinary_token_ids(vocab_size: int, special_ids: tuple[int, ...]) -> np.ndarray:
    """Ids that the 10% random replacement may draw: every id except the special tokens.

    Cached (read-only): it depends only on the tokenizer, and every micro-batch asks for it.
    """
    keep = np.ones(vocab_size, bool)
    keep[list(special_ids)] = False
    ids = np.flatnonzero(keep).astype(np.int32)
    ids.flags.writeable = False
    return ids


def mask_batch(
    batch: dict[str, np.ndarray],
    row_rngs: Sequence[np.random.Generator],
    *,
    rate: float,
    mask_id: int,
    pad_id: int,
    special_ids: Sequence[int],
    vocab_size: int,
    mask_prob: float = 0.8,
    random_prob: float = 0.1,
) -> dict[str, np.ndarray]:
    """Add MLM corruption and sparse targets to a packed batch (one generator per row).

    Returns a new dict with ``input_ids`` corrupted and ``masked_positions``/``masked_labels``
    (int32 ``[B, M]``) and ``masked_weights`` (float32 ``[B, M]``) added.
    """
    input_ids, segment_ids = batch["input_ids"], batch["segment_ids"]
    if len(row_rngs) != input_ids.shape[0]:
        raise ValueError(f"need one generator per row: {len(row_rngs)} for {input_ids.shape[0]} rows")
    num_slots = num_mask_slots(input_ids.shape[1], rate)
    maskable = (segment_ids > 0) & ~np.isin(input_ids, np.asarray(list(special_ids)))
    random_ids = ordinary_token_ids(vocab_size, tuple(special_ids))
    out = {k: v for k, v in batch.items()}
    rows = [
        mask_row(input_ids[b], maskable[b], row_rngs[b], rate=rate, num_slots=num_slots, mask_id=mask_id,
                 pad_id=pad_id, random_token_ids=random_ids, mask_prob=mask_prob, random_prob=random_prob)
        for b in range(input_ids.shape[0])
    ]
    out["input_ids"] = np.stack([r[0] for r in rows]).astype(np.int32)
    out["masked_positions"] = np.stack([r[1] for r in rows])
    out["masked_labels"] = np.stack([r[2] for r in rows])
    out["masked_weights"] = np.stack([r[3] for r in rows])
    return out
