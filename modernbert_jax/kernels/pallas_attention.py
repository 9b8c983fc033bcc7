"""Flash attention for sliding windows over packed sequences: a Pallas (Triton) GPU kernel.

Forward and backward are fused kernels (FlashAttention-2 style: online softmax, float32
accumulators, the log-sum-exp saved for the backward pass, ``delta = rowsum(dO * O)``
precomputed), tied together with `jax.custom_vjp`.

Block skipping. Every token ``i`` gets a key range ``[kv_lo[i], kv_hi[i])``: its own segment
(a contiguous run of equal ids, as packing produces) intersected with the window
``[i - w, i + w]``; padding tokens get an empty range. A query block loops only over the key
blocks covering the union of its rows' ranges, so out-of-window and out-of-segment key
blocks are never loaded and local attention costs O(T*w). Because the visibility relation
is symmetric (same segment, ``|i - j| <= w``), the same per-token ranges bound the query
blocks a key block must visit in the dk/dv kernel.

Inputs of any length are padded to the block size (padding has segment 0, so it is masked),
and the head dimension is zero-padded to a power of two of at least 16 (Triton's ``dot``
minimum), which changes no score.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from modernbert_jax.kernels.pallas_compat import pl, triton_compiler_params

# Finite stand-in for -inf: keeps the online-softmax rescaling free of inf - inf = NaN.
_MASK_VALUE = -0.7 * float(np.finfo(np.float32).max)
# Scores are kept in base 2 so the kernels can use exp2.
_LOG2E = math.log2(math.e)
_MIN_BLOCK = 16


def _next_power_of_2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Tile sizes and Triton launch parameters, per kernel.

    The defaults suit ModernBERT's local layers (half-width 64): a 64-row query block needs
    three 64-wide key blocks, and 129 of the 192 scores per row it computes are in the window. ``num_warps=None`` picks 4 for
    head_dim <= 64 and 8 above.
    """

    block_q: int = 64
    block_k: int = 64
    block_q_dq: int = 64
    block_k_dq: int = 64
    block_q_dkv: int = 64
    block_k_dkv: int = 64
    num_warps: Optional[int] = None
    num_stages: int = 2

    def clamped(self, length: int) -> "BlockSizes":
        """Shrink blocks for short sequences (never below Triton's minimum of 16)."""
        cap = max(_MIN_BLOCK, _next_power_of_2(length))
        names = ("block_q", "block_k", "block_q_dq", "block_k_dq", "block_q_dkv", "block_k_dkv")
        for name in names:
            size = getattr(self, name)
            if size < _MIN_BLOCK or size & (size - 1):
                raise ValueError(f"BlockSizes.{name} must be a power of two >= {_MIN_BLOCK}; got {size}")
        return dataclasses.replace(self, **{name: min(getattr(self, name), cap) for name in names})

    @property
    def largest(self) -> int:
        return max(self.block_q, self.block_k, self.block_q_dq, self.block_k_dq, self.block_q_dkv, self.block_k_dkv)


def key_ranges(segment_ids: jax.Array, half_window: Optional[int]) -> tuple[jax.Array, jax.Array]:
    """Per-token visible key range ``[lo, hi)`` (``[B, T]`` int32 each); empty for padding."""
    length = segment_ids.shape[1]
    pos = jnp.arange(length, dtype=jnp.int32)
    change = segment_ids[:, 1:] != segment_ids[:, :-1]
    is_start = jnp.pad(change, [(0, 0), (1, 0)], constant_values=True)
    is_end = jnp.pad(change, [(0, 0), (0, 1)], constant_values=True)
    lo = lax.cummax(jnp.where(is_start, pos, 0), axis=1)
    hi = lax.cummin(jnp.where(is_end, pos + 1, length), axis=1, reverse=True)
    if half_window is not None:
        lo = jnp.maximum(lo, pos - half_window)
        hi = jnp.minimum(hi, pos + half_window + 1)
    padding = segment_ids == 0
    return jnp.where(padding, length, lo).astype(jnp.int32), jnp.where(padding, 0, hi).astype(jnp.int32)


def _block_range(lo_ref, hi_ref, block: int):
    """Blocks of size ``block`` covering the union of the rows' ranges; empty if all padding."""
    first = lax.div(jnp.min(lo_ref[...]), block)
    last = lax.div(jnp.max(hi_ref[...]) + block - 1, block)
    return first, last


