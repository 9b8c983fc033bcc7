"""The building blocks of the encoder, each named after the paper's concept.

``Embeddings`` (token [+ absolute position + token type] → LayerNorm), ``RelativePositions``
(what DeBERTa's and MPNet's relative attention share across layers), ``Attention`` (fused Wqkv,
RoPE or relative scores, packed-segment attention through the dispatch point), ``GeGLU`` /
``GeluMLP``, ``EncoderLayer`` (pre- or post-norm residual block), ``ConvLayer`` (DeBERTa-v2's
convolution beside layer 0), ``PredictionHead`` (dense → GELU → norm), ``Pooler`` (BERT's
dense → tanh on the pooled vector) and ``classifier`` (the task heads' final linear layer).
Parameters carry logical axis names; large activations carry logical constraints.
"""

from __future__ import annotations

import math
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from modernbert_jax import attention as attention_lib
from modernbert_jax import precision, relative_position, rope
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
    """ModernBERT's per-role standard deviations: output projections shrink with depth, and its
    classifier ("final_out") scales with the width it reads."""
    if kind == "out":
        return cfg.initializer_range / math.sqrt(2.0 * cfg.num_layers)
    if kind == "final_out":
        return cfg.hidden_size ** -0.5
    return cfg.initializer_range


def activation(cfg: ml_collections.ConfigDict, x: jax.Array, name: str | None = None) -> jax.Array:
    """The config's GELU (``hidden_activation``), or ``name`` ("tanh", "gelu") where a layer has its own."""
    if name == "tanh":
        return jnp.tanh(x)
    if name == "gelu":
        return jax.nn.gelu(x, approximate=False)
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
            x = x + self.position_embeddings(positions + cfg.position_offset)
        if cfg.type_vocab_size:
            x = x + self.token_type_embeddings(token_type_ids)
        x = self.norm(x).astype(compute_dtype(cfg))
        return self.drop(x, deterministic=deterministic)

    def attend(self, x: jax.Array) -> jax.Array:
        """Tied MLM decoder: logits against the token embedding matrix."""
        table = self.tok_embeddings.embedding.astype(x.dtype)
        return jnp.einsum("...d,vd->...v", x, table)


class RelativePositions(nn.Module):
    """What every layer's relative attention shares, computed once per forward from ``positions``.

    Disentangled (DeBERTa): the rows of the relative embedding table ``[2 * span, hidden]``
    (LayerNorm'd when ``norm_rel_ebd``) that the input length reaches, and each pair's row among
    them, ``clip(bucket(p_i - p_j) + span) - first reachable row``. Buckets
    (MPNet): the per-head score bias ``[B, H, T, T]`` looked up from a ``[buckets, H]`` table.
    """

    config: ml_collections.ConfigDict

    @nn.compact
    def __call__(self, positions: jax.Array) -> dict[str, jax.Array]:
        cfg = self.config
        rel = relative_position.relative_positions(positions)
        init = nn.with_logical_partitioning(trunc_normal(cfg, cfg.initializer_range), (None, "embed"))
        if cfg.relative_attention == "disentangled":
            span = cfg.relative_buckets or cfg.max_relative_positions
            table = self.param("rel_embeddings", init, (2 * span, cfg.hidden_size))
            if cfg.norm_rel_ebd:
                table = layer_norm(cfg, "norm")(table)
            if cfg.relative_buckets:
                rel = relative_position.deberta_log_buckets(rel, cfg.relative_buckets, cfg.max_relative_positions)
            # Only the rows this input length can reach: every layer projects the table and scores
            # each query against it, which for short inputs costs more than the attention itself.
            lo, hi = relative_position.reachable_rows(
                positions.shape[1], span, cfg.relative_buckets, cfg.max_relative_positions)
            index = jnp.clip(rel + span, lo, hi - 1) - lo
            return {"table": table[lo:hi].astype(compute_dtype(cfg)), "index": index}
        table = self.param("relative_attention_bias", nn.with_logical_partitioning(
            trunc_normal(cfg, cfg.initializer_range), (None, "heads")), (cfg.relative_buckets, cfg.num_heads))
        buckets = relative_position.t5_buckets(rel, cfg.relative_buckets, cfg.max_relative_positions)
        return {"bias": jnp.transpose(table[buckets], (0, 3, 1, 2))}


