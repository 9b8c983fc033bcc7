"""A (bi)directional LSTM in Flax with ``torch.nn.LSTM`` semantics over packed sequences.

Matches ``pack_padded_sequence → nn.LSTM(bidirectional=True, batch_first=True) →
pad_packed_sequence``: the forward direction reads positions ``0..len-1``, the backward
direction starts from a zero state at ``len-1``, and outputs past ``len`` are zero.
Gates are ordered (input, forget, cell, output) as in PyTorch; the two PyTorch biases are
stored summed since only their sum enters the computation.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def _uniform(scale: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


class LSTMDirection(nn.Module):
    """One direction of one layer; ``x [B, T, I]`` → ``h [B, T, H]``."""

    hidden_size: int
    reverse: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> jax.Array:
        H = self.hidden_size
        init = _uniform(1.0 / H**0.5)  # PyTorch's LSTM initialisation
        w_ih = self.param("w_ih", init, (x.shape[-1], 4 * H))
        w_hh = self.param("w_hh", init, (H, 4 * H))
        bias = self.param("bias", init, (4 * H,))
        B, T, _ = x.shape
        gates_x = jnp.einsum("bti,ig->tbg", x, w_ih) + bias  # input projection for all steps at once
        steps = jnp.arange(T)
        if self.reverse:
            gates_x, steps = gates_x[::-1], steps[::-1]

        def step(carry, inputs):
            h, c = carry
            gx, t = inputs
            i, f, g, o = jnp.split(gx + h @ w_hh, 4, axis=-1)
            c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
            valid = (t < lengths)[:, None]
            h = jnp.where(valid, h_new, h)
            c = jnp.where(valid, c_new, c)
            return (h, c), jnp.where(valid, h_new, 0.0)

        zeros = jnp.zeros((B, H), x.dtype)
        _, out = jax.lax.scan(step, (zeros, zeros), (gates_x, steps))
        if self.reverse:
            out = out[::-1]
        return jnp.swapaxes(out, 0, 1)


class BiLSTM(nn.Module):
    """Stacked bidirectional LSTM; output width ``2 * hidden_size``."""

    hidden_size: int
    num_layers: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> jax.Array:
        for layer in range(self.num_layers):
            fwd = LSTMDirection(self.hidden_size, reverse=False, name=f"l{layer}_forward")(x, lengths)
            bwd = LSTMDirection(self.hidden_size, reverse=True, name=f"l{layer}_backward")(x, lengths)
            x = jnp.concatenate([fwd, bwd], axis=-1)
        return x
