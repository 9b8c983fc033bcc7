"""Pooling of packed token states into one vector per item (sentence, document, query).

Items are packed several to a row (``modernbert_jax.data.packing.pack``): ``token_slot [R, T]``
names the item (slot) each token belongs to, ``num_slots`` for padding, and ``slot_first [S]``
the flat index of each slot's first token ([CLS]). Pooling reduces over slots, not rows, so an
item's vector does not depend on which row it landed in or what shares the row with it. SetFit's
sentence encoder, the fine-tuning heads and retrieval bi-encoders pool with this one function.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

POOLING_MODES = ("mean", "cls", "max")


def pool_packed(hidden: jax.Array, token_slot: jax.Array, slot_first: jax.Array, mode: str) -> jax.Array:
    """Per-slot sentence vectors ``[S, D]`` from packed token states ``[R, T, D]``."""
    num_slots = slot_first.shape[0]
    flat = hidden.reshape(-1, hidden.shape[-1]).astype(jnp.float32)
    slot = token_slot.reshape(-1)
    if mode == "mean":
        total = jax.ops.segment_sum(flat, slot, num_segments=num_slots + 1)[:num_slots]
        count = jax.ops.segment_sum(jnp.ones_like(slot, jnp.float32), slot, num_segments=num_slots + 1)[:num_slots]
        return total / jnp.maximum(count, 1e-9)[:, None]
    if mode == "cls":
        return flat[slot_first]
    if mode == "max":
        best = jax.ops.segment_max(flat, slot, num_segments=num_slots + 1)[:num_slots]
        return jnp.where(jnp.isfinite(best), best, 0.0)  # empty (unused) slots
    raise ValueError(f"pooling mode {mode!r}: expected one of {POOLING_MODES}")
