"""The fine-tuning tasks: what a task is (``Task``), the registry of the built-in ones (``TASKS``)
and the user's own JSONL files (``task=files``).

Built-in tasks read offline TFDS corpora (``finetune_jax.datasets``), split by document:

* ``debian_sections`` — Debian package descriptions -> their archive Section (classification);
* ``pydocs_ner`` — the Python documentation's typed spans as BIO tags (token classification);
* ``code_search`` — docstring summary line -> the function's code (retrieval).

A loader is imported when its task is used, so the registry costs nothing to import. Example
formats are plain dicts with a stable string ``"id"``: ``{"id", "text", "label": int}``
(classification), ``{"id", "text", "labels": [int]}`` (multi-label), ``{"id", "text", "label":
float}`` (regression), ``{"id", "words": [str], "tags": [str]}`` (token classification),
``{"id", "query", "document", "package"}`` (retrieval).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any, Callable

import ml_collections
import numpy as np

KINDS = ("classification", "multi_label", "regression", "token_classification", "retrieval")
SPLITS = ("train", "validation", "test")
FILES = "files"  # config.task naming the user's own JSONL files (config.data.*_file)


@dataclasses.dataclass(frozen=True)
class Task:
    """One fine-tuning task: its kind, label names, early-stopping metric and data."""

    name: str
    kind: str  # one of KINDS
    label_names: tuple[str, ...]  # classes or BIO tags; () for regression and retrieval
    metric: str  # validation metric for early stopping and the best checkpoint (higher is better)
    load: Callable[[str | None], dict[str, list[dict]]]  # data_dir -> split -> examples
    prepare: Callable[[str | None], Any]  # data_dir -> the TFDS builder (its data_dir is hashed into provenance)
    # Label names that depend on the prepared data (Debian's sections with enough packages):
    # data_dir -> names; `for_config` fills `label_names` from it.
    labels_from: Callable[[str | None], tuple[str, ...]] | None = None


def _loader(module: str, function: str) -> Callable:
    """``finetune_jax.datasets.<module>.<function>``, imported on the first call."""
    def call(data_dir: str | None = None):
        return getattr(importlib.import_module(f"finetune_jax.datasets.{module}"), function)(data_dir)

    return call


def _pydocs_labels() -> tuple[str, ...]:
    return tuple(importlib.import_module("finetune_jax.datasets.pydocs_bio").LABELS)


TASKS: dict[str, Task] = {
    "debian_sections": Task("debian_sections", "classification", (), "accuracy",
                            _loader("debian_packages", "load_splits"), _loader("debian_packages", "prepare"),
                            labels_from=_loader("debian_packages", "label_names")),
    "pydocs_ner": Task("pydocs_ner", "token_classification", (), "f1", _loader("pydocs_bio", "load_splits"),
                       _loader("pydocs_bio", "prepare"), labels_from=lambda _: _pydocs_labels()),
    "code_search": Task("code_search", "retrieval", (), "ndcg@10", _loader("code_search", "load_splits"),
                        _loader("code_search", "prepare")),
}

# The validation metric of a kind when the user's files do not name one.
DEFAULT_METRICS = {"classification": "accuracy", "multi_label": "micro_f1", "regression": "spearman",
                   "token_classification": "f1", "retrieval": "ndcg@10"}


def for_config(config: ml_collections.ConfigDict) -> Task:
    """The task ``config.task`` names, its label names read from the prepared data where they depend on it."""
    if config.task == FILES:
        return task_from_files(config.data)
    if config.task not in TASKS:
        raise ValueError(f"config.task={config.task!r} is not one of {sorted(TASKS) + [FILES]}")
    task = TASKS[config.task]
    if task.labels_from is not None:
        task = dataclasses.replace(task, label_names=tuple(task.labels_from(config.data.data_dir or None)))
    return task


def read_jsonl(path: str | Path) -> list[dict]:
    """The examples of a JSON-lines file (one object per line; blank lines skipped), each given an
    ``id`` of ``<file name>:<line>`` unless it has one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not a JSON object ({err.msg})") from err
        if not isinstance(example, dict):
            raise ValueError(f"{path}:{number}: holds a JSON {type(example).__name__}, expected an object")
        example.setdefault("id", f"{path.name}:{number}")
        examples.append(example)
    if not examples:
        raise ValueError(f"{path}: holds no examples")
    return examples


def task_from_files(data: ml_collections.ConfigDict) -> Task:
    """A task over the user's JSONL files ``data.{train,validation,test}_file`` (the formats of the
    module docstring) of kind ``data.kind``, classes or tags ``data.labels`` (comma-separated,
    in id order), early stopping on ``data.metric`` (the kind's ``DEFAULT_METRICS`` when empty)."""
    if data.kind not in KINDS:
        raise ValueError(f"config.data.kind={data.kind!r} is not one of {KINDS}")
    files = {split: data[f"{split}_file"] for split in SPLITS}
    missing = [f"config.data.{split}_file" for split, path in files.items() if not path]
    if missing:
        raise ValueError(f"task={FILES} needs {', '.join(missing)}")
    labels = tuple(name.strip() for name in data.labels.split(",") if name.strip())
    if data.kind in ("classification", "multi_label", "token_classification") and not labels:
        raise ValueError(f"config.data.labels is empty: a {data.kind} task needs its label names (comma-separated)")
    return Task(FILES, data.kind, labels, data.metric or DEFAULT_METRICS[data.kind],
                lambda _: {split: read_jsonl(path) for split, path in files.items()},
                lambda _: _Files([files[s] for s in SPLITS]))


@dataclasses.dataclass(frozen=True)
class _Files:
    """What ``prepare`` returns for the user's files: their paths, hashed into provenance."""

    paths: list[str]


def data_paths(task: Task, data_dir: str | None) -> list[str]:
    """What the task's data is read from, prepared on the way: the TFDS builder's directory, or the user's files."""
    prepared = task.prepare(data_dir)
    return list(prepared.paths) if isinstance(prepared, _Files) else [str(prepared.data_dir)]


def subsample(examples: list[dict], limit: int) -> list[dict]:
    """``limit`` examples drawn once (seed 0, kept in split order) so every seed, every backbone and both
    sides of a side-by-side see the same ones; ``limit`` 0 or at least the split's size keeps the split."""
    if not limit or limit >= len(examples):
        return list(examples)
    keep = np.sort(np.random.default_rng(0).choice(len(examples), limit, replace=False))
    return [examples[i] for i in keep]
