"""GLiNER's projection FFN and the ``markerV0`` span representation, fused with type scoring.

``markerV0``: ``span(s, e) = FFN_out(relu([FFN_start(h_s); FFN_end(h_e)]))`` for every start
``s`` and width ``k < max_width`` (``e = s + k``), where ``FFN(x) = W2 · dropout(relu(W1 x))``.
The score against type vector ``q_c`` is ``span(s, e) · q_c``. Because the first layer of
``FFN_out`` is linear in the concatenation, it splits into a start part and an end part
computed once per word; and because the last layer is linear, ``span · q`` is computed as
``hidden · (W2ᵀ q) + b2 · q``, so the ``[B, W, K, D]`` span tensor is never materialised.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from modernbert_jax import precision
from modernbert_jax.dropout import Dropout


def torch_linear_init(fan_in: int):
    """PyTorch's ``nn.Linear`` default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.

    The reference trains from this initialisation; LeCun-normal is 3x larger in variance and
    makes the first steps' span logits (products of two deep projections) far larger.
    """
    bound = 1.0 / fan_in**0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def Linear(features: int, fan_in: int, name: str | None = None, bf16_matmuls: bool = False) -> nn.Dense:
    """``torch.nn.Linear`` as a Flax ``Dense``; ``bf16_matmuls``: bfloat16 inputs, float32 accumulation."""
    return nn.Dense(features, kernel_init=torch_linear_init(fan_in), bias_init=torch_linear_init(fan_in), name=name,
                    dot_general=precision.bf16_dot_general if bf16_matmuls else None)


class ProjectionFFN(nn.Module):
    """``Linear(d_in, 4·d_out) → ReLU → Dropout → Linear(4·d_out, d_out)`` (reference layout)."""

    out_dim: int
    dropout: float = 0.0
    bf16_matmuls: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool = True) -> jax.Array:
        x = nn.relu(Linear(4 * self.out_dim, x.shape[-1], "dense_in", self.bf16_matmuls)(x))
        x = Dropout(self.dropout)(x, deterministic=deterministic)
        return Linear(self.out_dim, 4 * self.out_dim, "dense_out", self.bf16_matmuls)(x)


def span_indices(num_words: int, max_width: int, lengths: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Start/end word indices ``[B, W, K]`` and validity (``end < length``).

    Invalid spans point at word 0 for both ends, as the reference's ``span_idx * span_mask``.
    """
    start = jnp.arange(num_words)[:, None]
    end = start + jnp.arange(max_width)[None, :]
    valid = end[None] < lengths[:, None, None]
    return jnp.where(valid, start[None], 0), jnp.where(valid, end[None], 0), valid


class SpanMarkerV0Scorer(nn.Module):
    """Span representations (markerV0) scored against projected type vectors."""

    hidden_size: int
    max_width: int
    dropout: float = 0.0
    bf16_matmuls: bool = False

    @nn.compact
    def __call__(self, words: jax.Array, types: jax.Array, lengths: jax.Array, deterministic: bool = True):
        """``words [B, W, D]``, ``types [B, C, D]`` (already projected) → logits ``[B, W, K, C]``, valid ``[B, W, K]``."""
        D = self.hidden_size
        start_rep = ProjectionFFN(D, self.dropout, self.bf16_matmuls, name="project_start")(words, deterministic)
        end_rep = ProjectionFFN(D, self.dropout, self.bf16_matmuls, name="project_end")(words, deterministic)
        w1 = self.param("out_dense_in_kernel", torch_linear_init(2 * D), (2 * D, 4 * D))
        b1 = self.param("out_dense_in_bias", torch_linear_init(2 * D), (4 * D,))
        w2 = self.param("out_dense_out_kernel", torch_linear_init(4 * D), (4 * D, D))
        b2 = self.param("out_dense_out_bias", torch_linear_init(4 * D), (D,))
        # relu([a; b]) = [relu(a); relu(b)], so the first out-layer splits by half.
        matmul: Callable = precision.bf16_matmul if self.bf16_matmuls else jnp.matmul
        from_start = matmul(nn.relu(start_rep), w1[:D])
        from_end = matmul(nn.relu(end_rep), w1[D:])
        starts, ends, valid = span_indices(words.shape[1], self.max_width, lengths)
        take = jax.vmap(lambda table, idx: table[idx])
        hidden = nn.relu(take(from_start, starts) + take(from_end, ends) + b1)  # [B, W, K, 4D]
        hidden = Dropout(self.dropout)(hidden, deterministic=deterministic)
        type_keys = jnp.einsum("hd,bcd->bch", w2, types)  # W2ᵀ q for each type
        logits = jnp.einsum("bwkh,bch->bwkc", hidden, type_keys) + jnp.einsum("d,bcd->bc", b2, types)[:, None, None]
        return logits, valid
