"""From the config's `data` block to input pipelines and global arrays on the mesh.

Sources (``data.source``):

* ``"tfds"`` — any TFDS dataset prepared as array_record (``data.tfds_name``, ``data.train_split``,
  ``data.eval_split``, ``data.text_key``); the offline corpus builder is one such dataset;
* ``"files"`` — the user's text/JSONL files (``data.train_files``, ``data.eval_files``: lists or
  comma-separated globs).

The tokenizer is ``data.tokenizer`` (a sentencepiece ``.model``); when empty, one is trained on
the training documents (``data.vocab_size``, ``data.tokenizer_documents`` of them) and saved to
``workdir/tokenizer.model``, which a resumed run then reloads, so resume never retrains.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from modernbert_jax.data.pipeline import PretrainPipeline
from modernbert_jax.data.sentencepiece_tokenizer import SentencePieceTokenizer, train_sentencepiece
from modernbert_jax.data.sources import DocumentSource, TextFileSource, TfdsSource


def _paths(spec: Any) -> list[str]:
    patterns = spec.split(",") if isinstance(spec, str) else list(spec)
    paths = sorted(p for pattern in patterns if pattern for p in glob.glob(os.path.expanduser(pattern)))
    if not paths:
        raise FileNotFoundError(f"data files {spec!r} match nothing")
    return paths


def document_source(data: ml_collections.ConfigDict, split: str) -> DocumentSource:
    """The train or eval documents named by the config."""
    if data.source == "tfds":
        name_split = data.train_split if split == "train" else data.eval_split
        return TfdsSource(data.tfds_name, name_split, text_key=data.text_key, data_dir=data.tfds_data_dir or None)
    if data.source == "files":
        return TextFileSource(_paths(data.train_files if split == "train" else data.eval_files), text_key=data.text_key)
    raise ValueError(f"data.source={data.source!r} is not one of ('tfds', 'files')")


def load_or_train_tokenizer(data: ml_collections.ConfigDict, train_docs: DocumentSource, workdir: str) -> SentencePieceTokenizer:
    if data.tokenizer:
        return SentencePieceTokenizer.load(data.tokenizer)
    path = os.path.join(workdir, "tokenizer.model")
    if os.path.exists(path):
        return SentencePieceTokenizer.load(path)
    count = min(len(train_docs), data.tokenizer_documents or len(train_docs))
    tokenizer = train_sentencepiece((train_docs[i] for i in range(count)), data.vocab_size)
    if jax.process_index() == 0:
        tokenizer.save(path)
    return tokenizer


def make_pipeline(
    data: ml_collections.ConfigDict, docs: DocumentSource, tokenizer: SentencePieceTokenizer, *,
    batch_size: int, seq_len: int, seed: int, train: bool,
) -> PretrainPipeline:
    """Training: shuffled, endless, 30% masking. Evaluation: one fixed pass at 15% masking."""
    return PretrainPipeline(
        docs, tokenizer, batch_size=batch_size, seq_len=seq_len, seed=seed,
        mask_rate=data.mask_rate if train else data.eval_mask_rate,
        shuffle=train, num_epochs=None if train else 1,
        process_index=jax.process_index(), process_count=jax.process_count(),
    )


def batch_sharding(mesh: Mesh, batch_axes: Sequence[str | None], leading: int) -> NamedSharding:
    """Rows split over the batch mesh axes; `leading` unsplit axes before them (micro-batches)."""
    return NamedSharding(mesh, PartitionSpec(*([None] * leading), tuple(a for a in batch_axes if a)))


def to_global(local: dict[str, np.ndarray], sharding: NamedSharding, global_rows: int, row_axis: int) -> dict[str, jax.Array]:
    """This process's rows -> global jax.Arrays (each process holds a contiguous block of rows)."""
    out = {}
    for name, arr in local.items():
        shape = list(arr.shape)
        shape[row_axis] = global_rows
        out[name] = jax.make_array_from_process_local_data(sharding, arr, tuple(shape))
    return out
