"""The Python-docs NER corpus pieces: word-level examples, JSON format."""

import json
from collections import Counter
from pathlib import Path

import pytest

from gliner_jax.data import json_format, pydocs
from modernbert_jax.data import splits

# The sample page the rst parser's own tests render (tests/test_rst.py).
SOURCE = (Path(__file__).parent / "data" / "json_page.rst.txt").read_text(encoding="utf-8")


def test_examples_use_word_spans_and_document_splits(tmp_path):
    examples = list(pydocs.document_examples("library/json.rst.txt", SOURCE))
    first = examples[0]
    words = first["tokenized_text"]
    assert [(" ".join(words[a: b + 1]), label) for a, b, label in first["ner"]][:2] == [
        ("loads ( )", "function"), ("JSONDecoder . decode", "method")]
    assert pydocs.remove_types(first, ["exception"])["ner"] == [e for e in first["ner"] if e[2] != "exception"]
    # Whole pages are split, by their path, with the definition the pretraining corpus excludes by.
    pages = [tmp_path / "library" / f"page{i}.rst.txt" for i in range(40)]
    pages[0].parent.mkdir()
    for page in pages:
        page.write_text(SOURCE)
    got = {ex["doc"]: split for split, ex in pydocs.corpus_examples(tmp_path, pages)}
    assert got == {f"library/page{i}.rst.txt": splits.PYTHON_DOCS_NER(f"library/page{i}.rst.txt") for i in range(40)}
    assert set(got.values()) == set(pydocs.SPLITS) == {"train", "validation", "test"}
    shares = Counter(splits.PYTHON_DOCS_NER(f"page{i}") for i in range(20_000))
    assert {k: round(v / 20_000, 2) for k, v in shares.items()} == {"train": 0.8, "validation": 0.1, "test": 0.1}
    with pytest.raises(ValueError, match="sum to 1"):
        splits.DocumentSplit("bad", {"train": 0.8, "test": 0.1})


def test_json_format_round_trip_and_errors(tmp_path):
    examples = [{"tokenized_text": ["Use", "len", "."], "ner": [[1, 1, "function"]]}]
    path = json_format.save(tmp_path / "data.json", examples)
    assert json_format.load(path) == examples
    lines = tmp_path / "data.jsonl"
    lines.write_text("\n".join(json.dumps(e) for e in examples))
    assert json_format.load(lines) == examples
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"tokenized_text": ["a"], "ner": [[0, 3, "x"]]}]))
    with pytest.raises(ValueError, match="example 0.*outside the 1 words"):
        json_format.load(bad)
