"""TFDS builder ``python_docs_ner``: the Python-docs NER corpus as array_record.

    from gliner_jax.data.tfds_pydocs import prepare
    builder = prepare()                                    # builds once, no TensorFlow needed
    test = builder.as_data_source(split="test")            # random access

Each example: ``id``, ``doc``, ``text``, ``tokenized_text`` (words) and the entities as three
parallel sequences ``ner_start`` / ``ner_end`` (inclusive word indices) / ``ner_label``;
``to_reference`` turns one into the reference JSON format. The source package is fetched
with apt, at the version pinned by ``debian.PYTHON_DOC``, into a private cache by
``modernbert_jax.data.debian`` on first use; ``builder.info.metadata["sources"]`` records its
version and the .deb's sha256.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from gliner_jax.data import pydocs
from modernbert_jax.data import debian, tfds_builder

NAME = "python_docs_ner"


class PythonDocsNer(tfds.core.GeneratorBasedBuilder):
    """Prose paragraphs of docs.python.org (3.11) with Sphinx roles as typed entity spans."""

    name = NAME
    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "python3.11-doc from Debian; 24 role types; document-level splits.",
        "2.0.0": "Pages split by modernbert_jax.data.splits (the pretraining corpus excludes validation and "
        "test pages); pinned python3.11-doc recorded in the metadata.",
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=pydocs.__doc__,
            features=tfds.features.FeaturesDict({
                "id": tfds.features.Text(),
                "doc": tfds.features.Text(),
                "text": tfds.features.Text(),
                "tokenized_text": tfds.features.Sequence(tfds.features.Text()),
                "ner_start": tfds.features.Sequence(np.int32),
                "ner_end": tfds.features.Sequence(np.int32),
                "ner_label": tfds.features.Sequence(tfds.features.Text()),
            }),
            homepage="https://packages.debian.org/bookworm/python3.11-doc",
            metadata=tfds.core.MetadataDict(),  # "sources", filled while building
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the source comes from apt, not a URL
        self.info.metadata["sources"] = [debian.deb_record(debian.PYTHON_DOC)]
        root = debian.python_doc_root() / "_sources"
        files = debian.python_doc_sources()
        return {split: self._generate_examples(root, files, split) for split in pydocs.SPLITS}

    def _generate_examples(self, root: Path, files: list[Path], split: str):
        for example_split, ex in pydocs.corpus_examples(root, files):
            if example_split != split:
                continue
            yield ex["id"], {
                "id": ex["id"],
                "doc": ex["doc"],
                "text": ex["text"],
                "tokenized_text": ex["tokenized_text"],
                "ner_start": [e[0] for e in ex["ner"]],
                "ner_end": [e[1] for e in ex["ner"]],
                "ner_label": [e[2] for e in ex["ner"]],
            }


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def to_reference(record: dict) -> dict:
    """A TFDS record → ``{"tokenized_text": [...], "ner": [[start, end, label], ...], ...}``."""
    return {
        "id": _text(record["id"]),
        "doc": _text(record["doc"]),
        "text": _text(record["text"]),
        "tokenized_text": [_text(w) for w in record["tokenized_text"]],
        "ner": [[int(a), int(b), _text(label)]
                for a, b, label in zip(record["ner_start"], record["ner_end"], record["ner_label"])],
    }


def prepare(data_dir: str | os.PathLike | None = None) -> tfds.core.DatasetBuilder:
    """Build the dataset under ``data_dir`` once (array_record) and return its builder.

    Defining ``PythonDocsNer`` above registered it with TFDS, so the shared preparer (one
    data dir, a lock against concurrent builds) finds it by name.
    """
    return tfds_builder.prepare_tfds(NAME, data_dir)


def load_split(split: str, data_dir: str | os.PathLike | None = None) -> list[dict]:
    """All examples of ``split`` in the reference format."""
    source = prepare(data_dir).as_data_source(split=split)
    return [to_reference(source[i]) for i in range(len(source))]