def _dot(a, b, *, trans_a: bool = False, trans_b: bool = False):
    """2-D matmul with a float32 accumulator (Triton ``tl.dot``); operands keep their dtype."""
    dims = (((0 if trans_a else 1,), (1 if trans_b else 0,)), ((), ()))
    return lax.dot_general(a, b, dims, preferred_element_type=jnp.float32)


def _visible(seg_q, pos_q, seg_k, pos_k, half_window: Optional[int]):
    """``[len(q), len(k)]`` mask: same non-padding segment and inside the window."""
    mask = (seg_q[:, None] == seg_k[None, :]) & (seg_q != 0)[:, None]
    if half_window is not None:
        offset = pos_q[:, None] - pos_k[None, :]
        mask = mask & (offset <= half_window) & (offset >= -half_window)
    return mask


def _key_block(q, k_ref, v_ref, seg_ref, seg_q, pos_q, k_start, *, scale, half_window, block_k):
    """One key block for a query block: its keys, values, base-2 scores ``q k^T`` and visibility."""
    k = k_ref[pl.ds(k_start, block_k), :]
    v = v_ref[pl.ds(k_start, block_k), :]
    s = _dot(q, k, trans_b=True) * (scale * _LOG2E)
    seg_k = seg_ref[pl.ds(k_start, block_k)]
    pos_k = k_start + jnp.arange(block_k, dtype=jnp.int32)
    return k, v, s, _visible(seg_q, pos_q, seg_k, pos_k, half_window)


def _forward_kernel(q_ref, k_ref, v_ref, seg_ref, lo_ref, hi_ref, o_ref, lse_ref, *, scale, half_window, block_q, block_k):
    q_start = pl.program_id(0) * block_q
    q = q_ref[...]
    seg_q = seg_ref[pl.ds(q_start, block_q)]
    pos_q = q_start + jnp.arange(block_q, dtype=jnp.int32)

    def body(kb, carry):
        acc, m_prev, l_prev = carry
        k, v, s, visible = _key_block(q, k_ref, v_ref, seg_ref, seg_q, pos_q, kb * block_k,
                                      scale=scale, half_window=half_window, block_k=block_k)
        s = jnp.where(visible, s, _MASK_VALUE)
        m_next = jnp.maximum(m_prev, jnp.max(s, axis=1))
        correction = jnp.exp2(m_prev - m_next)
        p = jnp.exp2(s - m_next[:, None])
        l_next = correction * l_prev + jnp.sum(p, axis=1)
        acc = correction[:, None] * acc + _dot(p.astype(v.dtype), v)
        return acc, m_next, l_next

    first, last = _block_range(lo_ref, hi_ref, block_k)
    acc = jnp.zeros((block_q, q_ref.shape[-1]), jnp.float32)
    m = jnp.full((block_q,), -jnp.inf, jnp.float32)
    l = jnp.zeros((block_q,), jnp.float32)
    acc, m, l = lax.fori_loop(first, last, body, (acc, m, l))

    # Every non-padding row sees at least itself, so l > 0 there; padding rows become zeros.
    valid = lo_ref[...] < hi_ref[...]
    l_safe = jnp.where(valid, l, 1.0)
    o_ref[...] = jnp.where(valid[:, None], acc / l_safe[:, None], 0.0).astype(o_ref.dtype)
    lse_ref[...] = jnp.where(valid, m + jnp.log2(l_safe), 0.0)


def _dq_kernel(q_ref, k_ref, v_ref, seg_ref, lo_ref, hi_ref, do_ref, lse_ref, delta_ref, dq_ref, *, scale, half_window, block_q, block_k):
    q_start = pl.program_id(0) * block_q
    q = q_ref[...]
    do = do_ref[...]
    lse = lse_ref[...]
    delta = delta_ref[...]
    seg_q = seg_ref[pl.ds(q_start, block_q)]
    pos_q = q_start + jnp.arange(block_q, dtype=jnp.int32)

    def body(kb, dq):
        k, v, s, visible = _key_block(q, k_ref, v_ref, seg_ref, seg_q, pos_q, kb * block_k,
                                      scale=scale, half_window=half_window, block_k=block_k)
        p = jnp.where(visible, jnp.exp2(s - lse[:, None]), 0.0)
        dp = _dot(do, v, trans_b=True)
        ds = p * (dp - delta[:, None])
        return dq + _dot(ds.astype(k.dtype), k)

    first, last = _block_range(lo_ref, hi_ref, block_k)
    dq = lax.fori_loop(first, last, body, jnp.zeros((block_q, q_ref.shape[-1]), jnp.float32))
    dq_ref[...] = (dq * scale).astype(dq_ref.dtype)


