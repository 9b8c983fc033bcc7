"""A sentence encoder: tokenizer -> ``modernbert_jax`` Encoder -> pooling -> optional normalisation.

This is the JAX counterpart of a sentence-transformers model ``[Transformer, Pooling, Normalize]``.
``SentenceEncoder.from_pretrained(path)`` reads a sentence-transformers directory
(``modules.json`` as sentence-transformers 5 or 6 writes it, ``max_seq_length`` from
``sentence_bert_config.json`` or else the tokenizer's ``model_max_length``, ``1_Pooling/config.json``,
an optional ``Normalize`` module) whose transformer is any checkpoint that
``modernbert_jax.hf.from_pretrained`` loads (``hf.SUPPORTED``: BERT, ModernBERT, MPNet as in
SetFit's default ``paraphrase-mpnet-base-v2``, XLM-R as in multilingual SetFit, ...), or a plain
Hugging Face model directory (mean pooling, no normalisation, as sentence-transformers would
default to). The length cap is ``config_lib.max_length`` (MPNet/XLM-R keep 514 position rows of
which 512 are usable); padding uses the model's own ``pad_token_id`` (1 for those families).

Sentences are packed (``modernbert_jax.data.packing``, best-fit decreasing) into fixed-shape rows
rather than padded: no compute on padding, and one ``jit`` compilation per row length. The encoder
takes packed inputs (``segment_ids`` 1..k per row, ``positions`` restarting per sentence;
attention never crosses a segment), so where a sentence lands does not change its embedding.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Sequence

import flax.linen as nn
import jax
import numpy as np
import tokenizers

from modernbert_jax import config as config_lib
from modernbert_jax.config import check_number
from modernbert_jax import hf, safe_io
from modernbert_jax import model as model_lib
from modernbert_jax.data import packing
from modernbert_jax.data.packing import PackedBatch, pack
from modernbert_jax.pooling import POOLING_MODES, pool_packed
from setfit_jax import losses

ROW_MULTIPLE = 16
MIN_ROW_LEN = 64
_ST_MODULES = ("Transformer", "Pooling", "Normalize")
# The names sentence-transformers looks for the Transformer module's config under, in its order
# (older multilingual checkpoints ship e.g. sentence_xlm-roberta_config.json).
_ST_CONFIG_NAMES = tuple(f"sentence_{kind}_config.json" for kind in
                         ("bert", "roberta", "distilbert", "camembert", "albert", "xlm-roberta", "xlnet"))


def _pooling_mode(cfg: dict) -> str:
    modes = [m for m, key in (("cls", "pooling_mode_cls_token"), ("mean", "pooling_mode_mean_tokens"),
                               ("max", "pooling_mode_max_tokens")) if cfg.get(key)]
    if "pooling_mode" in cfg and isinstance(cfg["pooling_mode"], str):
        modes = [cfg["pooling_mode"]]
    unsupported = [k for k in ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                               "pooling_mode_lasttoken") if cfg.get(k)]
    if unsupported or len(modes) != 1 or modes[0] not in POOLING_MODES:
        raise ValueError(f"unsupported pooling config {cfg}: exactly one of cls/mean/max pooling is supported")
    return modes[0]


def _module_kind(type_name: str) -> str:
    """``Transformer``/``Pooling``/``Normalize`` for a ``modules.json`` type, else the type itself.

    sentence-transformers < 6 saves ``sentence_transformers.models.Pooling``, 6.x the class's new
    home (``sentence_transformers.sentence_transformer.modules.pooling.Pooling``): match the class.
    """
    package, _, name = type_name.rpartition(".")
    return name if package.split(".")[0] == "sentence_transformers" and name in _ST_MODULES else type_name


def _configured_max_seq_length(transformer_dir: Path) -> int | None:
    """sentence-transformers' length limit for the Transformer module in ``transformer_dir``.

    ``max_seq_length`` from its module config (what < 6 saves), else the tokenizer's
    ``model_max_length`` (6.x keeps it there only); ``None`` when neither is set. The caller caps it
    at the model's usable positions (transformers' "no limit" is 1e30).
    """
    config_file = next((transformer_dir / n for n in _ST_CONFIG_NAMES if (transformer_dir / n).exists()), None)
    configured = json.loads(config_file.read_text()).get("max_seq_length") if config_file else None
    if configured:
        return int(configured)
    tokenizer_config = transformer_dir / "tokenizer_config.json"
    if tokenizer_config.exists():
        value = json.loads(tokenizer_config.read_text()).get("model_max_length")
        if isinstance(value, (int, float)) and value > 0:
            return int(value)
    return None


def embed_packed(module: nn.Module, params: Any, batch: PackedBatch, pooling: str, normalize: bool, *,
                 deterministic: bool = True, dropout_rng: jax.Array | None = None) -> jax.Array:
    """Pure function: one embedding per slot ``[S, D]`` of a packed batch, pooled (and normalised).

    What a sentence-transformers ``[Transformer, Pooling, Normalize]`` computes; the bi-encoders of
    ``finetune_jax.retrieval`` train through it, so training and ``SentenceEncoder.encode`` agree.
    """
    rngs = None if deterministic else {"dropout": dropout_rng}
    hidden = module.apply({"params": params}, batch.input_ids, batch.segment_ids, batch.positions,
                          deterministic=deterministic, rngs=rngs)
    out = pool_packed(hidden, batch.token_slot, batch.slot_first, pooling)
    return losses.l2_normalize(out) if normalize else out


@dataclasses.dataclass
class SentenceEncoder:
    """Tokenizer + Flax encoder + pooling. ``params`` are the Encoder's parameters."""

    module: nn.Module
    params: Any
    tokenizer: tokenizers.Tokenizer
    max_seq_length: int
    pooling: str = "mean"
    normalize: bool = False

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling={self.pooling!r}: expected one of {POOLING_MODES}")
        check_number("max_seq_length", self.max_seq_length, low=1, high=config_lib.max_length(self.module.config),
                     integer=True)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_seq_length)
        # `pack` checks every batch on the host, so the jitted forward runs without the in-model checks.
        self._checked_module = self.module.clone(config=model_lib.checked_on_host(self.module.config))
        self._embed = jax.jit(self.embed, static_argnames=("deterministic",))

    @property
    def dim(self) -> int:
        return int(self.module.config.hidden_size)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, max_seq_length: int | None = None) -> "SentenceEncoder":
        """Load a sentence-transformers directory, a Hugging Face directory of any ``hf.SUPPORTED``
        family or a finished pretraining workdir (its ``hf/`` export)."""
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"model directory {path} does not exist")
        modules_file = path / "modules.json"
        if not modules_file.exists():
            path = hf.resolve_dir(path)  # a plain HF directory, or a pretraining workdir's export
        pooling, normalize, transformer_dir = "mean", False, path
        if modules_file.exists():
            modules = safe_io.read_json(modules_file, kind=list, what="a list of sentence-transformers modules")
            if not all(isinstance(m, dict) and isinstance(m.get("type"), str) for m in modules):
                raise ValueError(f"{modules_file}: every module must be an object with a \"type\", got {modules}")
            kinds = [_module_kind(m["type"]) for m in modules]
            if not kinds or kinds[0] != "Transformer":
                raise ValueError(f"{modules_file}: the first module must be a sentence-transformers Transformer, "
                                 f"got {[m['type'] for m in modules[:1]]}")
            unknown = [m["type"] for m, kind in zip(modules, kinds) if kind not in _ST_MODULES]
            if unknown:
                raise ValueError(f"{modules_file}: unsupported sentence-transformers modules {sorted(unknown)}")
            transformer_dir = path / modules[0].get("path", "")
            for m, kind in zip(modules[1:], kinds[1:]):
                if kind == "Pooling":
                    pooling = _pooling_mode(safe_io.read_json(path / m["path"] / "config.json",
                                                              what="a sentence-transformers Pooling config"))
            normalize = "Normalize" in kinds
        module, params = hf.from_pretrained(str(transformer_dir))
        if max_seq_length is None:  # the directory's limit, capped at the usable positions; an explicit one is checked
            usable = config_lib.max_length(module.config)
            max_seq_length = min(_configured_max_seq_length(transformer_dir) or usable, usable)
        tokenizer = hf.load_tokenizer(str(transformer_dir))
        return cls(module, params, tokenizer, max_seq_length, pooling, normalize)

    def with_config(self, **fields) -> "SentenceEncoder":
        """The same encoder with some model-config fields replaced (e.g. ``matmul_dtype``)."""
        return dataclasses.replace(self, module=self.module.clone(config=config_lib.replaced(self.module.config, **fields)))

    # -- tokenisation ---------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """Token ids per text, truncated to ``min(max_length, max_seq_length)`` (special tokens included)."""
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
        if max_length is not None:
            check_number("max_length", max_length, low=1, integer=True)
        limit = self.max_seq_length if max_length is None else min(max_length, self.max_seq_length)
        self.tokenizer.enable_truncation(limit)
        try:
            return [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        finally:
            self.tokenizer.enable_truncation(self.max_seq_length)

    def row_len_for(self, ids: Sequence[Sequence[int]]) -> int:
        """Packed row length: the longest sentence rounded up to ``ROW_MULTIPLE``, at least ``MIN_ROW_LEN``."""
        longest = max((len(x) for x in ids), default=1)
        return max(MIN_ROW_LEN, -(-longest // ROW_MULTIPLE) * ROW_MULTIPLE)

    def pack(self, ids: Sequence[Sequence[int]], rows: int, row_len: int, num_slots: int) -> PackedBatch:
        batch = pack(ids, rows, row_len, num_slots, int(self.module.config.pad_token_id))
        if self.module.config.check_inputs:
            model_lib.check_encoder_inputs(self.module.config, batch.input_ids, batch.segment_ids, batch.positions)
        return batch

    # -- forward ----------------------------------------------------------------------------------
    def embed(self, params, batch: PackedBatch, *, deterministic: bool = True,
              dropout_rng: jax.Array | None = None) -> jax.Array:
        """Pure function: one embedding per slot ``[S, D]`` (normalised if the model says so)."""
        return embed_packed(self._checked_module, params, batch, self.pooling, self.normalize,
                            deterministic=deterministic, dropout_rng=dropout_rng)

    def encode(self, texts: Sequence[str], params=None, tokens_per_call: int = 4096) -> np.ndarray:
        """Embeddings ``[N, D]`` float32 in input order; texts are packed, longest first."""
        check_number("tokens_per_call", tokens_per_call, low=1, integer=True)
        params = self.params if params is None else params
        ids = self.tokenize(texts)
        out = np.zeros((len(ids), self.dim), np.float32)
        if not ids:
            return out
        row_len = self.row_len_for(ids)
        max_rows = max(1, tokens_per_call // row_len)
        lengths = [len(x) for x in ids]
        # Enough slots for the most sentences a row can hold ([CLS][SEP] alone is 2 tokens), fixed by
        # the row length only: slots from these texts' lengths would recompile for every new set.
        slots_per_row = max(1, row_len // 2)
        todo = list(range(len(ids)))
        while todo:
            placed = packing.best_fit_decreasing([lengths[i] for i in todo], row_len, max_rows=max_rows)
            chunk = sorted(todo[j] for row in placed for j in row)  # packs into the same rows again
            # Full blocks share one shape; a smaller (last) one gets a power-of-two row count:
            # a few shapes to compile instead of computing on a mostly empty block.
            rows = min(max_rows, 1 << (len(placed) - 1).bit_length())
            batch = self.pack([ids[i] for i in chunk], rows, row_len, rows * slots_per_row)
            out[chunk] = np.asarray(self._embed(params, batch))[: len(chunk)]
            done = set(chunk)
            todo = [i for i in todo if i not in done]
        return out
