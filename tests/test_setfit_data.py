"""The debian_sections TFDS builder: construction rules, and array_record read without TensorFlow."""

import sys

import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from modernbert_jax.data.debian import DebianPackage  # noqa: E402
from setfit_jax import data  # noqa: E402
from setfit_jax.datasets import debian_sections  # noqa: E402


def _packages():
    rows = []
    for section in debian_sections.SECTIONS:
        for i in range(debian_sections.TEST_PER_CLASS + 3):
            rows.append(DebianPackage(f"{section}-{i}", section, f"{section} tool number {i}", ""))
    rows += [
        DebianPackage("dup-a", "contrib/games", "Shared  synopsis text here", ""),  # prefix + whitespace
        DebianPackage("dup-b", "games", "shared synopsis text here", ""),          # same text, same section
        DebianPackage("amb-a", "games", "ambiguous synopsis across sections", ""),
        DebianPackage("amb-b", "mail", "ambiguous synopsis across sections", ""),  # dropped: two sections
        DebianPackage("short", "games", "too short", ""),                           # dropped: < 3 words
        DebianPackage("lib", "libs", "a library that is not topical", ""),          # dropped: section
    ]
    return rows


def test_build_examples_rules():
    splits = debian_sections.build_examples(_packages())
    test, train = splits["test"], splits["train"]
    texts = [r["text"] for r in train + test]
    assert len(texts) == len(set(t.lower() for t in texts))
    assert "Shared synopsis text here" in texts
    assert not any("ambiguous" in t or t == "too short" or "library" in t for t in texts)
    per_class = [sum(r["label"] == k for r in test) for k in range(len(debian_sections.SECTIONS))]
    assert per_class == [debian_sections.TEST_PER_CLASS] * len(debian_sections.SECTIONS)
    assert debian_sections.build_examples(list(reversed(_packages()))) == splits  # order-independent


def test_array_record_without_tensorflow(tmp_path, monkeypatch):
    monkeypatch.setattr(debian_sections.debian, "debian_packages", _packages)
    source = debian_sections.load("train", str(tmp_path))
    texts, labels = data.to_examples(source)
    assert len(texts) == len(debian_sections.SECTIONS) * 3 + 1
    assert all(isinstance(t, str) for t in texts) and all(isinstance(y, int) for y in labels)
    assert "tensorflow" not in sys.modules
