"""TFDS builder ``debian_packages``: Debian package descriptions labelled by ``Section``, every section.

The fine-tuning counterpart of SetFit's few-shot ``debian_sections``: the same package records
(``modernbert_jax.data.debian``: ``apt-cache dumpavail`` over private apt lists), but every section
with enough examples and the full training split.

Construction (deterministic and independent of the records' order):
* text = the one-line synopsis, a newline, then the long description as Debian writes it
  (paragraphs kept; nothing truncated: the model's tokenizer cuts to its ``max_length``);
  label = the section without its component prefix (``contrib/games`` -> ``games``);
* texts under ``MIN_WORDS`` words are dropped; identical texts (compared lower-cased,
  whitespace-normalised) are kept once, for the alphabetically first package, and a text under
  several sections is dropped as ambiguous (``debian_sections.unambiguous_texts``);
* the classes are the sections with at least ``MIN_EXAMPLES`` texts left, in alphabetical order;
* split 80/10/10 by package group (``splits.DEBIAN_PACKAGES`` over ``splits.debian_package_groups``:
  one source package's binaries, and packages sharing a long description, are one group), so the
  ``lib``/``-dev``/``-doc`` siblings that repeat one description never straddle two splits. The
  pretraining corpus leaves out every package of a held-out group;
* a train text whose description quotes a held-out one is dropped (a plugin's description often
  opens with its host's, from another source), by the rule that keeps such descriptions out of
  pretraining (``corpus.HeldOutPassages``). Not the other way round: some train descriptions are
  pure boilerplate (the Haskell team's paragraph) that hundreds of held-out ones quote.

Stored as ``array_record`` and read with ``tfds.data_source`` -- no TensorFlow needed:

    from finetune_jax.datasets import debian_packages
    splits = debian_packages.load_splits()      # {"train": [{"id", "text", "label"}, ...], ...}
    debian_packages.label_names()               # ("admin", "devel", "doc", ...)

Class counts on bookworm (main, amd64):

    python -c "from finetune_jax.datasets import debian_packages; debian_packages.print_statistics()"
"""

from __future__ import annotations

import collections
import os
import time

import tensorflow_datasets as tfds

from modernbert_jax.data import corpus, debian, splits, tfds_builder
from setfit_jax.datasets.debian_sections import unambiguous_texts

NAME = "debian_packages"
SPLITS = tuple(splits.DEBIAN_PACKAGES.fractions)
MIN_WORDS = 3
MIN_EXAMPLES = 300  # ~30 test examples per class at a 10% test share: enough for a per-class F1


def package_text(pkg: debian.DebianPackage) -> str:
    """The example text of one package: synopsis, then the long description (when there is one)."""
    return f"{pkg.summary}\n{pkg.description}" if pkg.description else pkg.summary


def build_examples(packages) -> tuple[tuple[str, ...], dict[str, list[dict]]]:
    """(class names, ``{"train", "validation", "test"}`` lists of ``{"text", "label", "package"}``)
    from package records; each split is sorted by package name."""
    packages = list(packages)
    candidates = [
        {"text": package_text(pkg), "section": splits.debian_section(pkg.section), "package": pkg.name}
        for pkg in packages if pkg.section and len(package_text(pkg).split()) >= MIN_WORDS
    ]
    rows = unambiguous_texts(candidates)
    counts = collections.Counter(row["section"] for row in rows)
    labels = tuple(sorted(section for section, n in counts.items() if n >= MIN_EXAMPLES))
    label_of = {section: i for i, section in enumerate(labels)}
    group = splits.debian_package_groups(packages)
    split_of = {pkg.name: splits.DEBIAN_PACKAGES(group[pkg.name]) for pkg in packages}
    description = {pkg.name: pkg.description for pkg in packages}
    held_out = corpus.HeldOutPassages(pkg.description for pkg in packages if split_of[pkg.name] != splits.TRAIN)
    examples: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for row in sorted(rows, key=lambda row: row["package"]):
        split = split_of[row["package"]]
        if row["section"] not in label_of or (split == splits.TRAIN and held_out.quoted_in(description[row["package"]])):
            continue
        examples[split].append({"text": row["text"], "label": label_of[row["section"]], "package": row["package"]})
    return labels, examples


class DebianPackages(tfds.core.GeneratorBasedBuilder):
    """Debian package synopses and long descriptions labelled by archive section."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": f"Every section with >= {MIN_EXAMPLES} deduplicated texts; synopsis + long description; "
        "80/10/10 by package group (source package, shared description); train texts quoting a held-out "
        "description dropped; the package lists' hashes in the metadata.",
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            metadata=tfds.core.MetadataDict(),  # "sources", filled while building
            features=tfds.features.FeaturesDict({
                "text": tfds.features.Text(),
                # The classes depend on the records, so their names are set while building (and
                # read back from the prepared dataset).
                "label": tfds.features.ClassLabel(),
                "package": tfds.features.Text(),
            }),
            supervised_keys=("text", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the data comes from apt, not a URL
        self.info.metadata["sources"] = [debian.package_lists_record()]
        labels, examples = build_examples(debian.debian_packages())
        self.info.features["label"].names = list(labels)
        return {name: self._generate_examples(rows) for name, rows in examples.items()}

    def _generate_examples(self, rows):
        for row in rows:
            yield row["package"], row


def prepare(data_dir: str | os.PathLike | None = None) -> tfds.core.DatasetBuilder:
    """Build the dataset under ``data_dir`` once (array_record) and return its builder."""
    return tfds_builder.prepare_tfds(NAME, data_dir)


def label_names(data_dir: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The class names in label order."""
    return tuple(prepare(data_dir).info.features["label"].names)


def load_splits(data_dir: str | os.PathLike | None = None) -> dict[str, list[dict]]:
    """Every split as ``{"id": package name, "text", "label": int}`` examples."""
    builder = prepare(data_dir)
    loaded = {}
    for split in SPLITS:
        source = builder.as_data_source(split=split)
        loaded[split] = [{"id": row["package"].decode("utf-8"), "text": row["text"].decode("utf-8"),
                          "label": int(row["label"])} for row in (source[i] for i in range(len(source)))]
    return loaded


def print_statistics() -> None:
    """Print the statistics of the real dataset (examples and class counts per split)."""
    start = time.perf_counter()
    loaded, names = load_splits(), label_names()
    for split, examples in loaded.items():
        counts = collections.Counter(names[ex["label"]] for ex in examples)
        print(f"{split}: {len(examples)} examples, {len(counts)} classes")
        print("  " + ", ".join(f"{name} {counts[name]}" for name in names))
    print(f"{time.perf_counter() - start:.1f}s")
