"""Datasets in, ``(texts, labels)`` out: lists of dicts, dicts of columns, pandas frames, TFDS sources.

Also the few-shot protocol's sampler (``sample_per_class``) and loaders for the user's own CSV
or JSONL files. Validation happens here, at the API boundary, with errors that name the row:

* a text that is not a string, or is empty / whitespace-only, is rejected in training data
  (it carries no signal and usually means a broken column); at prediction time an empty string
  is embedded like sentence-transformers does (``[CLS] [SEP]`` only);
* a missing label (``None``/NaN) is rejected;
* fewer than two classes is rejected (no negative pairs, nothing to classify);
* a class with a single example is allowed: its only positive pair is the self-pair, which is
  what the reference does too; ``class_counts`` lets callers warn about it.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from modernbert_jax.config import check_number


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.ndim else _decode(value.item())
    return value


def _columns(dataset: Any, text_column: str, label_column: str | None) -> tuple[list, list | None]:
    """Pull the two columns out of any supported container."""
    try:
        import pandas as pd
    except ImportError:  # pandas is optional
        pd = None
    if pd is not None and isinstance(dataset, pd.DataFrame):
        missing = [c for c in (text_column, label_column) if c is not None and c not in dataset.columns]
        if missing:
            raise ValueError(f"DataFrame has no column(s) {missing}; columns are {list(dataset.columns)}")
        labels = dataset[label_column].tolist() if label_column else None
        return dataset[text_column].tolist(), labels
    if isinstance(dataset, Mapping):
        missing = [c for c in (text_column, label_column) if c is not None and c not in dataset]
        if missing:
            raise ValueError(f"dataset has no column(s) {missing}; keys are {sorted(dataset)}")
        return list(dataset[text_column]), (list(dataset[label_column]) if label_column else None)
    if hasattr(dataset, "column_names"):  # Hugging Face datasets.Dataset
        return list(dataset[text_column]), (list(dataset[label_column]) if label_column else None)
    # Sequence of records: a list of dicts, or a TFDS array_record data source (random access).
    rows = [dataset[i] for i in range(len(dataset))] if hasattr(dataset, "__getitem__") else list(dataset)
    texts, labels = [], []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"dataset[{i}] is {type(row).__name__}; expected a dict with {text_column!r}")
        for c in (text_column, label_column):
            if c is not None and c not in row:
                raise ValueError(f"dataset[{i}] has no {c!r} field; fields are {sorted(row)}")
        texts.append(row[text_column])
        if label_column:
            labels.append(row[label_column])
    return texts, (labels if label_column else None)


def _is_missing(label: Any) -> bool:
    return label is None or (isinstance(label, float) and math.isnan(label))


def to_examples(
    dataset: Any,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    require_text: bool = True,
) -> tuple[list[str], list | None]:
    """``(texts, labels)`` from a dataset; bytes are decoded, numpy scalars become Python values.

    ``label_column=None`` reads texts only (distillation data) and returns ``labels=None``.
    """
    texts, labels = _columns(dataset, text_column, label_column)
    texts = [_decode(t) for t in texts]
    labels = None if labels is None else [_decode(y) for y in labels]
    if len(texts) == 0:
        raise ValueError("the dataset is empty")
    if labels is not None and len(labels) != len(texts):
        raise ValueError(f"the dataset has {len(texts)} {text_column!r} values but {len(labels)} {label_column!r} "
                         "values; every text needs its label")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{text_column}[{i}] is {type(t).__name__}, expected str")
        if require_text and not t.strip():
            raise ValueError(f"{text_column}[{i}] is empty; remove empty texts from the training data")
    for i, y in enumerate(labels or []):
        if _is_missing(y):
            raise ValueError(f"{label_column}[{i}] is missing (None/NaN)")
    return texts, labels


def class_counts(labels: Sequence) -> Counter:
    """Examples per class (single-label)."""
    return Counter(labels)


def check_trainable(labels: Sequence, multilabel: bool = False) -> None:
    """Raise if SetFit cannot be trained on these labels (fewer than two classes)."""
    if multilabel:
        matrix = np.asarray(labels)
        if matrix.ndim != 2:
            raise ValueError(f"multi-label labels must be equal-length 0/1 lists, got shape {matrix.shape}")
        if (matrix.sum(0) > 0).sum() < 2:
            raise ValueError("multi-label training needs at least two labels that occur in the data")
        return
    counts = class_counts(labels)
    if len(counts) < 2:
        raise ValueError(
            f"training data has a single class {next(iter(counts))!r}: SetFit needs at least two classes "
            "(no negative pairs can be formed and there is nothing to classify)"
        )


def sample_per_class(labels: Sequence, num_samples: int, seed: int) -> np.ndarray:
    """Indices of up to ``num_samples`` examples per class: a seeded shuffle, then the first N of each."""
    check_number("num_samples", num_samples, low=1, integer=True)
    check_number("seed", seed, low=0, integer=True)
    order = np.random.default_rng(seed).permutation(len(labels))
    taken: Counter = Counter()
    keep = []
    for i in order:
        if taken[labels[i]] < num_samples:
            taken[labels[i]] += 1
            keep.append(i)
    return np.asarray(keep)


def load_records(path: str | os.PathLike, *, text_column: str = "text", label_column: str = "label") -> list[dict]:
    """Rows of a user's ``.csv`` (header row) or ``.jsonl`` (one object a line) file."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from None
    else:
        raise ValueError(f"{path}: expected a .csv or .jsonl file")
    for i, row in enumerate(rows):
        for c in (text_column, label_column):
            if c not in row:
                raise ValueError(f"{path}: row {i} has no {c!r} field; fields are {sorted(row)}")
    return [{"text": r[text_column], "label": r[label_column]} for r in rows]

