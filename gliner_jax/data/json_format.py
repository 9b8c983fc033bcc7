"""The reference GLiNER training format: ``[{"tokenized_text": [...], "ner": [[s, e, label]]}]``.

``s``/``e`` are inclusive word indices. Files may be one JSON list or JSON lines. ``load``
checks every example and names the first bad one, so Pile-NER style data or a user's own
annotations fail early with a useful message instead of deep inside a batch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from modernbert_jax import safe_io


def validate(example: dict, where: str) -> dict:
    if not isinstance(example, dict) or "tokenized_text" not in example or "ner" not in example:
        raise ValueError(f"{where}: expected an object with 'tokenized_text' and 'ner'")
    words = example["tokenized_text"]
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ValueError(f"{where}: 'tokenized_text' must be a list of strings")
    ner = []
    for j, entity in enumerate(example["ner"] or []):
        if not (isinstance(entity, (list, tuple)) and len(entity) == 3):
            raise ValueError(f"{where}: ner[{j}]={entity!r} is not [start, end, label]")
        start, end, label = entity
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end < len(words)):
            raise ValueError(f"{where}: ner[{j}]={entity!r} is outside the {len(words)} words")
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{where}: ner[{j}] has an empty or non-string label {label!r}")
        ner.append([start, end, label])
    return {**example, "ner": ner}


def load(path: str | Path) -> list[dict]:
    """Read and validate a JSON list or JSON-lines file of reference-format examples."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        raw = json.loads(text)
    else:
        raw = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [validate(ex, f"{path}: example {i}") for i, ex in enumerate(raw)]


def save(path: str | Path, examples: Iterable[dict]) -> Path:
    """Write examples as one JSON list (what the reference's training scripts read)."""
    return safe_io.write_file(path, json.dumps([{"tokenized_text": e["tokenized_text"], "ner": e["ner"]}
                                                for e in examples]))
