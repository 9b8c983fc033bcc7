"""GLiNER head configuration, field-compatible with the reference ``gliner_config.json``.

The one schema of GLiNER's options: the head's architecture and, as the reference keeps
``max_types`` and ``max_neg_type_ratio`` in its model config, every knob of how training
prompts are sampled. ``configs/gliner.py`` derives its ``head`` block from these defaults.

Only the uni-encoder span architecture is implemented (``span_mode="markerV0"``, first
sub-token pooling, no post-fusion); reading a reference config that asks for anything
else raises an error naming the field, rather than silently computing something else.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from modernbert_jax import config as config_lib


# The fields of GLiNERConfig that shape training prompts rather than the model: an experiment's values
# apply when it fine-tunes a saved model, whose own config may not hold them (the reference's does not).
SAMPLING_FIELDS = ("max_types", "max_neg_type_ratio", "drop_types_prob", "negative_types")


# Numeric fields: (low, high, high exclusive, integer), bounds inclusive unless said; None = unbounded.
_NUMBERS = {
    "max_width": (1, None, False, True),
    "hidden_size": (1, None, False, True),
    "dropout": (0, 1, True, False),
    "num_rnn_layers": (0, None, False, True),
    "max_len": (1, None, False, True),
    "max_types": (1, None, False, True),
    "max_neg_type_ratio": (0, None, False, True),
    "drop_types_prob": (0, 1, False, False),
    "class_token_index": (-1, None, False, True),  # -1: not set yet (before from_backbone)
    "vocab_size": (-1, None, False, True),
}


@dataclasses.dataclass
class GLiNERConfig:
    """Hyper-parameters of the GLiNER head (names as in the reference library)."""

    max_width: int = 12  # spans cover 1..max_width words
    hidden_size: int = 512  # head width; the encoder output is projected to it when different
    dropout: float = 0.4
    span_mode: str = "markerV0"
    subtoken_pooling: str = "first"
    num_rnn_layers: int = 1  # BiLSTM layers over words; 0 disables the LSTM
    embed_ent_token: bool = True  # type vector = hidden state at <<ENT>> (else the token after)
    max_len: int = 384  # words per window; longer texts are split into overlapping windows
    # Type sampling in training prompts (`gliner_jax.training.sample_types`).
    max_types: int = 25  # prompted types per example, positives and negatives together
    max_neg_type_ratio: int = 1  # negative types per positive, the ratio drawn per example from 0..this
    drop_types_prob: float = 0.0  # chance that a random subset of an example's prompt is dropped
    # Where negative types come from: "batch" (the reference's in-batch negatives) or "dataset"
    # (every type of the training split, as the reference collator's ner_negatives).
    negative_types: str = "batch"
    ent_token: str = "<<ENT>>"
    sep_token: str = "<<SEP>>"
    class_token_index: int = -1  # id of <<ENT>> once special tokens are added
    vocab_size: int = -1
    words_splitter_type: str = "whitespace"
    model_name: str = ""  # backbone directory the head was built on (informational)

    def validate(self) -> None:
        """Raise naming the field when a value is of the wrong type, out of range or not implemented."""
        if self.span_mode != "markerV0":
            raise ValueError(f"span_mode={self.span_mode!r} is not supported; only 'markerV0' is implemented")
        if self.subtoken_pooling != "first":
            raise ValueError(f"subtoken_pooling={self.subtoken_pooling!r} is not supported; only 'first'")
        if self.words_splitter_type != "whitespace":
            raise ValueError(f"words_splitter_type={self.words_splitter_type!r} is not supported; only 'whitespace'")
        for name, (low, high, high_open, integer) in _NUMBERS.items():
            config_lib.check_number(name, getattr(self, name), low=low, high=high, high_open=high_open,
                                    integer=integer)
        if self.num_rnn_layers and self.hidden_size % 2:
            raise ValueError(f"hidden_size={self.hidden_size} must be even for the BiLSTM")
        if self.negative_types not in ("batch", "dataset"):
            raise ValueError(f"negative_types={self.negative_types!r} must be 'batch' or 'dataset'")
        for name in ("ent_token", "sep_token"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"{name}={getattr(self, name)!r} must be a non-empty str")
        if self.ent_token == self.sep_token:
            raise ValueError(f"ent_token and sep_token are both {self.ent_token!r}; the prompt needs two tokens")
        if not isinstance(self.embed_ent_token, bool):
            raise TypeError(f"embed_ent_token={self.embed_ent_token!r} must be a bool")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, strict: bool = True) -> "GLiNERConfig":
        """Build from a (reference or our own) config dict; unknown keys are ignored.

        With ``strict``, reference options that change the computation and that we do
        not implement raise a ValueError naming the option.
        """
        if strict:
            unsupported = {
                "post_fusion_schema": "",
                "fuse_layers": False,
                "span_encoder_config": None,
                "labels_encoder": None,
                "labels_decoder": None,
                "relations_layer": None,
                "precomputed_prompts_mode": None,
            }
            for key, default in unsupported.items():
                value = values.get(key, default)
                if value not in (default, False, None, ""):
                    raise ValueError(f"reference GLiNER option {key}={value!r} is not supported by gliner_jax")
            model_type = values.get("model_type")
            if model_type not in (None, "gliner", "gliner_uni_encoder_span"):
                raise ValueError(f"reference GLiNER model_type={model_type!r} is not supported; "
                                 "only the uni-encoder span model is")
        names = {f.name for f in dataclasses.fields(cls)}
        cfg = cls(**{k: v for k, v in values.items() if k in names})
        cfg.validate()
        return cfg
