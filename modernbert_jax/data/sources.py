"""Random-access document sources for the pretraining pipeline.

A source is anything with ``len(source)`` and ``source[i] -> str``; random access is what lets
the pipeline shuffle by permutation and resume from a small JSON state. Adapters:

* ``InMemorySource(texts)`` — a list of strings (tests, tiny runs);
* ``TfdsSource(name, split, text_key="text", data_dir=None)`` — any TFDS dataset, prepared as
  array_record (the embedded corpus is ``modernbert_corpus/demo``, ``/full`` or ``/n<N>``) and
  read through its data source (no TensorFlow);
* ``TextFileSource(paths, text_key="text")`` — the user's own files: each ``.txt`` file is one
  document, each line of a ``.jsonl`` file is one document (its ``text_key`` field);
* ``SubsetSource(source, indices)`` — a view on some documents of another source.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol, Sequence


class DocumentSource(Protocol):
    """Random access to document texts."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> str: ...


class InMemorySource:
    """Documents held in a Python list."""

    def __init__(self, texts: Sequence[str]):
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"document {i} is {type(t).__name__}, expected str")
        self._texts = list(texts)

    def __len__(self) -> int:
        return len(self._texts)

    def __getitem__(self, index: int) -> str:
        return self._texts[index]


class TfdsSource:
    """A TFDS split read through array_record data sources (random access, no TensorFlow).

    The dataset is prepared first if needed (``prepare_tfds``); ``data_dir`` defaults to
    ``$MODERNBERT_JAX_CACHE/tensorflow_datasets``.
    """

    def __init__(self, name: str, split: str, *, text_key: str = "text", data_dir: str | None = None):
        from modernbert_jax.data.tfds_builder import prepare_tfds  # only data code may depend on TFDS

        self._source = prepare_tfds(name, data_dir).as_data_source(split=split)
        self._text_key = text_key
        self.name, self.split = name, split

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> str:
        example = self._source[index]
        if self._text_key not in example:
            raise KeyError(f"{self.name}[{self.split}] has no field {self._text_key!r}; fields: {sorted(example)}")
        text = example[self._text_key]
        return text.decode("utf-8") if isinstance(text, bytes) else str(text)


class TextFileSource:
    """The user's files: ``.txt`` = one document per file, ``.jsonl`` = one document per line.

    JSONL files are indexed by byte offset so large files are not held in memory.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], *, text_key: str = "text"):
        self._text_key = text_key
        self._entries: list[tuple[Path, int | None]] = []
        for raw in paths:
            path = Path(raw)
            if not path.is_file():
                raise FileNotFoundError(f"document file {path} does not exist")
            if path.suffix == ".jsonl":
                offset = 0
                with path.open("rb") as f:
                    for line in f:
                        if line.strip():
                            self._entries.append((path, offset))
                        offset += len(line)
            else:
                self._entries.append((path, None))

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> str:
        path, offset = self._entries[index]
        if offset is None:
            return path.read_text(encoding="utf-8")
        with path.open("rb") as f:
            f.seek(offset)
            line = f.readline()
        record = json.loads(line)
        if self._text_key not in record:
            raise KeyError(f"{path} at byte {offset}: record has no field {self._text_key!r}")
        return record[self._text_key]


class SubsetSource:
    """The documents of ``source`` at ``indices`` (e.g. one split of the user's files)."""

    def __init__(self, source: DocumentSource, indices: Sequence[int]):
        self._source, self._indices = source, list(indices)

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index: int) -> str:
        return self._source[self._indices[index]]
