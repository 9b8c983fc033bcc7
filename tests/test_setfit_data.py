"""The debian_sections TFDS builder: construction rules, held-out test set, array_record read without TensorFlow."""

import sys

import pytest

from modernbert_jax.data import splits
from modernbert_jax.data.debian import DebianPackage
from setfit_jax import data
from setfit_jax.datasets import debian_sections

PER_SECTION = 260  # enough for 100 held-out packages in every section at a 55% held-out share


def _packages(cache=None):
    del cache  # stands in for debian.debian_packages
    rows = []
    for section in debian_sections.SECTIONS:
        for i in range(PER_SECTION):
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
    splits_ = debian_sections.build_examples(_packages())
    rows = [r for split in splits_.values() for r in split]
    texts = [r["text"] for r in rows]
    assert len(texts) == len(set(t.lower() for t in texts)) == len(debian_sections.SECTIONS) * PER_SECTION + 1
    assert "Shared synopsis text here" in texts
    assert not any("ambiguous" in t or t == "too short" or "library" in t for t in texts)
    per_class = [sum(r["label"] == k for r in splits_["test"]) for k in range(len(debian_sections.SECTIONS))]
    assert per_class == [debian_sections.TEST_PER_CLASS] * len(debian_sections.SECTIONS)
    # Test and validation hold only packages the pretraining corpus leaves out; train none of them.
    for split, expect_held_out in (("test", True), ("validation", True), ("train", False)):
        assert splits_[split] and all(
            splits.debian_package_held_out(r["package"], debian_sections.SECTIONS[r["label"]]) == expect_held_out
            for r in splits_[split])
    assert debian_sections.build_examples(list(reversed(_packages()))) == splits_  # order-independent


def test_too_few_held_out_packages_is_a_clear_error():
    few = [p for p in _packages() if not p.name.startswith("database-") or int(p.name.split("-")[1]) < 150]
    with pytest.raises(ValueError, match="'database' has .* held-out synopses.*needs 100"):
        debian_sections.build_examples(few)


def test_array_record_without_tensorflow(tmp_path, monkeypatch):
    monkeypatch.setattr(debian_sections.debian, "debian_packages", _packages)
    source = debian_sections.load("train", str(tmp_path))
    texts, labels = data.to_examples(source)
    expected = debian_sections.build_examples(_packages())["train"]
    assert sorted(texts) == sorted(r["text"] for r in expected)
    assert all(isinstance(t, str) for t in texts) and all(isinstance(y, int) for y in labels)
    assert "tensorflow" not in sys.modules
    builder = debian_sections.DebianSections(data_dir=str(tmp_path), file_format="array_record")
    assert builder.info.metadata["sources"][0]["package"] == "debian package lists"  # read back from disk
