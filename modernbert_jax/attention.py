"""Scaled dot-product attention over packed sequences, behind one dispatch point.

Every backend shares one contract:

* ``q, k, v``: ``[B, T, H, D]``.
* ``segment_ids``: ``[B, T]`` int; 0 marks padding, 1..n the packed sequence a token
  belongs to. A query attends only to keys of its own (non-zero) segment.
* ``window``: half-width ``w`` of a symmetric local window (``|i - j| <= w``, inclusive,
  ModernBERT's definition: ``local_attention=128`` means ``w=64``), or ``None`` for global
  attention.
* Padding queries (segment 0) produce zeros, never NaN.

Backends: ``xla`` (dense masked reference), ``blocked`` (pure JAX, O(T*w) for local
layers), ``pallas`` (fused GPU kernel with block skipping), ``auto`` (pallas on GPU,
blocked for local / xla for global elsewhere).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from modernbert_jax import dropout

IMPLS = ("xla", "blocked", "pallas", "auto")


def attention_mask(segment_ids: jax.Array, window: Optional[int]) -> jax.Array:
    """Boolean ``[B, 1, T, T]`` mask: same non-padding segment and, if local, inside the window."""
    seg_q = segment_ids[:, :, None]
    seg_k = segment_ids[:, None, :]
    mask = (seg_q == seg_k) & (seg_q != 0)
    if window is not None:
        pos = jnp.arange(segment_ids.shape[1])
        mask = mask & (jnp.abs(pos[:, None] - pos[None, :]) <= window)[None]
    return mask[:, None]


def xla_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    *,
    segment_ids: jax.Array,
    window: Optional[int],
    dropout_rate: float = 0.0,
    dropout_rng: Optional[jax.Array] = None,
) -> jax.Array:
    """Dense masked attention: the reference every other backend is tested against.

    The only backend with attention-probability dropout (BERT fine-tuning uses it; ModernBERT
    trains with none).
    """
    scale = q.shape[-1] ** -0.5
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) * scale
    mask = attention_mask(segment_ids, window)
    logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(logits, axis=-1)
    # A padding query has no visible key: softmax over an all-masked row is uniform, so
    # zero it explicitly to honour the "padding rows are zeros" contract.
    probs = jnp.where(mask.any(axis=-1, keepdims=True), probs, 0.0)
    if dropout_rate > 0.0:
        probs = dropout.apply(probs, dropout_rate, dropout_rng)
    out = jnp.einsum("bhqk,bkhd->bqhd", probs.astype(v.dtype), v, preferred_element_type=jnp.float32)
    return out.astype(q.dtype)


def _check_inputs(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array, window: Optional[int]) -> None:
    if q.ndim != 4 or k.shape != q.shape or v.shape != q.shape:
        raise ValueError(
            f"q, k, v must all be [B, T, H, D] with equal shapes; got q{tuple(q.shape)}, "
            f"k{tuple(k.shape)}, v{tuple(v.shape)}"
        )
    if segment_ids.shape != q.shape[:2]:
        raise ValueError(f"segment_ids must be [B, T] = {tuple(q.shape[:2])}; got {tuple(segment_ids.shape)}")
    if window is not None and window < 0:
        raise ValueError(f"window is a half-width and must be >= 0 or None; got {window}")


def dot_product_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    *,
    segment_ids: jax.Array,
    window: Optional[int] = None,
    impl: str = "xla",
    interpret: bool = False,
    dropout_rate: float = 0.0,
    dropout_rng: Optional[jax.Array] = None,
) -> jax.Array:
    """Attention over packed sequences; see the module docstring for the contract.

    ``interpret=True`` runs the Pallas kernel in interpret mode (how it is tested on CPU).
    ``dropout_rate > 0`` (attention-probability dropout, with ``dropout_rng``) is only
    available with the dense ``xla`` backend.
    """
    _check_inputs(q, k, v, segment_ids, window)
    if impl not in IMPLS:
        raise ValueError(f"unknown attention impl {impl!r}; expected one of {IMPLS}")
    if dropout_rate > 0.0:
        if impl not in ("xla", "auto"):
            raise ValueError(
                f"attention dropout ({dropout_rate}) needs impl='xla'; the {impl!r} kernels have none "
                "(set model.attention_dropout=0, as ModernBERT does)"
            )
        return xla_attention(
            q, k, v, segment_ids=segment_ids, window=window, dropout_rate=dropout_rate, dropout_rng=dropout_rng
        )
    if impl == "auto":
        if jax.default_backend() == "gpu":
            impl = "pallas"
        else:
            impl = "xla" if window is None else "blocked"
    if impl == "xla":
        return xla_attention(q, k, v, segment_ids=segment_ids, window=window)
    if impl == "blocked":
        from modernbert_jax.kernels import blocked

        return blocked.blocked_attention(q, k, v, segment_ids=segment_ids, window=window)
    from modernbert_jax.kernels import pallas_attention

    return pallas_attention.flash_attention(q, k, v, segment_ids=segment_ids, window=window, interpret=interpret)
