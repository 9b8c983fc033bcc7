"""Dense masked attention: the reference every other backend is tested against, and its mask.

The mask says which keys a query sees: its own non-padding segment and, on local layers,
``|i - j| <= half_window`` (inclusive, symmetric; ``local_attention=128`` means
``half_window=64``). It lives here, below every kernel, so that the blocked kernel's dense
fallback and the dispatch in `modernbert_jax.attention` both import it without a cycle.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from modernbert_jax import dropout


def attention_mask(segment_ids: jax.Array, half_window: Optional[int]) -> jax.Array:
    """Boolean ``[B, 1, T, T]`` mask: same non-padding segment and, if local, inside the window."""
    seg_q = segment_ids[:, :, None]
    seg_k = segment_ids[:, None, :]
    mask = (seg_q == seg_k) & (seg_q != 0)
    if half_window is not None:
        pos = jnp.arange(segment_ids.shape[1])
        mask = mask & (jnp.abs(pos[:, None] - pos[None, :]) <= half_window)[None]
    return mask[:, None]


def xla_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    *,
    segment_ids: jax.Array,
    half_window: Optional[int],
    bias: Optional[jax.Array] = None,
    dropout_rate: float = 0.0,
    dropout_rng: Optional[jax.Array] = None,
) -> jax.Array:
    """Dense masked attention over ``[B, T, H, D]`` inputs (the ``xla`` backend).

    The only backend with an additive score ``bias`` (``[B, H, T, T]``, added after the
    ``1/sqrt(D)`` scaling: DeBERTa's and MPNet's relative attention) and with
    attention-probability dropout (BERT fine-tuning uses it; ModernBERT trains with none).
    """
    scale = q.shape[-1] ** -0.5
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) * scale
    if bias is not None:
        logits = logits + bias.astype(jnp.float32)
    mask = attention_mask(segment_ids, half_window)
    logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(logits, axis=-1)
    # A padding query has no visible key: softmax over an all-masked row is uniform, so
    # zero it explicitly to honour the "padding rows are zeros" contract.
    probs = jnp.where(mask.any(axis=-1, keepdims=True), probs, 0.0)
    if dropout_rate > 0.0:
        probs = dropout.apply(probs, dropout_rate, dropout_rng)
    out = jnp.einsum("bhqk,bkhd->bqhd", probs.astype(v.dtype), v, preferred_element_type=jnp.float32)
    return out.astype(q.dtype)