def _dkv_kernel(q_ref, k_ref, v_ref, seg_ref, lo_ref, hi_ref, do_ref, lse_ref, delta_ref, dk_ref, dv_ref, *, scale, half_window, block_q, block_k):
    k_start = pl.program_id(0) * block_k
    k = k_ref[...]
    v = v_ref[...]
    seg_k = seg_ref[pl.ds(k_start, block_k)]
    pos_k = k_start + jnp.arange(block_k, dtype=jnp.int32)

    def body(qb, carry):
        dk, dv = carry
        q_start = qb * block_q
        q = q_ref[pl.ds(q_start, block_q), :]
        do = do_ref[pl.ds(q_start, block_q), :]
        lse = lse_ref[pl.ds(q_start, block_q)]
        delta = delta_ref[pl.ds(q_start, block_q)]
        seg_q = seg_ref[pl.ds(q_start, block_q)]
        pos_q = q_start + jnp.arange(block_q, dtype=jnp.int32)
        s = _dot(q, k, trans_b=True) * (scale * _LOG2E)
        p = jnp.where(_visible(seg_q, pos_q, seg_k, pos_k, half_window), jnp.exp2(s - lse[:, None]), 0.0)
        dv = dv + _dot(p.astype(do.dtype), do, trans_a=True)
        dp = _dot(do, v, trans_b=True)
        ds = p * (dp - delta[:, None])
        dk = dk + _dot(ds.astype(q.dtype), q, trans_a=True)
        return dk, dv

    # Visibility is symmetric, so the key rows' own ranges bound the queries that see them.
    first, last = _block_range(lo_ref, hi_ref, block_q)
    zeros = jnp.zeros((block_k, k_ref.shape[-1]), jnp.float32)
    dk, dv = lax.fori_loop(first, last, body, (zeros, zeros))
    dk_ref[...] = (dk * scale).astype(dk_ref.dtype)
    dv_ref[...] = dv.astype(dv_ref.dtype)


def _params(blocks: BlockSizes, head_dim: int):
    num_warps = blocks.num_warps or (4 if head_dim <= 64 else 8)
    return triton_compiler_params(num_warps=num_warps, num_stages=blocks.num_stages)


def _row_tile(block: int, dim: int):
    """BlockSpec for the ``block`` rows of one (batch, head) of ``[B, T, H, D]``; grid (blocks, B, H)."""
    return pl.BlockSpec((None, block, None, dim), lambda i, b, h: (b, i, h, 0))


