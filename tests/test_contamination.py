"""No document that GLiNER, SetFit or the fine-tuning corpora hold out reaches the pretraining
corpus, by key or by text.

The pretraining side is every prose candidate of the full corpus (both of its splits: held-out
documents are excluded outright, so a check of the train split is a check of both); the
downstream side is what the GLiNER, SetFit and debian_packages builders themselves put in
validation and test.
"""

import shutil
from collections import defaultdict

import pytest

from gliner_jax.data import pydocs
from modernbert_jax.data import corpus, debian, splits
from finetune_jax.datasets import debian_packages
from setfit_jax.datasets import debian_sections

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="the embedded corpora need apt/dpkg")

MIN_WORDS = 8  # a shared paragraph this long is a leak, not a common phrase


@pytest.fixture(scope="module")
def pretraining():
    """id -> text of every document the full pretraining corpus would hold (prose and code)."""
    origins = [(corpus.PROSE, corpus.python_doc_documents() + corpus.debian_description_documents()),
               (corpus.CODE, corpus.python_code_documents())]
    return {doc.id: doc.text for doc in corpus.read_documents([(s, i, load) for s, items in origins for i, load in items])}


@pytest.fixture(scope="module")
def gliner_held_out():
    # Only the pages the shared definition holds out are rendered (test_gliner_data checks that
    # GLiNER's builder splits by that definition); what matters here is GLiNER's own text of them.
    pages = [p for key, p in corpus.python_doc_pages().items() if splits.PYTHON_DOCS_NER.held_out(key)]
    return [ex for split, ex in pydocs.corpus_examples(debian.python_doc_root() / "_sources", pages) if split != "train"]


@pytest.fixture(scope="module")
def setfit_held_out():
    examples = debian_sections.build_examples(debian.debian_packages())
    return examples["test"] + examples["validation"]


@pytest.fixture(scope="module")
def finetune_held_out():
    _, examples = debian_packages.build_examples(debian.debian_packages())
    return examples["test"] + examples["validation"]


def occurrences(passages, documents: dict[str, str]) -> list[tuple[str, str]]:
    """(passage, document id) for every passage of >= MIN_WORDS words found inside a document,
    whitespace-normalised; passages are looked up by their opening words, so each document is
    read once."""
    by_opening = defaultdict(set)
    for passage in passages:
        words = passage.split()
        if len(words) >= MIN_WORDS:
            by_opening[tuple(words[:MIN_WORDS])].add(" ".join(words))
    found = []
    for doc_id, text in documents.items():
        words = text.split()
        normalised = " ".join(words)
        for opening in by_opening.keys() & zip(*(words[i:] for i in range(MIN_WORDS))):
            found += [(p, doc_id) for p in by_opening[opening] if p in normalised]
    return found


def test_no_gliner_validation_or_test_page_is_pretrained(pretraining, gliner_held_out):
    held_pages = {ex["doc"] for ex in gliner_held_out}
    assert len(held_pages) > 50  # ~20% of ~500 pages
    pretrained_pages = {i.removeprefix("pydoc:") for i in pretraining if i.startswith("pydoc:")}
    assert len(pretrained_pages) > 300 and not held_pages & pretrained_pages


def test_no_gliner_validation_or_test_paragraph_is_pretrained(pretraining, gliner_held_out):
    paragraphs = [ex["text"] for ex in gliner_held_out]
    assert sum(len(p.split()) >= MIN_WORDS for p in paragraphs) > 1000
    assert occurrences(paragraphs, pretraining) == []


def test_no_setfit_held_out_package_is_pretrained(pretraining, setfit_held_out):
    descriptions = {p.name: p.description for p in debian.debian_packages()}
    held = {row["package"] for row in setfit_held_out}
    assert len(held) >= debian_sections.TEST_PER_CLASS * len(debian_sections.SECTIONS)
    pretrained = {i.removeprefix("debian:") for i in pretraining if i.startswith("debian:")}
    # ~48,000 of ~64,000 descriptions: debian_packages holds out a fifth of the package groups.
    assert len(pretrained) > 40_000 and not held & pretrained
    # Nor its long description under another package's name (packages share descriptions).
    texts = set(pretraining.values())
    assert not [name for name in held if descriptions[name] and descriptions[name] + "\n" in texts]


def test_no_setfit_test_synopsis_is_pretrained(pretraining, setfit_held_out):
    synopses = [row["text"] for row in setfit_held_out]
    assert occurrences(synopses, pretraining) == []


def test_no_debian_packages_validation_or_test_package_is_pretrained(pretraining, finetune_held_out):
    descriptions = {p.name: p.description for p in debian.debian_packages()}
    held = {row["package"] for row in finetune_held_out}
    assert len(held) > 5_000  # a fifth of ~58,000 examples
    pretrained = {i.removeprefix("debian:") for i in pretraining if i.startswith("debian:")}
    assert not held & pretrained
    # Nor its long description under another package's name, nor inside any other document.
    texts = set(pretraining.values())
    assert not [name for name in held if descriptions[name] and descriptions[name] + "\n" in texts]
    assert occurrences([descriptions[name] for name in held], pretraining) == []
