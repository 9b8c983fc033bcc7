"""The building blocks of the encoder, each named after the paper's concept.

``Embeddings`` (token [+ absolute position + token type] → LayerNorm), ``Attention`` (fused
Wqkv, RoPE, packed-segment attention through the dispatch point), ``GeGLU`` / ``GeluMLP``,
``EncoderLayer`` (pre- or post-norm residual block) and ``PredictionHead`` (dense → GELU →
norm). Parameters carry logical axis names; large activations carry logical constraints.
"""

from __future__ import annotations

import math
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from modernbert_jax import attention as attention_lib
from modernbert_jax import precision, rope
from modernbert_jax.dropout import Dropout


def compute_dtype(cfg: ml_collections.ConfigDict) -> jnp.dtype:
    """The activation dtype; "auto" means bfloat16 on accelerators and float32 on CPU."""
    if cfg.dtype == "auto":
        return jnp.dtype(jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16)
    return jnp.dtype(cfg.dtype)


def trunc_normal(cfg: ml_collections.ConfigDict, std: float) -> nn.initializers.Initializer:
    """ModernBERT's initialiser: a normal truncated at ±initializer_cutoff_factor·std."""
    cutoff = cfg.initializer_cutoff_factor
    return nn.initializers.truncated_normal(std, lower=-cutoff, upper=cutoff)


def init_std(cfg: ml_collections.ConfigDict, kind: str) -> float:
    """ModernBERT's per-role standard deviations: output projections shrink with depth."""
    if kind == "out":
        return cfg.initializer_range / math.sqrt(2.0 * cfg.num_layers)
    return cfg.initializer_range


def activation(cfg: ml_collections.ConfigDict, x: jax.Array) -> jax.Array:
    return jax.nn.gelu(x, approximate=cfg.hidden_activation == "gelu_tanh")


def dense(cfg: ml_collections.ConfigDict, features: int, axes: tuple, *, use_bias: bool, std_kind: str, name: str) -> nn.Dense:
    return nn.Dense(
        features,
        use_bias=use_bias,
        dtype=compute_dtype(cfg),
        param_dtype=jnp.float32,
        dot_general=precision.bf16_dot_general if cfg.matmul_dtype == "bfloat16" else None,
        kernel_init=nn.with_logical_partitioning(
            trunc_normal(cfg, init_std(cfg, std_kind)), axes
        ),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), axes[-1:]),
        name=name,
    )


def layer_norm(cfg: ml_collections.ConfigDict, name: str) -> nn.LayerNorm:
    # Norm statistics in float32 whatever the compute dtype; the caller casts back.
    return nn.LayerNorm(
        epsilon=cfg.norm_eps,
        use_bias=cfg.norm_bias,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
        scale_init=nn.with_logical_partitioning(nn.initializers.ones_init(), ("norm",)),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), ("norm",)),
        name=name,
    )


def constrain(x: jax.Array, axes: tuple) -> jax.Array:
    return nn.with_logical_constraint(x, axes)


class Embeddings(nn.Module):
    """Token embeddings (+ absolute positions and token types for BERT), then LayerNorm."""

    config: ml_collections.ConfigDict

    def setup(self):
        cfg = self.config
        emb_init = trunc_normal(cfg, cfg.initializer_range)
        self.tok_embeddings = nn.Embed(
            cfg.vocab_size, cfg.hidden_size, param_dtype=jnp.float32,
            embedding_init=nn.with_logical_partitioning(emb_init, ("vocab", "embed")),
        )
        if cfg.position_embedding == "absolute":
            self.position_embeddings = nn.Embed(
                cfg.max_position_embeddings, cfg.hidden_size, param_dtype=jnp.float32,
                embedding_init=nn.with_logical_partitioning(emb_init, (None, "embed")),
            )
        if cfg.type_vocab_size:
            self.token_type_embeddings = nn.Embed(
                cfg.type_vocab_size, cfg.hidden_size, param_dtype=jnp.float32,
                embedding_init=nn.with_logical_partitioning(emb_init, (None, "embed")),
            )
        self.norm = layer_norm(cfg, "norm")
        self.drop = Dropout(cfg.embedding_dropout)

    def __call__(self, input_ids, positions, token_type_ids, deterministic: bool) -> jax.Array:
        cfg = self.config
        x = self.tok_embeddings(input_ids)
        if cfg.position_embedding == "absolute":
            x = x + self.position_embeddings(positions)
        if cfg.type_vocab_size:
            x = x + self.token_type_embeddings(token_type_ids)
        x = self.norm(x).astype(compute_dtype(cfg))
        return self.drop(x, deterministic=deterministic)

    def attend(self, x: jax.Array) -> jax.Array:
        """Tied MLM decoder: logits against the token embedding matrix."""
        table = self.tok_embeddings.embedding.astype(x.dtype)
        return jnp.einsum("...d,vd->...v", x, table)


