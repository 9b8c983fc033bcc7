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

from gliner_jax.span_rep import torch_linear_init


class BiLSTMLayer(nn.Module):
    """One bidirectional layer; ``x [B, T, I]`` → ``[B, T, 2H]`` (forward then backward features).

    Both directions advance in the same scan step (the backward one reading the sequence
    from the end), with a partly unrolled loop: on CPU the per-iteration cost of the loop,
    not the tiny matmuls, dominates.
    """

    hidden_size: int

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> jax.Array:
        H = self.hidden_size
        init = torch_linear_init(H)  # PyTorch's LSTM initialisation: U(-1/sqrt(H), 1/sqrt(H))

        def direction_params(name):
            return {
                "w_ih": self.param(f"{name}_w_ih", init, (x.shape[-1], 4 * H)),
                "w_hh": self.param(f"{name}_w_hh", init, (H, 4 * H)),
                "bias": self.param(f"{name}_bias", init, (4 * H,)),
            }

        fwd, bwd = direction_params("forward"), direction_params("backward")
        B, T, _ = x.shape
        # Input projections for all steps at once; the backward stream is time-reversed.
        gx = jnp.stack([
            jnp.einsum("bti,ig->tbg", x, fwd["w_ih"]) + fwd["bias"],
            (jnp.einsum("bti,ig->tbg", x, bwd["w_ih"]) + bwd["bias"])[::-1],
        ], axis=1)  # [T, 2, B, 4H]
        w_hh = jnp.stack([fwd["w_hh"], bwd["w_hh"]])  # [2, H, 4H]
        steps = jnp.stack([jnp.arange(T), jnp.arange(T)[::-1]], axis=1)  # position read by each stream

        def step(carry, inputs):
            h, c = carry  # [2, B, H]
            g, t = inputs
            i, f, gg, o = jnp.split(g + jnp.einsum("dbh,dhg->dbg", h, w_hh), 4, axis=-1)
            c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(gg)
            h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
            valid = (t[:, None] < lengths[None, :])[..., None]  # [2, B, 1]: packed-sequence semantics
            h = jnp.where(valid, h_new, h)
            c = jnp.where(valid, c_new, c)
            return (h, c), jnp.where(valid, h_new, 0.0)

        zeros = jnp.zeros((2, B, H), x.dtype)
        _, out = jax.lax.scan(step, (zeros, zeros), (gx, steps), unroll=8)  # [T, 2, B, H]
        forward, backward = out[:, 0], out[::-1, 1]
        return jnp.swapaxes(jnp.concatenate([forward, backward], axis=-1), 0, 1)


class BiLSTM(nn.Module):
    """Stacked bidirectional LSTM; output width ``2 * hidden_size``."""

    hidden_size: int
    num_layers: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> jax.Array:
        for layer in range(self.num_layers):
            x = BiLSTMLayer(self.hidden_size, name=f"l{layer}")(x, lengths)
        return x