def _forward(q, k, v, seg, lo, hi, half_window, scale, blocks: BlockSizes, interpret):
    batch, length, heads, dim = q.shape
    bq, bk = blocks.block_q, blocks.block_k
    full = pl.BlockSpec((None, length, None, dim), lambda i, b, h: (b, 0, h, 0))
    kernel = functools.partial(_forward_kernel, scale=scale, half_window=half_window, block_q=bq, block_k=bk)
    return pl.pallas_call(
        kernel,
        grid=(length // bq, batch, heads),
        in_specs=[
            _row_tile(bq, dim),
            full,
            full,
            pl.BlockSpec((None, length), lambda i, b, h: (b, 0)),
            pl.BlockSpec((None, bq), lambda i, b, h: (b, i)),
            pl.BlockSpec((None, bq), lambda i, b, h: (b, i)),
        ],
        out_specs=[
            _row_tile(bq, dim),
            pl.BlockSpec((None, None, bq), lambda i, b, h: (b, h, i)),
        ],
        out_shape=[
            jax.ShapeDtypeStruct(q.shape, q.dtype),
            jax.ShapeDtypeStruct((batch, heads, length), jnp.float32),
        ],
        compiler_params=_params(blocks, dim),
        interpret=interpret,
        name="window_flash_forward",
    )(q, k, v, seg, lo, hi)


def _backward(q, k, v, seg, lo, hi, out, lse, do, half_window, scale, blocks: BlockSizes, interpret):
    batch, length, heads, dim = q.shape
    delta = jnp.einsum("bthd,bthd->bht", out.astype(jnp.float32), do.astype(jnp.float32))
    full = pl.BlockSpec((None, length, None, dim), lambda i, b, h: (b, 0, h, 0))
    full_seg = pl.BlockSpec((None, length), lambda i, b, h: (b, 0))
    full_stat = pl.BlockSpec((None, None, length), lambda i, b, h: (b, h, 0))
    args = (q, k, v, seg, lo, hi, do, lse, delta)

    bq, bk = blocks.block_q_dq, blocks.block_k_dq
    rows = pl.BlockSpec((None, bq), lambda i, b, h: (b, i))
    stat = pl.BlockSpec((None, None, bq), lambda i, b, h: (b, h, i))
    dq = pl.pallas_call(
        functools.partial(_dq_kernel, scale=scale, half_window=half_window, block_q=bq, block_k=bk),
        grid=(length // bq, batch, heads),
        in_specs=[_row_tile(bq, dim), full, full, full_seg, rows, rows, _row_tile(bq, dim), stat, stat],
        out_specs=_row_tile(bq, dim),
        out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
        compiler_params=_params(blocks, dim),
        interpret=interpret,
        name="window_flash_dq",
    )(*args)

    bq, bk = blocks.block_q_dkv, blocks.block_k_dkv
    rows = pl.BlockSpec((None, bk), lambda i, b, h: (b, i))
    dk, dv = pl.pallas_call(
        functools.partial(_dkv_kernel, scale=scale, half_window=half_window, block_q=bq, block_k=bk),
        grid=(length // bk, batch, heads),
        in_specs=[full, _row_tile(bk, dim), _row_tile(bk, dim), full_seg, rows, rows, full, full_stat, full_stat],
        out_specs=[_row_tile(bk, dim), _row_tile(bk, dim)],
        out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)],
        compiler_params=_params(blocks, dim),
        interpret=interpret,
        name="window_flash_dkv",
    )(*args)
    return dq, dk, dv


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7, 8, 9))
def _flash(q, k, v, seg, lo, hi, half_window, scale, blocks, interpret):
    return _forward(q, k, v, seg, lo, hi, half_window, scale, blocks, interpret)[0]


def _flash_fwd(q, k, v, seg, lo, hi, half_window, scale, blocks, interpret):
    out, lse = _forward(q, k, v, seg, lo, hi, half_window, scale, blocks, interpret)
    return out, (q, k, v, seg, lo, hi, out, lse)


def _flash_bwd(half_window, scale, blocks, interpret, residuals, do):
    q, k, v, seg, lo, hi, out, lse = residuals
    dq, dk, dv = _backward(q, k, v, seg, lo, hi, out, lse, do, half_window, scale, blocks, interpret)
    return dq, dk, dv, None, None, None


_flash.defvjp(_flash_fwd, _flash_bwd)


def flash_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    *,
    segment_ids: jax.Array,
    half_window: Optional[int],
    interpret: bool = False,
    block_sizes: Optional[BlockSizes] = None,
) -> jax.Array:
    """Attention with the contract of `modernbert_jax.attention`, as a fused Pallas kernel.

    Args:
      q, k, v: ``[B, T, H, D]``, float32 / bfloat16 / float16 (one dtype for all three).
      segment_ids: ``[B, T]`` int, 0 = padding; segments must be contiguous runs.
      half_window: half-width ``w`` (``|i - j| <= w``) or ``None`` for global attention.
      interpret: run the kernels in Pallas interpret mode (CPU testing).
      block_sizes: tiles and launch parameters; `BlockSizes()` by default.
    """
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype; got {q.dtype}, {k.dtype}, {v.dtype}")
    batch, length, heads, head_dim = q.shape
    blocks = (block_sizes or BlockSizes()).clamped(length)
    padded = -(-length // blocks.largest) * blocks.largest
    padded_dim = max(_MIN_BLOCK, _next_power_of_2(head_dim))
    pad = [(0, 0), (0, padded - length), (0, 0), (0, padded_dim - head_dim)]
    seg = jnp.pad(segment_ids.astype(jnp.int32), [(0, 0), (0, padded - length)])
    lo, hi = key_ranges(seg, half_window)
    out = _flash(
        jnp.pad(q, pad), jnp.pad(k, pad), jnp.pad(v, pad), seg, lo, hi, half_window, head_dim**-0.5, blocks, interpret
    )
    return out[:, :length, :, :head_dim]
