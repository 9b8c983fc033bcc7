"""The Python-documentation NER corpus: Sphinx roles as hand-annotated typed spans.

Each example is one prose paragraph of ``_sources/**/*.rst.txt`` from Debian's
``python3.11-doc``, in the reference GLiNER format — ``tokenized_text`` (words from the
GLiNER splitter) and ``ner`` (``[first_word, last_word, type]``, inclusive) — plus the
plain ``text`` and the ``doc`` it came from. Documents, not paragraphs, are split into
train / validation / test 80/10/10 by ``modernbert_jax.data.splits.PYTHON_DOCS_NER`` (keyed by
the page's path), so no page leaks across splits, and the pretraining corpus, which shares the
definition, leaves out every validation and test page.

Zero-shot protocol: ``UNSEEN_TYPES`` are removed from the training split's annotations
(never prompted, never negatives) and evaluated separately from the seen types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from modernbert_jax.data import rst
from gliner_jax.words import split_words
from modernbert_jax.data import splits

SPLITS = tuple(splits.PYTHON_DOCS_NER.fractions)
UNSEEN_TYPES = ("exception", "environment variable", "PEP", "keyword")
MIN_WORDS = 4


def paragraph_example(doc: str, index: int, paragraph: rst.Paragraph) -> dict | None:
    """Reference-format example for one paragraph; spans not on word boundaries are dropped."""
    words = split_words(paragraph.text)
    if len(words) < MIN_WORDS:
        return None
    first_word = {w.start: i for i, w in enumerate(words)}
    last_word = {w.end: i for i, w in enumerate(words)}
    ner = []
    for span in paragraph.spans:
        a, b = first_word.get(span.start), last_word.get(span.end)
        if a is not None and b is not None and b >= a:
            ner.append([a, b, span.label])
    return {
        "id": f"{doc}#{index}",
        "doc": doc,
        "text": paragraph.text,
        "tokenized_text": [w.text for w in words],
        "ner": ner,
    }


def document_examples(doc: str, source: str) -> Iterator[dict]:
    for index, paragraph in enumerate(rst.document_paragraphs(source)):
        example = paragraph_example(doc, index, paragraph)
        if example is not None and example["ner"]:
            yield example


def corpus_examples(root: Path, files: Iterable[Path]) -> Iterator[tuple[str, dict]]:
    """``(split, example)`` for every annotated paragraph of the given ``.rst.txt`` files."""
    for path in files:
        doc = path.relative_to(root).as_posix()
        for example in document_examples(doc, path.read_text(encoding="utf-8", errors="replace")):
            yield splits.PYTHON_DOCS_NER(doc), example


def remove_types(example: dict, types: Iterable[str]) -> dict:
    """A copy of ``example`` without annotations of ``types`` (the zero-shot training view)."""
    drop = set(types)
    return {**example, "ner": [e for e in example["ner"] if e[2] not in drop]}