def disentangled_bias(cfg: ml_collections.ConfigDict, q: jax.Array, k: jax.Array, pos_q: jax.Array | None,
                      pos_k: jax.Array | None, index: jax.Array) -> jax.Array:
    """DeBERTa's content→position and position→content scores ``[B, H, T, T]``, unscaled.

    ``q, k [B, T, H, D]``; ``pos_q, pos_k [R, H, D]`` (the reachable relative rows projected by
    the query / key projections); ``index [B, T, T]``. Both terms use the same row for a pair
    (i, j): the reference's position→content gather at ``-bucket(p_j - p_i)`` is
    ``bucket(p_i - p_j)`` because the bucketing is odd.
    """
    score = 0.0
    if "c2p" in cfg.pos_att_type:
        c2p = jnp.einsum("bihd,rhd->bhir", q, pos_k, preferred_element_type=jnp.float32)
        score = score + jnp.take_along_axis(c2p, index[:, None], axis=-1)
    if "p2c" in cfg.pos_att_type:
        p2c = jnp.einsum("bjhd,rhd->bhjr", k, pos_q, preferred_element_type=jnp.float32)
        score = score + jnp.swapaxes(jnp.take_along_axis(p2c, jnp.swapaxes(index, 1, 2)[:, None], axis=-1), -1, -2)
    return score


class Attention(nn.Module):
    """Multi-head self-attention: fused Wqkv, RoPE or relative scores, local or global window, packed segments."""

    config: ml_collections.ConfigDict
    half_window: Optional[int]  # half-width of the local window (|i - j| <= w); None = global

    @nn.compact
    def __call__(self, x, segment_ids, positions, relative: Optional[dict], deterministic: bool) -> jax.Array:
        cfg = self.config
        batch, length, _ = x.shape
        head_dim = cfg.hidden_size // cfg.num_heads
        wqkv = dense(cfg, 3 * cfg.hidden_size, ("embed", "heads"), use_bias=cfg.attention_bias, std_kind="in", name="Wqkv")
        qkv = wqkv(x).reshape(batch, length, 3, cfg.num_heads, head_dim)
        q, k, v = (constrain(qkv[:, :, i], ("act_batch", "act_length", "act_heads", "act_kv")) for i in range(3))
        if cfg.position_embedding == "rope":
            theta = cfg.global_rope_theta if self.half_window is None else cfg.local_rope_theta
            cos, sin = rope.rotary_cos_sin(positions, head_dim, theta)
            q, k = rope.apply_rotary(q, cos, sin), rope.apply_rotary(k, cos, sin)
        bias = None
        if cfg.relative_attention == "buckets":
            bias = relative["bias"]
        elif cfg.relative_attention == "disentangled":
            table = Dropout(cfg.mlp_dropout)(relative["table"], deterministic=deterministic)  # DeBERTa's pos_dropout
            if cfg.share_att_key:
                pos_q, pos_k, _ = jnp.split(wqkv(table).reshape(-1, 3, cfg.num_heads, head_dim), 3, axis=1)
                pos_q, pos_k = pos_q[:, 0], pos_k[:, 0]
            else:
                def project(name):
                    out = dense(cfg, cfg.hidden_size, ("embed", "heads"), use_bias=True, std_kind="in", name=name)(table)
                    return out.reshape(-1, cfg.num_heads, head_dim)
                pos_k = project("pos_key_proj") if "c2p" in cfg.pos_att_type else None
                pos_q = project("pos_query_proj") if "p2c" in cfg.pos_att_type else None
            # Every term is divided by sqrt(D * scale_factor), one factor per score term; the
            # kernel divides q.k by sqrt(D), so q takes the rest.
            scale_factor = 1 + len(cfg.pos_att_type.split("|"))
            bias = disentangled_bias(cfg, q, k, pos_q, pos_k, relative["index"]) / math.sqrt(head_dim * scale_factor)
            q = q * jnp.asarray(scale_factor ** -0.5, q.dtype)
        dropout_rate = 0.0 if deterministic else cfg.attention_dropout
        out = attention_lib.dot_product_attention(
            q, k, v, segment_ids=segment_ids, half_window=self.half_window, impl=cfg.attention_impl, bias=bias,
            dropout_rate=dropout_rate,
            dropout_rng=self.make_rng("dropout") if dropout_rate else None,
            segments_checked=True,  # by Encoder, once per forward (or off: model.check_inputs)
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
    def __call__(self, x, segment_ids, positions, relative: Optional[dict], deterministic: bool) -> jax.Array:
        cfg = self.config
        dtype = compute_dtype(cfg)
        attn = Attention(cfg, self.half_window, name="attn")
        mlp = (GeGLU if cfg.mlp == "geglu" else GeluMLP)(cfg, name="mlp")
        drop = Dropout(cfg.mlp_dropout)
        if cfg.norm_placement == "pre":
            has_attn_norm = self.layer > 0 or cfg.first_layer_attn_norm
            h = layer_norm(cfg, "attn_norm")(x).astype(dtype) if has_attn_norm else x
            x = x + attn(h, segment_ids, positions, relative, deterministic)
            x = x + mlp(layer_norm(cfg, "mlp_norm")(x).astype(dtype), deterministic)
        else:
            h = drop(attn(x, segment_ids, positions, relative, deterministic), deterministic=deterministic)
            x = layer_norm(cfg, "attn_norm")(x + h).astype(dtype)
            h = drop(mlp(x, deterministic), deterministic=deterministic)
            x = layer_norm(cfg, "mlp_norm")(x + h).astype(dtype)
        return constrain(x, ("act_batch", "act_length", "act_embed"))


class ConvLayer(nn.Module):
    """DeBERTa-v2's convolution beside layer 0: ``norm(layer0_out + act(conv(embeddings)))``.

    The 1-D convolution (odd ``conv_kernel_size``, zero padding) sees a neighbour only inside
    the token's own segment, so packed sequences do not leak into each other and a padded row
    sees zeros past its end, as the reference (which zeroes padding embeddings) does.
    """

    config: ml_collections.ConfigDict

    @nn.compact
    def __call__(self, embeddings, layer_out, segment_ids, deterministic: bool) -> jax.Array:
        cfg = self.config
        size, half = cfg.conv_kernel_size, cfg.conv_kernel_size // 2
        kernel = self.param("kernel", nn.with_logical_partitioning(
            trunc_normal(cfg, cfg.initializer_range), (None, "embed", None)), (size, cfg.hidden_size, cfg.hidden_size))
        bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros_init(), (None,)), (cfg.hidden_size,))
        length = embeddings.shape[1]
        out = bias.astype(embeddings.dtype)
        for tap in range(size):
            shift = tap - half  # output t reads input t + shift
            neighbour = jnp.roll(embeddings, -shift, axis=1)
            same = (jnp.roll(segment_ids, -shift, axis=1) == segment_ids) & (segment_ids != 0)
            inside = (jnp.arange(length) + shift >= 0) & (jnp.arange(length) + shift < length)
            neighbour = jnp.where((same & inside[None])[..., None], neighbour, 0)
            out = out + jnp.einsum("btd,de->bte", neighbour, kernel[tap].astype(embeddings.dtype))
        out = jnp.where((segment_ids != 0)[..., None], out, 0)
        out = activation(cfg, Dropout(cfg.mlp_dropout)(out, deterministic=deterministic), cfg.conv_act)
        out = layer_norm(cfg, "norm")(layer_out + out).astype(compute_dtype(cfg))
        return jnp.where((segment_ids != 0)[..., None], out, 0)


