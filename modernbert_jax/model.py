"""The encoder and its heads: ``Encoder``, ``MaskedLM``, ``SequenceClassifier``, ``TokenClassifier``.

Inputs are packed: ``input_ids [B, T]``, ``segment_ids [B, T]`` (0 = padding, 1..n = the
sequence a token belongs to) and ``positions [B, T]`` (restarting at 0 in each segment).
This is ModernBERT's unpadding with static shapes: attention never crosses a segment
boundary. A padded batch is the case of one segment per row: pass ``attention_mask`` instead
and it is converted (positions are then ``0..T-1`` per row, as Hugging Face does).

Every forward checks its index inputs (`modernbert_jax.input_checks`), also under ``jax.jit``,
since JAX lookups return NaN rather than fail: integer dtypes always; with
``model.check_inputs`` (default on) ids against the vocabulary, the segment contract of
`modernbert_jax.attention`, positions against an absolute table (``config.max_length``), token
types against ``type_vocab_size`` and ``masked_positions`` against ``T``. The segments are
checked here once per forward, not in every layer.

The task heads are those of Hugging Face's ``For{Sequence,Token}Classification`` classes, so
``modernbert_jax.hf`` loads and saves them: ``SequenceClassifier`` pools each sequence (its
[CLS] token or the mean of its tokens, per row of a padded batch or per slot of a packed one,
``modernbert_jax.pooling``) and classifies it; ``TokenClassifier`` classifies every token.
``init_head_params`` initialises a head alone, for fine-tuning a pretrained encoder.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from modernbert_jax import config as config_lib
from modernbert_jax import input_checks, layers, pooling
from modernbert_jax.dropout import Dropout


def packed_inputs_from_mask(attention_mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``attention_mask [B, T]`` (1 = token) → ``(segment_ids, positions)`` with one segment per row."""
    segment_ids = (attention_mask != 0).astype(jnp.int32)
    positions = jnp.broadcast_to(jnp.arange(attention_mask.shape[1], dtype=jnp.int32), attention_mask.shape)
    return segment_ids, positions


def check_encoder_inputs(cfg: ml_collections.ConfigDict, input_ids: Any, segment_ids: Any, positions: Any,
                         token_type_ids: Any = None, *, segments_from: str = "segment_ids") -> None:
    """The value checks of one encoder forward (model block ``cfg``), eager or traced.

    ``input_ids`` against the vocabulary, ``segment_ids`` against the packing contract, and, where
    the model has the table, ``positions`` against its absolute positions and ``token_type_ids``
    against its token types. ``segments_from`` names where the segment ids came from.
    """
    input_checks.check_index("input_ids", input_ids, cfg.vocab_size, what="the vocabulary",
                             note=f"model.vocab_size={cfg.vocab_size}")
    input_checks.check_segments(segment_ids, name=segments_from)
    if cfg.position_embedding == "absolute":
        input_checks.check_index(
            "positions", positions, config_lib.max_length(cfg), what="the absolute position table",
            note=f"model.max_position_embeddings={cfg.max_position_embeddings} less "
                 f"model.position_offset={cfg.position_offset}; truncate or window longer sequences")
    if cfg.type_vocab_size and token_type_ids is not None:
        input_checks.check_index("token_type_ids", token_type_ids, cfg.type_vocab_size, what="the token types",
                                 note=f"model.type_vocab_size={cfg.type_vocab_size}")


def check_masked_positions(masked_positions: Any, length: int) -> None:
    """``masked_positions`` (MLM's sparse prediction) must index into the ``length`` tokens of a row."""
    input_checks.check_index("masked_positions", masked_positions, length, what="the sequence",
                             note="indices into the length T of input_ids")


