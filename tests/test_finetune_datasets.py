"""The fine-tuning corpora on fixtures: debian_packages' construction and split, pydocs_bio's BIO tags."""

import sys

import pytest

from finetune_jax.datasets import debian_packages, pydocs_bio
from modernbert_jax.data import rst, splits
from modernbert_jax.data.debian import DebianPackage

FAMILIES = 40


def _packages(cache=None):
    del cache  # stands in for debian.debian_packages
    n = debian_packages.MIN_EXAMPLES
    rows = [DebianPackage(f"game-{i}", "games", f"game number {i}", f"A game.\n\nLevel {i}.") for i in range(n)]
    rows += [DebianPackage(f"mail-{i}", "contrib/mail", f"mail tool {i}", "") for i in range(n)]
    rows += [DebianPackage(f"editor-{i}", "editors", f"editor number {i}", "") for i in range(n - 1)]  # too few
    for i in range(FAMILIES):
        # One source's binaries, with near-identical descriptions ...
        rows += [DebianPackage(f"libfam{i}", "games", f"family {i} library", f"Family {i} does things.", f"fam{i}"),
                 DebianPackage(f"libfam{i}-dev", "mail", f"family {i} headers", f"Family {i} does things.\n\nHeaders.",
                               f"fam{i}")]
        # ... and two sources sharing a description verbatim.
        rows += [DebianPackage(f"share{i}-a", "games", f"shared {i} one", f"Shared text {i}.", f"srcA{i}"),
                 DebianPackage(f"share{i}-b", "mail", f"shared {i} two", f"Shared text {i}.", f"srcB{i}")]
        # A plugin whose description opens with its host's, from another source.
        host = f"Host {i} is a program with a description long enough to quote."
        rows += [DebianPackage(f"host{i}", "games", f"host program {i}", host, f"host{i}"),
                 DebianPackage(f"plugin{i}", "games", f"plugin for host {i}", f"{host}\n\nThis is a plugin.", f"plug{i}")]
    rows += [
        DebianPackage("dup-b", "games", "Duplicate  synopsis text", "Same long text."),
        DebianPackage("dup-a", "games", "duplicate synopsis text", "same  long text."),  # same text, kept once
        DebianPackage("amb-a", "games", "ambiguous synopsis here", ""),
        DebianPackage("amb-b", "mail", "ambiguous synopsis here", ""),                   # two sections: dropped
        DebianPackage("short", "games", "too short", ""),                                  # < 3 words: dropped
        DebianPackage("nosection", "", "a package without section", ""),                 # dropped
    ]
    return rows


def test_build_examples_rules():
    labels, examples = debian_packages.build_examples(_packages())
    assert labels == ("games", "mail")  # editors has one text too few; component prefix dropped
    rows = [row for split in examples.values() for row in split]
    packages = {row["package"] for row in rows}
    quoting = sum(splits.DEBIAN_PACKAGES.held_out(f"host{i}") and not splits.DEBIAN_PACKAGES.held_out(f"plug{i}")
                  for i in range(FAMILIES))
    assert len(packages) == len(rows) == 2 * debian_packages.MIN_EXAMPLES + 6 * FAMILIES + 1 - quoting
    assert "dup-a" in packages and "dup-b" not in packages  # the alphabetically first package speaks
    assert not packages & {"amb-a", "amb-b", "short", "nosection"} and not any(p.startswith("editor") for p in packages)
    game = next(row for row in rows if row["package"] == "game-7")
    assert game["text"] == "game number 7\nA game.\n\nLevel 7." and labels[game["label"]] == "games"
    assert next(row for row in rows if row["package"] == "mail-3")["text"] == "mail tool 3"


def test_split_by_package_group_keeps_siblings_together():
    _, examples = debian_packages.build_examples(_packages())
    split_of = {row["package"]: split for split, rows in examples.items() for row in rows}
    groups = splits.debian_package_groups(_packages())
    assert all(split_of[name] == splits.DEBIAN_PACKAGES(groups[name]) for name in split_of)
    for i in range(FAMILIES):
        assert split_of[f"libfam{i}"] == split_of[f"libfam{i}-dev"]  # one source
        assert split_of[f"share{i}-a"] == split_of[f"share{i}-b"]    # one description, two sources
        assert groups[f"share{i}-a"] == groups[f"share{i}-b"] == f"srcA{i}"
    assert {split_of[f"libfam{i}"] for i in range(FAMILIES)} == set(splits.DEBIAN_PACKAGES.fractions)
    # A train text quoting a held-out description is dropped (not the text it quotes).
    quoting = {i for i in range(FAMILIES)
               if splits.DEBIAN_PACKAGES.held_out(f"host{i}") and not splits.DEBIAN_PACKAGES.held_out(f"plug{i}")}
    assert {i for i in range(FAMILIES) if f"plugin{i}" not in split_of} == quoting and quoting
    assert all(f"host{i}" in split_of for i in range(FAMILIES))


