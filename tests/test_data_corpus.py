"""The embedded corpus: Debian sources via apt, rst -> text, TFDS array_record build without TensorFlow."""

import hashlib
import json
import os
import shutil
import sys

import pytest

from modernbert_jax.data import corpus, debian

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="the embedded corpus needs apt/dpkg")


def test_python_doc_sources_are_the_sphinx_tree():
    root = debian.python_doc_root()
    sources = debian.python_doc_sources()
    assert len(sources) > 400 and sources == sorted(sources)
    assert (root / "index.html").is_file()
    functions = (root / "_sources" / "library" / "functions.rst.txt").read_text(encoding="utf-8")
    assert ".. function:: abs(x)" in functions and ":func:`" in functions


def test_debian_packages_carry_sections_and_long_descriptions():
    packages = debian.debian_packages()
    names = [p.name for p in packages]
    assert len(packages) > 10_000 and names == sorted(set(names))
    python3 = next(p for p in packages if p.name == "python3")
    assert python3.section == "python" and python3.summary
    # The long description comes from the Translation-en index, not the one-line synopsis.
    assert len(python3.description) > 2 * len(python3.summary) and "\n" in python3.description
    assert sum(bool(p.description) for p in packages) > 0.9 * len(packages)


def test_missing_apt_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(debian.AptUnavailableError, match="apt-get.*not found"):
        debian.download_deb("python3.11-doc", cache=tmp_path / "cache")


def test_rst_to_text_keeps_prose_and_code_drops_markup():
    rst = (debian.python_doc_root() / "_sources" / "library" / "json.rst.txt").read_text(encoding="utf-8")
    text = corpus.rst_to_text(rst)
    assert ":mod:`" in rst and ":rfc:`7159`" in rst
    assert ":mod:`" not in text and ".. function::" not in text and "``" not in text
    assert "RFC 7159" in text  # roles render as Sphinx shows them
    # Literal blocks are kept verbatim (indentation included) once dedented.
    assert "    >>> print(json.dumps({'4': 5, '6': 7}, sort_keys=True, indent=4))" in rst
    assert "\n>>> print(json.dumps({'4': 5, '6': 7}, sort_keys=True, indent=4))\n{\n    \"4\": 5," in text


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    from modernbert_jax.data import tfds_builder

    config = tfds_builder.CorpusConfig(name="pytest", max_documents=60, validation_fraction=0.3)
    builder = tfds_builder.ModernbertCorpus(config=config, data_dir=str(tmp_path_factory.mktemp("tfds")),
                                            file_format="array_record")
    builder.download_and_prepare()
    return builder


def test_tfds_build_splits_by_document_without_duplicates(small_corpus):
    assert "tensorflow" not in sys.modules, "building and reading must not need TensorFlow"
    splits = small_corpus.as_data_source()
    examples = {name: [splits[name][i] for i in range(len(splits[name]))] for name in ("train", "validation")}
    assert examples["train"] and examples["validation"]
    hashes, ids = set(), set()
    for name, rows in examples.items():
        for ex in rows:
            text = ex["text"].decode("utf-8")
            assert corpus.split_of(text, 0.3) == name
            hashes.add(hashlib.sha256(ex["text"]).hexdigest())
            ids.add(ex["id"].decode())
            assert ex["source"] in (b"prose", b"code")
    total = sum(len(r) for r in examples.values())
    assert len(hashes) == total and len(ids) == total
    # Every origin is represented: Python docs, Debian descriptions (prose) and code files.
    assert {i.split(":")[0] for i in ids} == {"pydoc", "debian", "code"}


def test_user_jsonl_and_text_files_give_splits_and_a_tokenizer(tmp_path):
    from modernbert_jax.data.build import prepare_pretraining_data

    pages = debian.python_doc_sources()[:40]
    texts = [corpus.rst_to_text(p.read_text(encoding="utf-8")) for p in pages]
    with open(tmp_path / "docs.jsonl", "w") as f:
        for t in texts[:-1]:
            f.write(json.dumps({"body": t}) + "\n")
    (tmp_path / "last.txt").write_text(texts[-1])
    data = prepare_pretraining_data(files=[tmp_path / "docs.jsonl", tmp_path / "last.txt"], text_key="body",
                                    vocab_size=1024, data_dir=tmp_path / "out", validation_fraction=0.2)
    assert len(data.train) + len(data.validation) == 40 and len(data.validation) > 0
    got = sorted([data.train[i] for i in range(len(data.train))] + [data.validation[i] for i in range(len(data.validation))])
    assert got == sorted(texts)
    assert data.tokenizer_path.is_file() and data.tokenizer.vocab_size == 1024
    assert os.path.dirname(data.tokenizer_path) == str(tmp_path / "out" / "tokenizers")
