"""TFDS builder for the embedded default corpus, written as array_record (no TensorFlow needed).

    from modernbert_jax.data.tfds_builder import prepare_tfds
    builder = prepare_tfds("modernbert_corpus/demo")       # builds once under default_data_dir()
    train = builder.as_data_source(split="train")          # random access, no TensorFlow

Each example: ``{"text": str, "source": "prose" | "code", "id": str}``. Configs differ only in
size: ``full`` (everything), ``demo`` (3,000 candidate documents), and any
``CorpusConfig(name=..., max_documents=N)`` passed as ``config=`` (``prepare_tfds`` maps the
name ``modernbert_corpus/n<N>`` to one). Train/validation are split by
document id (``modernbert_jax.data.splits``), after exact deduplication; documents that the
downstream corpora hold out are never candidates (see ``modernbert_jax.data.corpus``).

Every source is a Debian package at a pinned version; ``builder.info.metadata["sources"]``
records each one's package, version and .deb sha256, and the hashes of the package lists the
descriptions came from, so two builds are the same corpus exactly when these records match.

TFDS 4.9.10 builds and reads array_record without TensorFlow: ``GeneratorBasedBuilder`` writes
through ``array_record`` directly and ``tfds.data_source`` gives random access.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import re
from pathlib import Path

import tensorflow_datasets as tfds

from modernbert_jax.data import corpus, debian, splits

NAME = "modernbert_corpus"


@dataclasses.dataclass(eq=False)
class CorpusConfig(tfds.core.BuilderConfig):
    """``max_documents``: cap on candidate documents (None = all); ``validation_fraction``: share of
    documents (by id) held out."""

    max_documents: int | None = None
    validation_fraction: float = 0.01


class ModernbertCorpus(tfds.core.GeneratorBasedBuilder):
    """Python docs + Debian package descriptions (prose), Python stdlib and packages (code)."""

    name = NAME
    VERSION = tfds.core.Version("2.2.0")
    RELEASE_NOTES = {
        "1.0.0": "Python 3.11 docs, Debian descriptions, stdlib and installed .py files.",
        "2.0.0": "Code from pinned Debian packages instead of the venv; split by document id; GLiNER's and "
        "SetFit's held-out documents excluded; sources (versions, .deb sha256) in the metadata.",
        "2.1.0": "Code files that quote a held-out Python-docs page excluded (the standard library carries "
        "rendered docs text, e.g. pydoc_data/topics.py); documents read once for both splits.",
        "2.2.0": "Debian descriptions of the package groups that the fine-tuning classification corpus "
        "(debian_packages) holds out for validation and test excluded (~20% of the descriptions).",
    }
    BUILDER_CONFIGS = [
        CorpusConfig(name="full", description="Every document.", max_documents=None, validation_fraction=0.01),
        CorpusConfig(name="demo", description="3,000 candidates, for make demo.", max_documents=3000, validation_fraction=0.03),
    ]
    DEFAULT_CONFIG_NAME = "demo"

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Real prose (Python 3.11 documentation, Debian package descriptions) and real "
            "code (.py files of the standard library and pure-Python packages from pinned Debian "
            "packages), deduplicated.",
            features=tfds.features.FeaturesDict(
                {"text": tfds.features.Text(), "source": tfds.features.Text(), "id": tfds.features.Text()}
            ),
            homepage="https://packages.debian.org/bookworm/python3.11-doc",
            metadata=tfds.core.MetadataDict(),  # "sources", filled while building
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # everything comes from apt
        self.info.metadata["sources"] = corpus.source_records()
        # Read (render, deduplicate) every document once, not once per split: deduplication spans
        # both splits, and rendering the docs pages is most of the build's time.
        documents = list(corpus.read_documents(corpus.default_candidates(self.builder_config.max_documents)))
        split_of = splits.pretraining(self.builder_config.validation_fraction)
        return {split: self._generate_examples([d for d in documents if split_of(d.id) == split])
                for split in ("train", "validation")}

    def _generate_examples(self, documents):
        for doc in documents:
            yield doc.id, {"text": doc.text, "source": doc.source, "id": doc.id}


def default_data_dir() -> Path:
    """``$MODERNBERT_JAX_CACHE/tensorflow_datasets`` (default ``~/.cache/modernbert_jax/tensorflow_datasets``)."""
    return debian.cache_dir().parent / "tensorflow_datasets"


def prepare_tfds(dataset: str, data_dir: str | os.PathLike | None = None) -> tfds.core.DatasetBuilder:
    """Prepare ``dataset`` (``modernbert_corpus/<demo|full|n<N>>`` or any TFDS name) as array_record
    under ``data_dir`` (once) and return its builder; reading it needs no TensorFlow."""
    data_dir = str(data_dir or default_data_dir())
    name, _, config = dataset.partition("/")
    if name == NAME:
        custom = re.fullmatch(r"n(\d+)", config)
        if custom:
            config = CorpusConfig(name=config, max_documents=int(custom.group(1)), validation_fraction=0.05)
        builder = ModernbertCorpus(config=config or None, data_dir=data_dir, file_format="array_record")
    else:
        builder = tfds.builder(dataset, data_dir=data_dir, file_format="array_record")
    # Several processes on one machine (a multi-process run, parallel tests) may ask at once:
    # one builds, the others wait and then find the prepared dataset.
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, ".prepare.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        builder.download_and_prepare()
    return builder