def checked_on_host(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``cfg`` with the in-model checks off, for an entry point that checks its batches on the host."""
    return config_lib.replaced(cfg, check_inputs=False)


class Encoder(nn.Module):
    """Embeddings → layers (global every ``global_attn_every_n_layers``, local otherwise) → final norm."""

    config: ml_collections.ConfigDict

    def setup(self):
        cfg = self.config
        config_lib.validate(cfg)
        self.embeddings = layers.Embeddings(cfg)
        block = nn.remat(layers.EncoderLayer, static_argnums=(5,)) if cfg.remat else layers.EncoderLayer
        self.layers = [
            block(cfg, i, config_lib.layer_half_window(cfg, i), name=f"layers_{i}")
            for i in range(cfg.num_layers)
        ]
        if cfg.relative_attention != "none":
            self.relative = layers.RelativePositions(cfg)
        if cfg.conv_kernel_size:
            self.conv = layers.ConvLayer(cfg)
        if cfg.final_norm:
            self.final_norm = layers.layer_norm(cfg, "final_norm")

    def __call__(
        self,
        input_ids: jax.Array,
        segment_ids: Optional[jax.Array] = None,
        positions: Optional[jax.Array] = None,
        *,
        attention_mask: Optional[jax.Array] = None,
        token_type_ids: Optional[jax.Array] = None,
        deterministic: bool = True,
    ) -> jax.Array:
        """Last hidden states ``[B, T, hidden_size]``."""
        cfg = self.config
        input_ids = jnp.asarray(input_ids)
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be [batch, length]; got shape {tuple(input_ids.shape)}")
        input_checks.check_integer("input_ids", input_ids)
        segments_from = "segment_ids"
        if segment_ids is None:
            if attention_mask is None:
                attention_mask = jnp.ones_like(input_ids)
            if jnp.shape(attention_mask) != input_ids.shape:
                raise ValueError(
                    f"attention_mask shape {tuple(jnp.shape(attention_mask))} != input_ids shape {tuple(input_ids.shape)}"
                )
            segment_ids, positions = packed_inputs_from_mask(jnp.asarray(attention_mask))
            segments_from = "attention_mask (as segment ids)"
            # Positions then run 0..T-1 in every row, so T itself must fit the absolute table.
            if cfg.position_embedding == "absolute" and input_ids.shape[1] > config_lib.max_length(cfg):
                raise ValueError(
                    f"input length {input_ids.shape[1]} exceeds the {config_lib.max_length(cfg)} positions of this "
                    f"model (model.max_position_embeddings={cfg.max_position_embeddings} less "
                    f"model.position_offset={cfg.position_offset}); truncate or window the input"
                )
        elif positions is None:
            raise ValueError("packed inputs need both segment_ids and positions")
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        for name, arr in (("segment_ids", segment_ids), ("positions", positions), ("token_type_ids", token_type_ids)):
            if jnp.shape(arr) != input_ids.shape:
                raise ValueError(f"{name} shape {tuple(jnp.shape(arr))} != input_ids shape {tuple(input_ids.shape)}")
        for name, arr in ((segments_from, segment_ids), ("positions", positions), ("token_type_ids", token_type_ids)):
            input_checks.check_integer(name, arr)
        if cfg.check_inputs:
            check_encoder_inputs(cfg, input_ids, segment_ids, positions, token_type_ids,
                                              segments_from=segments_from)
        x = self.embeddings(input_ids, positions, token_type_ids, deterministic)
        x = layers.constrain(x, ("act_batch", "act_length", "act_embed"))
        relative = self.relative(positions) if cfg.relative_attention != "none" else None
        embedded = x
        for i, layer in enumerate(self.layers):
            x = layer(x, segment_ids, positions, relative, deterministic)
            if i == 0 and cfg.conv_kernel_size:
                x = self.conv(embedded, x, segment_ids, deterministic)
        if cfg.final_norm:
            x = self.final_norm(x).astype(layers.compute_dtype(cfg))
        return x

    def attend(self, x: jax.Array) -> jax.Array:
        """Logits against the token embeddings (the tied MLM decoder)."""
        return self.embeddings.attend(x)


class MaskedLM(nn.Module):
    """Encoder + prediction head + tied decoder with bias.

    With ``masked_positions [B, M]`` only those positions go through the head and decoder
    (ModernBERT's sparse prediction, with static shapes): logits are ``[B, M, V]``.
    """

    config: ml_collections.ConfigDict

    def setup(self):
        cfg = self.config
        self.encoder = Encoder(cfg)
        self.head = layers.PredictionHead(cfg)
        if cfg.decoder_bias:
            self.decoder_bias = self.param(
                "decoder_bias", nn.with_logical_partitioning(nn.initializers.zeros_init(), ("vocab",)), (cfg.vocab_size,)
            )

    def __call__(
        self,
        input_ids: jax.Array,
        segment_ids: Optional[jax.Array] = None,
        positions: Optional[jax.Array] = None,
        *,
        attention_mask: Optional[jax.Array] = None,
        token_type_ids: Optional[jax.Array] = None,
        masked_positions: Optional[jax.Array] = None,
        deterministic: bool = True,
    ) -> jax.Array:
        x = self.encoder(
            input_ids, segment_ids, positions, attention_mask=attention_mask,
            token_type_ids=token_type_ids, deterministic=deterministic,
        )
        if masked_positions is not None:
            input_checks.check_integer("masked_positions", masked_positions)
            if jnp.ndim(masked_positions) != 2 or jnp.shape(masked_positions)[0] != x.shape[0]:
                raise ValueError(f"masked_positions must be [batch={x.shape[0]}, M]; got shape "
                                 f"{tuple(jnp.shape(masked_positions))}")
            if self.config.check_inputs:
                check_masked_positions(masked_positions, x.shape[1])
            x = jnp.take_along_axis(x, masked_positions[..., None].astype(jnp.int32), axis=1)
        logits = self.encoder.attend(self.head(x)).astype(jnp.float32)
        if self.config.decoder_bias:
            logits = logits + self.decoder_bias
        return layers.constrain(logits, ("act_batch", "act_length", "act_vocab"))


def _check_num_labels(num_labels: int) -> None:
    config_lib.check_number("num_labels", num_labels, low=1, integer=True)


def pooled_states(
    cfg: ml_collections.ConfigDict,
    x: jax.Array,
    *,
    segment_ids: Optional[jax.Array],
    attention_mask: Optional[jax.Array],
    token_slot: Optional[jax.Array],
    slot_first: Optional[jax.Array],
) -> jax.Array:
    """One vector per sequence under ``cfg.classifier_pooling``: ``[S, D]`` per slot of a packed
    batch (``token_slot``/``slot_first``), else ``[B, D]`` for one sequence per row."""
    if (token_slot is None) != (slot_first is None):
        raise ValueError("packed pooling needs both token_slot and slot_first (a PackedBatch's), or neither")
    if token_slot is not None:
        input_checks.check_integer("token_slot", token_slot)
        input_checks.check_integer("slot_first", slot_first)
        if jnp.shape(token_slot) != x.shape[:2] or jnp.ndim(slot_first) != 1:
            raise ValueError(f"token_slot must be [batch, length] = {x.shape[:2]} and slot_first [slots]; got "
                             f"{tuple(jnp.shape(token_slot))} and {tuple(jnp.shape(slot_first))}")
        if cfg.check_inputs:
            slots = jnp.shape(slot_first)[0]
            input_checks.check_index("token_slot", token_slot, slots + 1, what="the slots",
                                     note=f"0..{slots - 1}, or {slots} for padding")
            input_checks.check_index("slot_first", slot_first, x.shape[0] * x.shape[1], what="the flat tokens",
                                     note="flat indices into [batch * length]")
        return pooling.pool_packed(x, token_slot, slot_first, cfg.classifier_pooling)
    if cfg.classifier_pooling == "cls":
        return x[:, 0]
    # Encoder's own convention: segment_ids, else attention_mask, else every token.
    valid = segment_ids if segment_ids is not None else attention_mask
    weights = (jnp.ones(x.shape[:2], x.dtype) if valid is None else (jnp.asarray(valid) != 0).astype(x.dtype))[..., None]
    return (x * weights).sum(1) / jnp.maximum(weights.sum(1), 1.0)


class _TaskModel(nn.Module):
    """Encoder → (pooling) → the family's task head → dropout → linear classifier; the two
    classifiers below differ only in whether they pool one vector per sequence first."""

    config: ml_collections.ConfigDict
    num_labels: int
    pools: ClassVar[bool]

    def setup(self):
        cfg = self.config
        _check_num_labels(self.num_labels)
        self.encoder = Encoder(cfg)
        if cfg.classifier_head == "prediction":
            self.head = layers.PredictionHead(cfg)
        elif self.pools:  # BERT's pooler sits on the pooled [CLS] only; its token heads have none
            self.pooler = layers.Pooler(cfg)
        self.drop = Dropout(cfg.classifier_dropout)
        self.classifier = layers.classifier(cfg, self.num_labels)

    def __call__(
        self,
        input_ids: jax.Array,
        segment_ids: Optional[jax.Array] = None,
        positions: Optional[jax.Array] = None,
        *,
        token_slot: Optional[jax.Array] = None,
        slot_first: Optional[jax.Array] = None,
        attention_mask: Optional[jax.Array] = None,
        token_type_ids: Optional[jax.Array] = None,
        deterministic: bool = True,
    ) -> jax.Array:
        x = self.encoder(
            input_ids, segment_ids, positions, attention_mask=attention_mask,
            token_type_ids=token_type_ids, deterministic=deterministic,
        )
        if self.pools:
            x = pooled_states(self.config, x, segment_ids=segment_ids, attention_mask=attention_mask,
                              token_slot=token_slot, slot_first=slot_first)
            return self.classify(x, deterministic)
        return layers.constrain(self.classify(x, deterministic), ("act_batch", "act_length", None))

    def classify(self, x: jax.Array, deterministic: bool = True) -> jax.Array:
        """Logits ``[..., C]`` from (pooled) hidden states ``[..., D]``: the task head without the encoder."""
        if self.config.classifier_head == "prediction":
            x = self.head(x)
        elif self.pools:
            x = self.pooler(x, deterministic)
        return self.classifier(self.drop(x, deterministic=deterministic)).astype(jnp.float32)


class SequenceClassifier(_TaskModel):
    """One label (or value) per sequence: cls or mean pooling, then the task head.

    The head is ``config.classifier_head``: ModernBERT's prediction head (dense → GELU → norm) or
    BERT's pooler (dropout → dense → tanh, DeBERTa's with its own activation). Logits are float32,
    ``[B, C]`` for one sequence per row (a padded batch: pooling over the row's valid tokens),
    ``[S, C]`` for the slots of a packed batch (``token_slot``/``slot_first`` of a
    ``modernbert_jax.data.packing.PackedBatch``), the same logits for the same sequence.
    """

    pools: ClassVar[bool] = True


class TokenClassifier(_TaskModel):
    """One label per token: (ModernBERT's prediction head) → dropout → linear classifier.

    Logits ``[B, T, C]`` (float32), packed or padded alike; ``token_slot``/``slot_first`` are
    accepted so both classifiers take a ``PackedBatch``'s arrays, and are not needed here.
    """

    pools: ClassVar[bool] = False


def init_head_params(module: SequenceClassifier | TokenClassifier, rng: jax.Array) -> dict:
    """Freshly initialised, unboxed float32 parameters of a classifier's task head only (no encoder):
    the fine-tuning start on a pretrained encoder."""
    pooled = jnp.zeros((1, module.config.hidden_size), jnp.float32)
    variables = jax.jit(lambda r: module.init(r, pooled, method=type(module).classify))(rng)
    return nn.meta.unbox(variables["params"])


def init_params(module: nn.Module, rng: jax.Array, batch: int = 1, length: int = 16) -> dict:
    """Initialised, unboxed float32 parameters for ``module`` (dummy input of ``[batch, length]``)."""
    ids = jnp.zeros((batch, length), jnp.int32)
    variables = jax.jit(lambda r: module.init(r, ids))(rng)
    return nn.meta.unbox(variables["params"])
