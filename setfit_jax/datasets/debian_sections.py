"""TFDS builder ``debian_sections``: Debian package one-line descriptions labelled by ``Section``.

A real, offline few-shot topic-classification set: every Debian mirror lists each package's
synopsis (``Description`` first line) and its archive ``Section``. Records come from
``apt-cache dumpavail`` over private apt lists (``modernbert_jax.data.debian``; ``apt-get update``
runs once into the cache on a fresh machine).

Construction (deterministic, so the test split is fixed):
* keep packages whose section (component prefix such as ``contrib/`` dropped) is one of
  ``SECTIONS`` -- topical sections, not language or packaging ones like ``libs``/``python``;
* normalise whitespace; drop synopses shorter than 3 words;
* deduplicate on the lower-cased synopsis: a text seen in one section is kept once, a text seen
  in several sections is dropped (its label is ambiguous);
* per section, order texts by MD5 and put the first ``TEST_PER_CLASS`` in ``test``, the rest in
  ``train`` (a balanced test set).

Stored as ``array_record`` and read with ``tfds.data_source`` -- no TensorFlow needed:

    import tensorflow_datasets as tfds, setfit_jax.datasets.debian_sections
    tfds.data_source("debian_sections", split="train")[0]  # {"text": b"...", "label": 3, "package": b"..."}
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

import tensorflow_datasets as tfds

from modernbert_jax.data import debian, tfds_builder

SECTIONS = ("database", "editors", "games", "graphics", "mail", "math", "science", "sound")
TEST_PER_CLASS = 100
MIN_WORDS = 3


def build_examples(packages) -> dict[str, list[dict]]:
    """``{"train": [...], "test": [...]}`` of ``{"text", "label", "package"}`` from package records."""
    by_text: dict[str, set] = defaultdict(set)
    first: dict[str, tuple[str, str]] = {}
    for pkg in packages:
        section = pkg.section.split("/")[-1]
        text = re.sub(r"\s+", " ", pkg.summary).strip()
        if section not in SECTIONS or len(text.split()) < MIN_WORDS:
            continue
        key = text.lower()
        by_text[key].add(section)
        # The alphabetically first package speaks for a shared text, whatever the input order.
        if key not in first or pkg.name < first[key][1]:
            first[key] = (text, pkg.name)
    per_section: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for key, sections in by_text.items():
        if len(sections) == 1:
            text, name = first[key]
            digest = hashlib.md5(key.encode("utf-8")).hexdigest()
            per_section[next(iter(sections))].append((digest, text, name))
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    for label, section in enumerate(SECTIONS):
        items = sorted(per_section[section])
        for n, (_, text, name) in enumerate(items):
            split = "test" if n < TEST_PER_CLASS else "train"
            splits[split].append({"text": text, "label": label, "package": name})
    return splits


class DebianSections(tfds.core.GeneratorBasedBuilder):
    """Debian package synopses labelled by topical archive section."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Eight topical sections, deduplicated, 100 test examples per section."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "text": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=list(SECTIONS)),
                "package": tfds.features.Text(),
            }),
            supervised_keys=("text", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the data comes from apt, not a URL
        splits = build_examples(debian.debian_packages())
        return {name: self._generate_examples(rows) for name, rows in splits.items()}

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