class PredictionHead(nn.Module):
    """MLM / classification head transform: dense → GELU → LayerNorm."""

    config: ml_collections.ConfigDict

    @nn.compact
    def __call__(self, x) -> jax.Array:
        cfg = self.config
        x = dense(cfg, cfg.hidden_size, ("embed", None), use_bias=cfg.head_bias, std_kind="out", name="dense")(x)
        return layer_norm(cfg, "norm")(activation(cfg, x)).astype(compute_dtype(cfg))


class Pooler(nn.Module):
    """BERT's pooler on the pooled vector: dropout → dense → tanh (DeBERTa's ContextPooler: any
    ``pooler_activation``). RoBERTa and MPNet keep the same layer inside their classifier."""

    config: ml_collections.ConfigDict

    @nn.compact
    def __call__(self, x, deterministic: bool) -> jax.Array:
        cfg = self.config
        x = Dropout(cfg.pooler_dropout)(x, deterministic=deterministic)
        x = dense(cfg, cfg.hidden_size, ("embed", None), use_bias=True, std_kind="in", name="dense")(x)
        return activation(cfg, x, cfg.pooler_activation)


def classifier(cfg: ml_collections.ConfigDict, num_labels: int, name: str = "classifier") -> nn.Dense:
    """The task heads' final linear layer (with bias, as in every Hugging Face family), initialised
    as the family does: ModernBERT's ``final_out`` scale, BERT's ``initializer_range``."""
    std_kind = "final_out" if cfg.classifier_head == "prediction" else "in"
    return dense(cfg, num_labels, ("embed", None), use_bias=True, std_kind=std_kind, name=name)
