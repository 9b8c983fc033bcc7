"""The GLiNER span model on a ``modernbert_jax`` encoder.

encoder → (projection to the head width) → word vectors (first sub-token) and type vectors
(``<<ENT>>`` tokens) → BiLSTM over words → markerV0 spans · type FFN → logits ``[B, W, K, C]``.
Probabilities are ``sigmoid(logits)``; decoding happens outside, on the host.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from gliner_jax.config import GLiNERConfig
from gliner_jax.lstm import BiLSTM
from gliner_jax.span_rep import Linear, ProjectionFFN, SpanMarkerV0Scorer
from modernbert_jax.model import Encoder, check_encoder_inputs, checked_on_host, packed_inputs_from_mask


def check_batch(encoder_config: ml_collections.ConfigDict, batch: dict) -> dict:
    """``batch`` (from ``processor.collate``) after the encoder's index checks, on the host.

    `GLiNERModel` runs its encoder without the in-model checks (`checked_on_host`),
    so every caller passes its batches through here (unless ``check_inputs`` is off).
    """
    if encoder_config.check_inputs:
        segment_ids, positions = packed_inputs_from_mask(batch["attention_mask"])
        check_encoder_inputs(encoder_config, batch["input_ids"], segment_ids, positions,
                             segments_from="attention_mask (as segment ids)")
    return batch


def gather_rows(hidden: jax.Array, positions: jax.Array, mask: jax.Array) -> jax.Array:
    """``hidden[b, positions[b, i]]`` where ``mask`` else 0 → ``[B, N, D]``."""
    rows = jnp.take_along_axis(hidden, positions[..., None], axis=1)
    return jnp.where(mask[..., None], rows, 0.0)


class GLiNERModel(nn.Module):
    """Uni-encoder span GLiNER; ``__call__`` takes a batch from ``processor.collate``."""

    encoder_config: ml_collections.ConfigDict
    config: GLiNERConfig

    def setup(self):
        cfg = self.config
        # The encoder's matmul_dtype applies to the head's matmuls too; the BiLSTM stays float32.
        bf16 = self.encoder_config.matmul_dtype == "bfloat16"
        self.encoder = Encoder(checked_on_host(self.encoder_config))  # see check_batch
        if cfg.hidden_size != self.encoder_config.hidden_size:
            self.projection = Linear(cfg.hidden_size, self.encoder_config.hidden_size, bf16_matmuls=bf16)
        if cfg.num_rnn_layers > 0:
            self.rnn = BiLSTM(cfg.hidden_size // 2, cfg.num_rnn_layers)
        self.span_rep = SpanMarkerV0Scorer(cfg.hidden_size, cfg.max_width, cfg.dropout, bf16)
        self.prompt_rep = ProjectionFFN(cfg.hidden_size, cfg.dropout, bf16)

    def __call__(self, batch: dict, deterministic: bool = True) -> tuple[jax.Array, jax.Array]:
        """Logits ``[B, W, K, C]`` and span validity ``[B, W, K]``."""
        hidden = self.encoder(batch["input_ids"], attention_mask=batch["attention_mask"], deterministic=deterministic)
        hidden = hidden.astype(jnp.float32)
        words = gather_rows(hidden, batch["word_pos"], batch["word_valid"])
        types = gather_rows(hidden, batch["type_pos"], batch["type_mask"])
        if self.config.hidden_size != self.encoder_config.hidden_size:
            # The reference projects every token; projecting the gathered rows is the same map.
            words = jnp.where(batch["word_valid"][..., None], self.projection(words), 0.0)
            types = jnp.where(batch["type_mask"][..., None], self.projection(types), 0.0)
        lengths = batch["text_lengths"]
        if self.config.num_rnn_layers > 0:
            words = self.rnn(words, lengths)
        types = self.prompt_rep(types, deterministic)
        return self.span_rep(words, types, lengths, deterministic)
