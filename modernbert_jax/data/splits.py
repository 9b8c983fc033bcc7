"""Held-out splits: one rule for every corpus, and the split definitions of corpora that share sources.

A document's split is a pure function of a stable key naming it (a page path, a package name,
a document id): ``sha256(corpus name, key)`` places the key at a point of [0, 1), and the
corpus's fractions cut that interval into named splits. Adding or removing other documents
never moves one, and the same page lands in the same split wherever the corpus is built.

The pretraining corpus and the downstream corpora read the same sources (the Python docs,
Debian's package records), so the downstream corpora's definitions live here, in the data layer
that the pretraining builder can import (``modernbert_jax`` never imports ``gliner_jax`` or
``setfit_jax``). Pretraining leaves out every document that a downstream corpus holds out
(``held_out``): GLiNER's validation and test pages, SetFit's held-out packages, and the package
groups of the fine-tuning classification corpus's validation and test splits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Iterable, Mapping

from modernbert_jax.data.debian import DebianPackage

TRAIN = "train"


@dataclasses.dataclass(frozen=True)
class DocumentSplit:
    """Named fractions of a corpus's documents, assigned by key.

    ``name`` salts the hash, so two corpora over the same keys split independently: without it
    pretraining's 1% validation would be carved out of exactly the pages GLiNER holds out.
    """

    name: str
    fractions: Mapping[str, float]

    def __post_init__(self):
        if not self.fractions or any(f < 0 for f in self.fractions.values()):
            raise ValueError(f"{self.name}: split fractions must be non-negative, got {dict(self.fractions)}")
        if not math.isclose(sum(self.fractions.values()), 1.0):
            raise ValueError(f"{self.name}: split fractions must sum to 1, got {dict(self.fractions)}")

    def position(self, key: str) -> float:
        """Where ``key`` falls in [0, 1); also a stable order for choosing among a split's documents."""
        digest = hashlib.sha256(f"{self.name}\0{key}".encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    def __call__(self, key: str) -> str:
        """The split of the document named ``key``."""
        point, edge = self.position(key), 0.0
        for split, fraction in self.fractions.items():
            edge += fraction
            if point < edge:
                return split
        return split  # a point within rounding of 1.0 belongs to the last split

    def held_out(self, key: str) -> bool:
        return self(key) != TRAIN


def pretraining(validation_fraction: float) -> DocumentSplit:
    """The MLM corpus: train / validation by document id."""
    return DocumentSplit("modernbert_corpus", {"validation": validation_fraction, TRAIN: 1.0 - validation_fraction})


# GLiNER's Python-docs NER corpus: keyed by the page's path under ``_sources`` ("library/json.rst.txt"),
# 80/10/10 by page so that no page straddles two splits.
PYTHON_DOCS_NER = DocumentSplit("python_docs_ner", {"test": 0.1, "validation": 0.1, TRAIN: 0.8})

# SetFit's Debian-sections corpus: keyed by package name, over the packages of these sections only
# (packages elsewhere are never SetFit examples, so pretraining keeps them all). The smallest
# section has ~240 distinct synopses and the test set takes 100 of each section's held-out ones,
# hence the large held-out share; held-out packages beyond those 100 form the validation split.
DEBIAN_SECTIONS_LABELS = ("database", "editors", "games", "graphics", "mail", "math", "science", "sound")
DEBIAN_SECTIONS = DocumentSplit("debian_sections", {"held_out": 0.55, TRAIN: 0.45})


def debian_section(section: str) -> str:
    """A package's archive section without its component prefix (``contrib/games`` -> ``games``)."""
    return section.split("/")[-1]


def debian_package_held_out(name: str, section: str) -> bool:
    """Whether SetFit holds out the package: it is in a labelled section and not in the train split."""
    return debian_section(section) in DEBIAN_SECTIONS_LABELS and DEBIAN_SECTIONS.held_out(name)


# The fine-tuning classification corpus (finetune_jax.datasets.debian_packages): every section,
# keyed by package group (``debian_package_groups``), 80/10/10.
DEBIAN_PACKAGES = DocumentSplit("debian_packages", {"test": 0.1, "validation": 0.1, TRAIN: 0.8})


def debian_package_groups(packages: Iterable[DebianPackage]) -> dict[str, str]:
    """Package name -> the key of its group: packages built from one source, or carrying one long
    description, are one document for splitting.

    A source's binaries (``libfoo1``, ``libfoo-dev``, ``libfoo-doc``) repeat one description with a
    paragraph changed, and packages of different sources share descriptions verbatim (``antlr`` and
    ``antlr3``, transitional packages), so neither key alone keeps near-identical texts in one split.
    Groups are the connected components of "same source" and "same description"; a group's key is
    its alphabetically first source name, whatever the input order. (The largest group on
    bookworm, GCC's runtime libraries, holds ~2,000 of ~64,000 packages.)
    """
    packages = list(packages)
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(node: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]  # path halving keeps the trees flat
            node = parent[node]
        return node

    for pkg in packages:
        source = root(("source", pkg.source_package))
        if pkg.description:
            description = root(("description", pkg.description))
            parent[max(source, description)] = min(source, description)
    key: dict[tuple[str, str], str] = {}
    for pkg in packages:
        group = root(("source", pkg.source_package))
        key[group] = min(key.get(group, pkg.source_package), pkg.source_package)
    return {pkg.name: key[root(("source", pkg.source_package))] for pkg in packages}
