"""Scaled dot-product attention over packed sequences, behind one dispatch point.

Every backend shares one contract:

* ``q, k, v``: ``[B, T, H, D]``.
* ``segment_ids``: ``[B, T]`` int; 0 marks padding, 1..n the packed sequence a token
  belongs to. A query attends only to keys of its own (non-zero) segment.
* ``half_window``: half-width ``w`` of a symmetric local window (``|i - j| <= w``, inclusive,
  ModernBERT's definition: the full window ``local_attention=128`` means ``w=64``), or
  ``None`` for global attention.
* Padding queries (segment 0) produce zeros, never NaN.

Backends (``IMPLS``, the choices of ``model.attention_impl``): ``xla`` (dense masked
reference, `kernels.reference`), ``blocked`` (pure JAX, O(T*w) for local layers), ``pallas``
(fused GPU kernel with block skipping), ``pallas_interpret`` (the same kernel in Pallas
interpret mode: how it is tested on CPU), ``auto`` (pallas on GPU, blocked for local / xla
for global elsewhere).

Interpret mode is a backend value rather than a flag on the model constructors: the config
already reaches every Attention module, is validated with the other choices and is recorded
with each run, where a flag had to travel through Encoder, MaskedLM, SequenceClassifier,
EncoderLayer and Attention (and a context manager would be global state read at trace time,
missing from the recorded config).
"""

from __future__ import annotations

from typing import Optional

import jax

from modernbert_jax.kernels import blocked, pallas_attention, reference

IMPLS = ("xla", "blocked", "pallas", "pallas_interpret", "auto")


def _check_inputs(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array, half_window: Optional[int]) -> None:
    if q.ndim != 4 or k.shape != q.shape or v.shape != q.shape:
        raise ValueError(
            f"q, k, v must all be [B, T, H, D] with equal shapes; got q{tuple(q.shape)}, "
            f"k{tuple(k.shape)}, v{tuple(v.shape)}"
        )
    if segment_ids.shape != q.shape[:2]:
        raise ValueError(f"segment_ids must be [B, T] = {tuple(q.shape[:2])}; got {tuple(segment_ids.shape)}")
    if half_window is not None and half_window < 0:
        raise ValueError(f"half_window must be >= 0 or None; got {half_window}")


def dot_product_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    *,
    segment_ids: jax.Array,
    half_window: Optional[int] = None,
    impl: str = "xla",
    dropout_rate: float = 0.0,
    dropout_rng: Optional[jax.Array] = None,
) -> jax.Array:
    """Attention over packed sequences; see the module docstring for the contract.

    ``dropout_rate > 0`` (attention-probability dropout, with ``dropout_rng``) is only
    available with the dense ``xla`` backend.
    """
    _check_inputs(q, k, v, segment_ids, half_window)
    if impl not in IMPLS:
        raise ValueError(f"unknown attention impl {impl!r}; expected one of {IMPLS}")
    if dropout_rate > 0.0:
        if impl not in ("xla", "auto"):
            raise ValueError(
                f"attention dropout ({dropout_rate}) needs impl='xla'; the {impl!r} kernels have none "
                "(set model.attention_dropout=0, as ModernBERT does)"
            )
        return reference.xla_attention(
            q, k, v, segment_ids=segment_ids, half_window=half_window, dropout_rate=dropout_rate,
            dropout_rng=dropout_rng,
        )
    if impl == "auto":
        if jax.default_backend() == "gpu":
            impl = "pallas"
        else:
            impl = "xla" if half_window is None else "blocked"
    if impl == "xla":
        return reference.xla_attention(q, k, v, segment_ids=segment_ids, half_window=half_window)
    if impl == "blocked":
        return blocked.blocked_attention(q, k, v, segment_ids=segment_ids, half_window=half_window)
    return pallas_attention.flash_attention(
        q, k, v, segment_ids=segment_ids, half_window=half_window, interpret=impl == "pallas_interpret"
    )
