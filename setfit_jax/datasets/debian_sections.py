"""TFDS builder ``debian_sections``: Debian package one-line descriptions labelled by ``Section``.

A real, offline few-shot topic-classification set: every Debian mirror lists each package's
synopsis (``Description`` first line) and its archive ``Section``. Records come from
``apt-cache dumpavail`` over private apt lists (``modernbert_jax.data.debian``; ``apt-get update``
runs once into the cache on a fresh machine).

Construction (deterministic, so the test split is fixed):
* keep packages whose section (component prefix such as ``contrib/`` dropped) is one of
  ``SECTIONS`` -- topical sections, not language or packaging ones like ``libs``/``python``;
* normalise whitespace; drop synopses shorter than 3 words;
* deduplicate on the lower-cased synopsis: a text seen in one section is kept once (for the
  alphabetically first package carrying it), a text seen in several sections is dropped (its
  label is ambiguous);
* split by package name with ``modernbert_jax.data.splits.DEBIAN_SECTIONS``: the train split is
  the packages it keeps for training; the held-out packages (which the pretraining corpus never
  sees) give ``test``, the first ``TEST_PER_CLASS`` of each section in the split's stable order
  (a balanced test set), and ``validation``, the rest.

Stored as ``array_record`` and read with ``tfds.data_source`` -- no TensorFlow needed:

    import tensorflow_datasets as tfds, setfit_jax.datasets.debian_sections
    tfds.data_source("debian_sections", split="train")[0]  # {"text": b"...", "label": 3, "package": b"..."}
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Iterable

import tensorflow_datasets as tfds

from modernbert_jax.data import debian, splits, tfds_builder

SECTIONS = splits.DEBIAN_SECTIONS_LABELS
TEST_PER_CLASS = 100
MIN_WORDS = 3


def unambiguous_texts(rows: Iterable[dict]) -> list[dict]:
    """One row per distinct ``text`` (compared lower-cased, whitespace-normalised), in text order.

    The row of the alphabetically first ``package`` speaks for a shared text, whatever the input
    order; a text found under several ``section``s is dropped, its label being ambiguous.
    """
    sections: dict[str, set[str]] = defaultdict(set)
    first: dict[str, dict] = {}
    for row in rows:
        key = " ".join(row["text"].split()).lower()
        sections[key].add(row["section"])
        if key not in first or row["package"] < first[key]["package"]:
            first[key] = row
    return [first[key] for key in sorted(first) if len(sections[key]) == 1]


def build_examples(packages) -> dict[str, list[dict]]:
    """``{"train", "validation", "test"}`` lists of ``{"text", "label", "package"}`` from package records."""
    candidates = []
    for pkg in packages:
        section = splits.debian_section(pkg.section)
        text = re.sub(r"\s+", " ", pkg.summary).strip()
        if section in SECTIONS and len(text.split()) >= MIN_WORDS:
            candidates.append({"text": text, "section": section, "package": pkg.name})
    per_section: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
    for row in unambiguous_texts(candidates):
        name = row["package"]
        per_section[row["section"]].append((splits.DEBIAN_SECTIONS.position(name), row["text"], name))
    rows: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for label, section in enumerate(SECTIONS):
        held_out = []
        for item in sorted(per_section[section]):
            (held_out if splits.DEBIAN_SECTIONS.held_out(item[2]) else rows["train"]).append((label, item))
        if len(held_out) < TEST_PER_CLASS:
            raise ValueError(f"section {section!r} has {len(held_out)} held-out synopses; the balanced test set "
                             f"needs {TEST_PER_CLASS} (fewer packages than splits.DEBIAN_SECTIONS expects)")
        rows["test"] += held_out[:TEST_PER_CLASS]
        rows["validation"] += held_out[TEST_PER_CLASS:]
    return {split: [{"text": text, "label": label, "package": name} for label, (_, text, name) in items]
            for split, items in rows.items()}


class DebianSections(tfds.core.GeneratorBasedBuilder):
    """Debian package synopses labelled by topical archive section."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Eight topical sections, deduplicated, 100 test examples per section.",
        "2.0.0": "Split by package name (modernbert_jax.data.splits): test and the new validation split hold "
        "only packages the pretraining corpus excludes; the package lists' hashes in the metadata.",
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            metadata=tfds.core.MetadataDict(),  # "sources", filled while building
            features=tfds.features.FeaturesDict({
                "text": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=list(SECTIONS)),
                "package": tfds.features.Text(),
            }),
            supervised_keys=("text", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the data comes from apt, not a URL
        self.info.metadata["sources"] = [debian.package_lists_record()]
        examples = build_examples(debian.debian_packages())
        return {name: self._generate_examples(rows) for name, rows in examples.items()}

    def _generate_examples(self, rows):
        for row in rows:
            yield row["package"], row


def load(split: str, data_dir: str | None = None):
    """Build once (array_record) and return the random-access ``tfds.data_source`` for ``split``."""
    builder = DebianSections(data_dir=str(data_dir or tfds_builder.default_data_dir()), file_format="array_record")
    builder.download_and_prepare()
    return builder.as_data_source(split=split)


def label_names() -> list[str]:
    return list(SECTIONS)
