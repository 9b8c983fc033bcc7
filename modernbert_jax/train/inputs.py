"""From the config's `data` block to input pipelines and global arrays on the mesh.

Documents and tokenizer come from `modernbert_jax.data.build.prepare_pretraining_data`:
``data.dataset`` names a TFDS dataset (default: the embedded offline corpus
``modernbert_corpus/demo`` or ``/full``, built on first use) unless ``data.files`` lists the user's
text/JSONL files (comma-separated globs, split train/validation by content hash). The tokenizer
is ``data.tokenizer`` if that file exists, else one is trained there (or next to the corpus when
empty) with ``data.vocab_size`` pieces — cached, so a resumed run never retrains it.

Continued pretraining of a released checkpoint (``init_from`` a Hugging Face directory,
``hf_init_dir``) tokenizes with that checkpoint's own tokenizer: an empty ``data.tokenizer`` then
means the checkpoint's, and ``data.tokenizer`` still wins when set (a Hugging Face directory or
``tokenizer.json``, or a sentencepiece ``.model``). ``data.vocab_size`` only sizes a sentencepiece
model to train; a Hugging Face tokenizer brings its own vocabulary.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from modernbert_jax import sharding
from modernbert_jax.data.build import PretrainData, prepare_pretraining_data
from modernbert_jax.data.pipeline import PretrainPipeline, Tokenizer
from modernbert_jax.data.sources import DocumentSource


def data_files(spec: str) -> list[str]:
    """The user's corpus files named by ``data.files`` (comma-separated globs), sorted."""
    paths = sorted(p for pattern in spec.split(",") if pattern for p in glob.glob(os.path.expanduser(pattern)))
    if not paths:
        raise FileNotFoundError(f"data.files={spec!r} matches no file")
    return paths


def hf_init_dir(init_from: str) -> Path | None:
    """The Hugging Face checkpoint ``init_from`` names (a directory with a ``config.json`` and no
    ``checkpoints/``), or None: no ``init_from``, or a previous phase's workdir (its Orbax checkpoints)."""
    if not init_from or os.path.isdir(os.path.join(init_from, "checkpoints")):
        return None
    path = Path(init_from)
    return path if (path / "config.json").is_file() else None


def pretraining_data(data: ml_collections.ConfigDict, init_from: str = "") -> PretrainData:
    """Train/validation documents and the tokenizer named by the config (built and cached on first use):
    ``data.tokenizer``, else a Hugging Face ``init_from``'s own, else a sentencepiece model next to the corpus."""
    hf_dir = hf_init_dir(init_from)
    return prepare_pretraining_data(
        data.dataset, vocab_size=data.vocab_size, data_dir=data.data_dir or None,
        files=data_files(data.files) if data.files else None, text_key=data.text_key,
        validation_fraction=data.validation_fraction,
        tokenizer_path=data.tokenizer or (str(hf_dir) if hf_dir else None),
    )


def pretraining_inputs(config: ml_collections.ConfigDict) -> list[str]:
    """The files a pretraining run reads (its corpus: ``data.files`` or the prepared TFDS dataset, and its
    tokenizer), built on the way; a sweep hashes them into each result's provenance."""
    from modernbert_jax.data.tfds_builder import prepare_tfds  # TFDS only where a TFDS dataset is named

    data = pretraining_data(config.data, config.init_from)
    if config.data.files:
        corpus = data_files(config.data.files)
    else:
        corpus = [str(prepare_tfds(config.data.dataset, config.data.data_dir or None).data_dir)]
    return [*corpus, str(data.tokenizer_path)]


def make_pipeline(
    data: ml_collections.ConfigDict, docs: DocumentSource, tokenizer: Tokenizer, *,
    batch_size: int, seq_len: int, seed: int, train: bool,
) -> PretrainPipeline:
    """Training: shuffled, endless, 30% masking, packed unless ``data.packing`` is off. Evaluation: one
    fixed pass at 15% masking, always packed (so every ablation is scored on the same rows)."""
    return PretrainPipeline(
        docs, tokenizer, batch_size=batch_size, seq_len=seq_len, seed=seed,
        mask_rate=data.mask_rate if train else data.eval_mask_rate,
        shuffle=train, num_epochs=None if train else 1, packing=data.packing or not train,
        process_index=jax.process_index(), process_count=jax.process_count(),
    )


def batch_sharding(mesh: Mesh, rules, leading: int) -> NamedSharding:
    """Rows split over the mesh axes of `act_batch`; `leading` unsplit axes before them (micro-batches)."""
    rows = sharding.batch_sharding(mesh, rules, ndim=1).spec[0]
    return NamedSharding(mesh, PartitionSpec(*([None] * leading), rows))


def to_global(local: dict[str, np.ndarray], sharding: NamedSharding, global_rows: int, row_axis: int) -> dict[str, jax.Array]:
    """This process's rows -> global jax.Arrays (each process holds a contiguous block of rows)."""
    out = {}
    for name, arr in local.items():
        shape = list(arr.shape)
        shape[row_axis] = global_rows
        out[name] = jax.make_array_from_process_local_data(sharding, arr, tuple(shape))
    return out
