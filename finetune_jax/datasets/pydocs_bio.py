"""The Python-docs NER corpus as BIO tags: supervised token classification over GLiNER's examples.

GLiNER's ``python_docs_ner`` (``gliner_jax.data.tfds_pydocs``) holds paragraphs of
docs.python.org as words plus typed spans ``[first_word, last_word, type]`` (inclusive), split by
page; this module reads the same splits (which the pretraining corpus already leaves out) and
tags each word ``B-<type>``, ``I-<type>`` or ``O``. Every type is trained and evaluated: this is
supervised NER, not GLiNER's zero-shot protocol.

BIO gives a word one tag, so nested or overlapping spans cannot all be kept: the longest span
wins, then the earlier one, then the type earlier in ``TYPES``; spans overlapping a kept one are
dropped (``bio_spans``). Type names are kept as they are, spaces included
(``B-environment variable``).

    from finetune_jax.datasets import pydocs_bio
    splits = pydocs_bio.load_splits()   # {"train": [{"id", "words", "tags"}, ...], ...}

Statistics of the real corpus:

    python -c "from finetune_jax.datasets import pydocs_bio; pydocs_bio.print_statistics()"
"""

from __future__ import annotations

import collections
import os
import time

import tensorflow_datasets as tfds

from gliner_jax.data import pydocs, tfds_pydocs
from modernbert_jax.data import rst

# Entity types in the order of the Sphinx roles that mark them (``rst.ROLE_TYPES``).
TYPES = tuple(dict.fromkeys(rst.ROLE_TYPES.values()))
LABELS = ("O", *(f"{prefix}-{type_}" for type_ in TYPES for prefix in ("B", "I")))
SPLITS = pydocs.SPLITS


def _checked_spans(example: dict) -> list[tuple[int, int, str]]:
    words, spans = example["tokenized_text"], []
    for span in example["ner"]:
        start, end, type_ = span
        if type_ not in TYPES:
            raise ValueError(f"example {example['id']!r}: entity type {type_!r} is not one of pydocs_bio.TYPES")
        if not 0 <= start <= end < len(words):
            raise ValueError(f"example {example['id']!r}: span {list(span)} is outside its {len(words)} words")
        spans.append((int(start), int(end), type_))
    return spans


def bio_spans(example: dict) -> list[tuple[int, int, str]]:
    """The spans of a GLiNER-format example that BIO keeps (sorted by start): the longest first,
    ties to the earlier span, then to the type earlier in ``TYPES``; a span overlapping a kept
    one is dropped."""
    taken: set[int] = set()
    kept = []
    for start, end, type_ in sorted(_checked_spans(example), key=lambda s: (s[0] - s[1], s[0], TYPES.index(s[2]))):
        if taken.isdisjoint(range(start, end + 1)):
            taken.update(range(start, end + 1))
            kept.append((start, end, type_))
    return sorted(kept)


def to_bio(example: dict) -> dict:
    """One GLiNER-format python_docs_ner example -> ``{"id", "words", "tags"}``."""
    tags = ["O"] * len(example["tokenized_text"])
    for start, end, type_ in bio_spans(example):
        tags[start:end + 1] = [f"B-{type_}"] + [f"I-{type_}"] * (end - start)
    return {"id": example["id"], "words": list(example["tokenized_text"]), "tags": tags}


def prepare(data_dir: str | os.PathLike | None = None) -> tfds.core.DatasetBuilder:
    """The ``python_docs_ner`` builder these examples come from (built once)."""
    return tfds_pydocs.prepare(data_dir)


def _reference_splits(data_dir: str | os.PathLike | None) -> dict[str, list[dict]]:
    return {split: tfds_pydocs.load_split(split, data_dir) for split in SPLITS}


def load_splits(data_dir: str | os.PathLike | None = None) -> dict[str, list[dict]]:
    """Every split of python_docs_ner as BIO token-classification examples."""
    return {split: [to_bio(ex) for ex in examples] for split, examples in _reference_splits(data_dir).items()}


def print_statistics() -> None:
    """Print the statistics of the real corpus: examples, entities per type, spans BIO drops."""
    start = time.perf_counter()
    for split, examples in _reference_splits(None).items():
        kept = [span for ex in examples for span in bio_spans(ex)]
        dropped = sum(len(ex["ner"]) for ex in examples) - len(kept)
        per_type = collections.Counter(type_ for _, _, type_ in kept)
        print(f"{split}: {len(examples)} examples, {sum(len(ex['tokenized_text']) for ex in examples)} words, "
              f"{len(kept)} entities of {len(per_type)} types, {dropped} overlapping spans dropped")
        print("  " + ", ".join(f"{type_} {per_type[type_]}" for type_ in TYPES))
    print(f"{time.perf_counter() - start:.1f}s")