def test_groups_join_chains_and_ignore_order():
    chain = [DebianPackage("a1", "s", "x", "text one", "zeta"), DebianPackage("a2", "s", "x", "text two", "zeta"),
             DebianPackage("b1", "s", "x", "text two", "beta"), DebianPackage("c1", "s", "x", "", ""),
             DebianPackage("d1", "s", "x", "", "zeta")]
    groups = splits.debian_package_groups(chain)
    assert groups == {"a1": "beta", "a2": "beta", "b1": "beta", "c1": "c1", "d1": "beta"}
    assert splits.debian_package_groups(reversed(chain)) == groups


def test_build_examples_is_order_independent():
    assert debian_packages.build_examples(list(reversed(_packages()))) == debian_packages.build_examples(_packages())


def test_array_record_without_tensorflow(tmp_path, monkeypatch):
    monkeypatch.setattr(debian_packages.debian, "debian_packages", _packages)
    loaded = debian_packages.load_splits(str(tmp_path))
    labels, expected = debian_packages.build_examples(_packages())
    assert debian_packages.label_names(str(tmp_path)) == labels
    for split, rows in expected.items():
        assert sorted(loaded[split], key=lambda ex: ex["id"]) == [
            {"id": row["package"], "text": row["text"], "label": row["label"]} for row in rows]
    assert "tensorflow" not in sys.modules
    builder = debian_packages.DebianPackages(data_dir=str(tmp_path), file_format="array_record")
    assert builder.info.metadata["sources"][0]["package"] == "debian package lists"  # read back from disk
    assert builder.info.features["label"].names == list(labels)


def _reference(ner, n_words=8):
    return {"id": "library/x.rst.txt#0", "tokenized_text": [f"w{i}" for i in range(n_words)], "ner": ner}


def test_bio_tags_multi_word_and_nested_spans():
    example = _reference([
        [1, 3, "class"],       # multi-word
        [2, 2, "function"],    # nested in the class span: dropped
        [5, 6, "module"],      # overlaps the next one at word 6; same length, earlier: kept
        [6, 7, "method"],
        [0, 0, "PEP"], [0, 0, "RFC"],  # the same word twice: the type earlier in TYPES wins
    ])
    bio = pydocs_bio.to_bio(example)
    assert bio == {"id": example["id"], "words": example["tokenized_text"],
                   "tags": ["B-PEP", "B-class", "I-class", "I-class", "O", "B-module", "I-module", "O"]}
    assert pydocs_bio.bio_spans(example) == [(0, 0, "PEP"), (1, 3, "class"), (5, 6, "module")]


def test_bio_keeps_the_longest_span_whatever_its_position():
    bio = pydocs_bio.to_bio(_reference([[2, 2, "function"], [0, 4, "environment variable"]], n_words=5))
    assert bio["tags"] == ["B-environment variable"] + ["I-environment variable"] * 4


def test_bio_labels_cover_every_type():
    assert pydocs_bio.LABELS[0] == "O" and len(set(pydocs_bio.LABELS)) == len(pydocs_bio.LABELS)
    assert set(pydocs_bio.TYPES) == set(rst.ROLE_TYPES.values())
    assert {f"B-{t}" for t in pydocs_bio.TYPES} | {f"I-{t}" for t in pydocs_bio.TYPES} == set(pydocs_bio.LABELS[1:])
    assert "B-environment variable" in pydocs_bio.LABELS


def test_bad_spans_name_the_example():
    with pytest.raises(ValueError, match=r"library/x\.rst\.txt#0.*span \[3, 9, 'class'\].*8 words"):
        pydocs_bio.to_bio(_reference([[3, 9, "class"]]))
    with pytest.raises(ValueError, match=r"library/x\.rst\.txt#0.*'widget'"):
        pydocs_bio.to_bio(_reference([[0, 1, "widget"]]))


def test_load_splits_converts_every_split(monkeypatch):
    reference = {split: [_reference([[0, 1, "module"]]) | {"id": f"{split}#0"}] for split in pydocs_bio.SPLITS}
    monkeypatch.setattr(pydocs_bio.tfds_pydocs, "load_split", lambda split, data_dir=None: reference[split])
    loaded = pydocs_bio.load_splits()
    assert set(loaded) == {"train", "validation", "test"}
    assert all(rows == [pydocs_bio.to_bio(reference[split][0])] for split, rows in loaded.items())
