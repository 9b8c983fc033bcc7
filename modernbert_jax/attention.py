"""Scaled dot-product attention over packed sequences, behind one dispatch point.

Every backend shares one contract:

* ``q, k, v``: ``[B, T, H, D]``.
* ``segment_ids``: ``[B, T]`` int; 0 marks padding, 1..n the packed sequence a token
  belongs to. A query attends only to keys of its own (non-zero) segment. Within a row each
  non-zero id occupies one contiguous run and the ids of successive runs strictly increase;
  padding (0) may appear anywhere (``1 1 2 2 0 0``, ``0 0 1 1``, ``1 1 0 2``). Packing
  (`modernbert_jax.data.packing.rows_to_arrays`) and an ``attention_mask`` with one run of 1s per
  row produce exactly this. The contract is what every backend can honour: the Pallas kernel
  bounds each token's keys by its run, where the dense and blocked paths compare ids, so an id
  reappearing after another (``1 2 1``, ``1 0 1``) would be one sequence on CPU and two on GPU.
  ``dot_product_attention`` rejects such input (`input_checks.check_segments`, also under
  ``jit``); the encoder checks once per forward and tells its layers so, instead of paying for
  the check (a host callback under ``jit``) in every layer.
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

from modernbert_jax import input_checks
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
    bias: Optional[jax.Array] = None,
    dropout_rate: float = 0.0,
    dropout_rng: Optional[jax.Array] = None,
    segments_checked: bool = False,
) -> jax.Array:
    """Attention over packed sequences; see the module docstring for the contract.

    An additive score ``bias [B, H, T, T]`` (relative attention) and ``dropout_rate > 0``
    (attention-probability dropout, with ``dropout_rng``) are only available with the dense
    ``xla`` backend, which ``auto`` then picks. ``segments_checked=True`` skips the segment
    contract check: for a caller that has checked ``segment_ids`` already (the encoder, once
    per forward) or was told not to (``model.check_inputs=False``).
    """
    _check_inputs(q, k, v, segment_ids, half_window)
    if not segments_checked:
        input_checks.check_segments(segment_ids)
    if impl not in IMPLS:
        raise ValueError(f"unknown attention impl {impl!r}; expected one of {IMPLS}")
    if bias is not None and bias.shape != (q.shape[0], q.shape[2], q.shape[1], q.shape[1]):
        raise ValueError(f"bias must be [B, H, T, T] = {(q.shape[0], q.shape[2], q.shape[1], q.shape[1])}; "
                         f"got {tuple(bias.shape)}")
    if dropout_rate > 0.0 or bias is not None:
        if impl not in ("xla", "auto"):
            need = "a score bias (relative attention)" if bias is not None else f"attention dropout ({dropout_rate})"
            raise ValueError(
                f"{need} needs impl='xla'; the {impl!r} kernels have none (model.attention_impl)"
            )
        return reference.xla_attention(
            q, k, v, segment_ids=segment_ids, half_window=half_window, bias=bias, dropout_rate=dropout_rate,
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
