"""Relative positions for packed inputs, and the two bucketings the papers' backbones use.

Positions restart at 0 in each packed segment and attention never crosses a segment, so
``positions[i] - positions[j]`` is the in-sequence distance for every pair that attends; a
padded batch (positions ``0..T-1`` per row) gives exactly the ``arange``-based distances that
``transformers`` builds.

* ``deberta_log_buckets``: DeBERTa-v2/v3 ``make_log_bucket_position`` — distances inside
  ``±bucket_size/2`` stay exact, longer ones grow logarithmically up to ``max_position``.
* ``t5_buckets``: MPNet's ``relative_position_bucket`` (T5's bidirectional scheme with
  ``max_distance``): half the buckets per direction, half of those exact.

Both are computed in float32 from integer distances, as the references do, so bucket edges
fall in the same place.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def relative_positions(positions: jax.Array) -> jax.Array:
    """``[B, T, T]`` int32 distances ``positions[b, i] - positions[b, j]`` (query minus key)."""
    positions = positions.astype(jnp.int32)
    return positions[:, :, None] - positions[:, None, :]


def deberta_log_buckets(relative: jax.Array, bucket_size: int, max_position: int) -> jax.Array:
    """DeBERTa's log-bucketed distance (sign kept), an int32 in ``(-bucket_size, bucket_size)``."""
    mid = bucket_size // 2
    rel = relative.astype(jnp.float32)
    # Inside ±mid the reference substitutes mid - 1 before the log, then keeps the exact value.
    abs_pos = jnp.where((rel < mid) & (rel > -mid), float(mid - 1), jnp.abs(rel))
    # The reference takes this log of a float32 tensor: so do we, so that ceil() agrees at the edges.
    denominator = jnp.log(jnp.asarray((max_position - 1) / mid, jnp.float32))
    log_pos = jnp.ceil(jnp.log(abs_pos / mid) / denominator * (mid - 1)) + mid
    bucket = jnp.where(abs_pos <= mid, rel, log_pos * jnp.sign(rel))
    return bucket.astype(jnp.int32)


def t5_buckets(relative: jax.Array, num_buckets: int, max_distance: int) -> jax.Array:
    """MPNet's bucket index in ``[0, num_buckets)`` for distance ``relative`` (query minus key)."""
    half = num_buckets // 2
    # Keys before the query (relative > 0 here) take the upper half, as in the reference,
    # which buckets n = -(key - query).
    offset = jnp.where(relative < 0, half, 0)
    n = jnp.abs(relative)
    max_exact = half // 2
    safe = jnp.maximum(n, 1).astype(jnp.float32)  # log(0) is never selected, but keep it finite
    large = max_exact + (jnp.log(safe / max_exact) / math.log(max_distance / max_exact) * (half - max_exact)).astype(jnp.int32)
    large = jnp.minimum(large, half - 1)
    return (offset + jnp.where(n < max_exact, n, large)).astype(jnp.int32)


def reachable_rows(length: int, span: int, bucket_size: int, max_position: int) -> tuple[int, int]:
    """``[lo, hi)``: the rows of DeBERTa's ``2 * span``-row relative table that distances of a
    ``length``-token input (``|d| <= length - 1``) reach. The bucketing is monotone, so the two
    extreme distances bound them. Computed at trace time (``length`` is a static shape)."""
    with jax.ensure_compile_time_eval():
        extremes = jnp.asarray([-(length - 1), length - 1], jnp.int32)
        if bucket_size:
            extremes = deberta_log_buckets(extremes, bucket_size, max_position)
        lo, hi = (int(v) for v in jnp.clip(extremes + span, 0, 2 * span - 1))
    return lo, hi + 1