class Attention(nn.Module):
    """Multi-head self-attention: fused Wqkv, RoPE, local or global window, packed segments."""

    config: ml_collections.ConfigDict
    half_window: Optional[int]  # half-width of the local window (|i - j| <= w); None = global

    @nn.compact
    def __call__(self, x, segment_ids, positions, deterministic: bool) -> jax.Array:
        cfg = self.config
        batch, length, _ = x.shape
        head_dim = cfg.hidden_size // cfg.num_heads
        qkv = dense(cfg, 3 * cfg.hidden_size, ("embed", "heads"), use_bias=cfg.attention_bias, std_kind="in", name="Wqkv")(x)
        qkv = qkv.reshape(batch, length, 3, cfg.num_heads, head_dim)
        q, k, v = (constrain(qkv[:, :, i], ("act_batch", "act_length", "act_heads", "act_kv")) for i in range(3))
        if cfg.position_embedding == "rope":
            theta = cfg.global_rope_theta if self.half_window is None else cfg.local_rope_theta
            cos, sin = rope.rotary_cos_sin(positions, head_dim, theta)
            q, k = rope.apply_rotary(q, cos, sin), rope.apply_rotary(k, cos, sin)
        dropout_rate = 0.0 if deterministic else cfg.attention_dropout
        out = attention_lib.dot_product_attention(
            q, k, v, segment_ids=segment_ids, half_window=self.half_window, impl=cfg.attention_impl,
            dropout_rate=dropout_rate,
            dropout_rng=self.make_rng("dropout") if dropout_rate else None,
        )
        out = out.reshape(batch, length, cfg.hidden_size)
        out = dense(cfg, cfg.hidden_size, ("heads", "embed"), use_bias=cfg.attention_bias, std_kind="out", name="Wo")(out)
        return constrain(out, ("act_batch", "act_length", "act_embed"))


class GeGLU(nn.Module):
    """ModernBERT's MLP: ``Wo(gelu(x1) * x2)`` with ``[x1, x2] = Wi x``."""

    config: ml_collections.ConfigDict

    @nn.compact
    def __call__(self, x, deterministic: bool) -> jax.Array:
        cfg = self.config
        h = dense(cfg, 2 * cfg.intermediate_size, ("embed", "mlp"), use_bias=cfg.mlp_bias, std_kind="in", name="Wi")(x)
        h = constrain(h, ("act_batch", "act_length", "act_mlp"))
        x1, x2 = jnp.split(h, 2, axis=-1)
        h = Dropout(cfg.mlp_dropout)(activation(cfg, x1) * x2, deterministic=deterministic)
        return dense(cfg, cfg.hidden_size, ("mlp", "embed"), use_bias=cfg.mlp_bias, std_kind="out", name="Wo")(h)


class GeluMLP(nn.Module):
    """BERT's MLP: ``Wo(gelu(Wi x))``."""

    config: ml_collections.ConfigDict

    @nn.compact
    def __call__(self, x, deterministic: bool) -> jax.Array:
        cfg = self.config
        h = dense(cfg, cfg.intermediate_size, ("embed", "mlp"), use_bias=cfg.mlp_bias, std_kind="in", name="Wi")(x)
        h = constrain(activation(cfg, h), ("act_batch", "act_length", "act_mlp"))
        return dense(cfg, cfg.hidden_size, ("mlp", "embed"), use_bias=cfg.mlp_bias, std_kind="out", name="Wo")(h)


class EncoderLayer(nn.Module):
    """One residual block. Pre-norm: ``x + attn(norm(x))``; post-norm: ``norm(x + attn(x))``."""

    config: ml_collections.ConfigDict
    layer: int
    half_window: Optional[int]

    @nn.compact
    def __call__(self, x, segment_ids, positions, deterministic: bool) -> jax.Array:
        cfg = self.config
        dtype = compute_dtype(cfg)
        attn = Attention(cfg, self.half_window, name="attn")
        mlp = (GeGLU if cfg.mlp == "geglu" else GeluMLP)(cfg, name="mlp")
        drop = Dropout(cfg.mlp_dropout)
        if cfg.norm_placement == "pre":
            has_attn_norm = self.layer > 0 or cfg.first_layer_attn_norm
            h = layer_norm(cfg, "attn_norm")(x).astype(dtype) if has_attn_norm else x
            x = x + attn(h, segment_ids, positions, deterministic)
            x = x + mlp(layer_norm(cfg, "mlp_norm")(x).astype(dtype), deterministic)
        else:
            h = drop(attn(x, segment_ids, positions, deterministic), deterministic=deterministic)
            x = layer_norm(cfg, "attn_norm")(x + h).astype(dtype)
            h = drop(mlp(x, deterministic), deterministic=deterministic)
            x = layer_norm(cfg, "mlp_norm")(x + h).astype(dtype)
        return constrain(x, ("act_batch", "act_length", "act_embed"))


class PredictionHead(nn.Module):
    """MLM / classification head transform: dense → GELU → LayerNorm."""

    config: ml_collections.ConfigDict

    @nn.compact
    def __call__(self, x) -> jax.Array:
        cfg = self.config
        x = dense(cfg, cfg.hidden_size, ("embed", None), use_bias=cfg.head_bias, std_kind="out", name="dense")(x)
        return layer_norm(cfg, "norm")(activation(cfg, x)).astype(compute_dtype(cfg))
