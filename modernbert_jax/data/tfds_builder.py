"""TFDS builder for the embedded default corpus, written as array_record (no TensorFlow needed).

    import modernbert_jax.data.tfds_builder  # registers "modernbert_corpus"
    builder = tfds.builder("modernbert_corpus/demo", data_dir=DIR, file_format="array_record")
    builder.download_and_prepare()
    train = tfds.data_source("modernbert_corpus/demo", split="train", data_dir=DIR)

Each example: ``{"text": str, "source": "prose" | "code", "id": str}``. Configs differ only in
size: ``full`` (everything), ``demo`` (3,000 candidate documents), and any
``CorpusConfig(name=..., max_documents=N)`` passed as ``config=``. Train/validation are split by
content hash, after exact deduplication (see ``modernbert_jax.data.corpus``).

The code half depends on the interpreter that builds it (its standard library and installed
packages), so two machines may build slightly different corpora; the ids name each file.

TFDS 4.9.10 builds and reads array_record without TensorFlow: ``GeneratorBasedBuilder`` writes
through ``array_record`` directly and ``tfds.data_source`` gives random access.
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from modernbert_jax.data import corpus

NAME = "modernbert_corpus"


@dataclasses.dataclass(eq=False)
class CorpusConfig(tfds.core.BuilderConfig):
    """``max_documents``: cap on candidate documents (None = all); ``validation_fraction``: share of
    documents (by content hash) held out."""

    max_documents: int | None = None
    validation_fraction: float = 0.01


class ModernbertCorpus(tfds.core.GeneratorBasedBuilder):
    """Python docs + Debian package descriptions (prose), Python stdlib and packages (code)."""

    name = NAME
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Python 3.11 docs, Debian descriptions, stdlib and installed .py files."}
    BUILDER_CONFIGS = [
        CorpusConfig(name="full", description="Every document.", max_documents=None, validation_fraction=0.01),
        CorpusConfig(name="demo", description="3,000 candidates, for make demo.", max_documents=3000, validation_fraction=0.03),
    ]
    DEFAULT_CONFIG_NAME = "demo"

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {"text": tfds.features.Text(), "source": tfds.features.Text(), "id": tfds.features.Text()}
            ),
            homepage="https://packages.debian.org/bookworm/python3.11-doc",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # everything comes from apt and the local interpreter
        candidates = corpus.default_candidates(self.builder_config.max_documents)
        return {split: self._generate_examples(candidates, split) for split in ("train", "validation")}

    def _generate_examples(self, candidates, split):
        fraction = self.builder_config.validation_fraction
        for doc in corpus.read_documents(candidates):
            if corpus.split_of(doc.text, fraction) == split:
                yield doc.id, {"text": doc.text, "source": doc.source, "id": doc.id}
