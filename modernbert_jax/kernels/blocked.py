"""Blocked local attention in pure JAX: O(T*w) time and memory for sliding-window layers.

The sequence is cut into query blocks of ``block_size`` tokens. A query block can only see
keys within ``w`` positions, i.e. inside its own key block and the ``r = ceil(w / block_size)``
key blocks on either side, so each query block attends to a band of ``(2r + 1) * block_size``
keys gathered by stacking shifted views of the key sequence. Masking inside the band
(window edges, segment boundaries, padding) is exact, so results match the dense reference.
Gradients come from JAX autodiff; the band is the only activation saved, so the backward pass
is O(T*w) as well.

Global attention (``half_window=None``), or a window so wide that the band covers the whole
sequence, has nothing to skip and uses the dense reference path.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from modernbert_jax.kernels.reference import xla_attention

_MIN_BLOCK = 16
_MAX_BLOCK = 256


def default_block_size(half_window: int) -> int:
    """Block size equal to the window half-width (clamped): the band is then 3 blocks wide."""
    return max(_MIN_BLOCK, min(half_window, _MAX_BLOCK))


def _key_bands(x: jax.Array, num_blocks: int, block_size: int, radius: int) -> jax.Array:
    """``[B, n*c, ...]`` -> ``[B, n, (2r+1)*c, ...]``: for each block, the keys of blocks i-r..i+r."""
    pad = [(0, 0)] * x.ndim
    pad[1] = (radius * block_size, radius * block_size)
    x = jnp.pad(x, pad)
    length = num_blocks * block_size
    bands = [
        x[:, offset * block_size : offset * block_size + length].reshape(
            (x.shape[0], num_blocks, block_size) + x.shape[2:]
        )
        for offset in range(2 * radius + 1)
    ]
    band = jnp.stack(bands, axis=2)
    return band.reshape((x.shape[0], num_blocks, (2 * radius + 1) * block_size) + x.shape[2:])


def blocked_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    *,
    segment_ids: jax.Array,
    half_window: Optional[int],
    block_size: Optional[int] = None,
) -> jax.Array:
    """Attention with the contract of `modernbert_jax.attention`, O(T*w) for local windows.

    Args:
      q, k, v: ``[B, T, H, D]``.
      segment_ids: ``[B, T]`` int, 0 = padding.
      half_window: half-width ``w`` (``|i - j| <= w``) or ``None`` for global attention.
      block_size: query block length; defaults to ``w`` clamped to [16, 256].
    """
    if half_window is None:
        return xla_attention(q, k, v, segment_ids=segment_ids, half_window=None)
    batch, length, heads, head_dim = q.shape
    block = block_size or default_block_size(half_window)
    radius = -(-half_window // block)
    num_blocks = -(-length // block)
    if (2 * radius + 1) * block >= num_blocks * block:
        # The band would cover the whole (padded) sequence: dense is no more work.
        return xla_attention(q, k, v, segment_ids=segment_ids, half_window=half_window)

    padded = num_blocks * block
    pad_t = [(0, 0), (0, padded - length), (0, 0), (0, 0)]
    q_blocks = jnp.pad(q, pad_t).reshape(batch, num_blocks, block, heads, head_dim)
    k_band = _key_bands(jnp.pad(k, pad_t), num_blocks, block, radius)
    v_band = _key_bands(jnp.pad(v, pad_t), num_blocks, block, radius)

    seg = jnp.pad(segment_ids, [(0, 0), (0, padded - length)])
    seg_q = seg.reshape(batch, num_blocks, block)
    seg_k = _key_bands(seg, num_blocks, block, radius)  # zero-padded ends read as padding
    pos = jnp.arange(padded)
    pos_q = pos.reshape(num_blocks, block)
    pos_k = _key_bands(pos[None], num_blocks, block, radius)[0]  # out-of-range keys are masked by segment 0

    mask = (seg_q[..., :, None] == seg_k[..., None, :]) & (seg_q != 0)[..., :, None]
    mask = mask & (jnp.abs(pos_q[:, :, None] - pos_k[:, None, :]) <= half_window)[None]
    mask = mask[:, :, None]  # [B, n, 1, c, K]: shared by all heads

    scale = head_dim**-0.5
    logits = jnp.einsum("bnqhd,bnkhd->bnhqk", q_blocks, k_band, preferred_element_type=jnp.float32) * scale
    logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(logits, axis=-1)
    # Padding queries see no key; zero them rather than keep softmax's uniform row.
    probs = jnp.where(mask.any(axis=-1, keepdims=True), probs, 0.0)
    out = jnp.einsum("bnhqk,bnkhd->bnqhd", probs.astype(v.dtype), v_band, preferred_element_type=jnp.float32)
    return out.reshape(batch, padded, heads, head_dim)[:, :length].astype(q.dtype)
