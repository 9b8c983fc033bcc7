"""Labelled examples -> token ids -> fixed-shape packed batches with labels per slot or per token.

Every example is tokenised once by the checkpoint's own tokenizer (``tokenizers``), truncated to
``max_length`` tokens with the special tokens its post-processor adds ([CLS]/[SEP] for BERT and
ModernBERT). Examples are then packed several to a row (``modernbert_jax.data.packing.pack``:
best-fit decreasing, example ``i`` of a batch in slot ``i``), so no compute goes to padding.
Sequence labels travel with their slot; token labels are laid out at the tokens of their
example (``slot_first`` says where it starts), as transformers' token-classification recipe
labels them: the first sub-token of each word carries the word's tag, every other token
(later sub-tokens, [CLS], [SEP], padding) ``IGNORE_INDEX``.

A batch's row count is the rows its examples need rounded up to a power of two (and to a
multiple of the mesh's batch axes), its slot count the batch size: a handful of compiled shapes
for a whole run rather than one per batch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
import tokenizers

from modernbert_jax.data import packing

IGNORE_INDEX = -100  # transformers' label of tokens that take no loss


def _text(example: dict) -> str:
    text = example.get("text")
    if not isinstance(text, str):
        raise TypeError(f"example {example.get('id')!r}: 'text' is {type(text).__name__}, expected str")
    if not text.strip():
        raise ValueError(f"example {example.get('id')!r}: 'text' is empty")
    return text


def encode_texts(examples: Sequence[dict], tokenizer: tokenizers.Tokenizer, max_length: int) -> list[list[int]]:
    """Token ids of each example's ``text``, special tokens included, at most ``max_length``."""
    texts = [_text(ex) for ex in examples]
    tokenizer.enable_truncation(max_length)
    try:
        return [e.ids for e in tokenizer.encode_batch(texts)]
    finally:
        tokenizer.no_truncation()  # the caller's tokenizer is left as hf.load_tokenizer made it


def tag_ids(examples: Sequence[dict], tag_names: Sequence[str]) -> list[list[int]]:
    """Each example's ``tags`` as ids into ``tag_names``; a tag outside them, or tags not one per
    word, is a ValueError naming the example."""
    index = {t: i for i, t in enumerate(tag_names)}
    out = []
    for ex in examples:
        words, tags = ex.get("words"), ex.get("tags")
        if not isinstance(words, list) or not words:
            raise ValueError(f"example {ex.get('id')!r}: 'words' must be a non-empty list of strings")
        if not isinstance(tags, list) or len(tags) != len(words):
            raise ValueError(f"example {ex.get('id')!r}: {len(tags) if isinstance(tags, list) else tags!r} tags for "
                             f"{len(words)} words; expected one tag per word")
        unknown = [t for t in tags if t not in index]
        if unknown:
            raise ValueError(f"example {ex.get('id')!r}: tag {unknown[0]!r} is not one of the task's tags {tuple(tag_names)}")
        out.append([index[t] for t in tags])
    return out


def encode_words(examples: Sequence[dict], tokenizer: tokenizers.Tokenizer, max_length: int,
                 tag_names: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of each example's pre-tokenised ``words`` and their token labels: the tag id on
    each word's first sub-token, ``IGNORE_INDEX`` elsewhere (truncated words carry no label)."""
    tags = tag_ids(examples, tag_names)
    for ex in examples:
        if not all(isinstance(w, str) and w for w in ex["words"]):
            raise ValueError(f"example {ex.get('id')!r}: every word must be a non-empty string")
    tokenizer.enable_truncation(max_length)
    try:
        encodings = tokenizer.encode_batch([ex["words"] for ex in examples], is_pretokenized=True)
    finally:
        tokenizer.no_truncation()
    ids, labels = [], []
    for enc, word_tags in zip(encodings, tags):
        token_labels, previous = [], None
        for word in enc.word_ids:
            first = word is not None and word != previous
            token_labels.append(word_tags[word] if first else IGNORE_INDEX)
            previous = word
        ids.append(enc.ids)
        labels.append(token_labels)
    return ids, labels


def sequence_targets(examples: Sequence[dict], kind: str, num_labels: int) -> np.ndarray:
    """The examples' labels as an array: class ids ``[N]`` (classification), 0/1 indicators
    ``[N, num_labels]`` (multi-label) or values ``[N]`` (regression); a label outside
    ``[0, num_labels)`` or of the wrong type is a ValueError naming the example."""
    if kind == "multi_label":
        out = np.zeros((len(examples), num_labels), np.float32)
        for n, ex in enumerate(examples):
            labels = ex.get("labels")
            if not isinstance(labels, list):
                raise ValueError(f"example {ex.get('id')!r}: 'labels' is {labels!r}, expected a list of class ids")
            for label in labels:
                _check_class(ex, label, num_labels)
                out[n, label] = 1.0
        return out
    if kind == "regression":
        values = [ex.get("label") for ex in examples]
        for ex, v in zip(examples, values):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"example {ex.get('id')!r}: label {v!r} is not a finite number")
        return np.asarray(values, np.float32)
    for ex in examples:
        _check_class(ex, ex.get("label"), num_labels)
    return np.asarray([ex["label"] for ex in examples], np.int32)


def _check_class(example: dict, label, num_labels: int) -> None:
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < num_labels:
        raise ValueError(f"example {example.get('id')!r}: label {label!r} is outside the task's classes "
                         f"[0, {num_labels})")


def epoch_groups(count: int, batch_size: int, *, seed: int | None, epoch: int = 0) -> list[np.ndarray]:
    """Example indices of each batch: a permutation drawn from ``(seed, epoch)`` (``seed=None``: in
    order, for evaluation) cut into ``batch_size`` groups, the last one possibly smaller (as
    transformers' ``Trainer`` keeps it)."""
    order = np.arange(count) if seed is None else np.random.default_rng([seed, epoch]).permutation(count)
    return [order[i: i + batch_size] for i in range(0, count, batch_size)]


def batch_rows(lengths: Sequence[int], row_len: int, row_multiple: int = 1) -> int:
    """Rows for a batch of sequences of ``lengths``: what packing needs, rounded up to a power of
    two and to a multiple of ``row_multiple`` (the devices the rows are split over)."""
    needed = packing.rows_needed(lengths, row_len)
    rows = 1 << (needed - 1).bit_length()
    return -(-rows // row_multiple) * row_multiple


def pack_batch(ids: Sequence[Sequence[int]], *, row_len: int, num_slots: int, pad_id: int, row_multiple: int = 1,
               rows: int | None = None, token_labels: Sequence[Sequence[int]] | None = None) -> dict[str, np.ndarray]:
    """Pack ``ids`` (sequence ``i`` into slot ``i``) into ``[rows, row_len]`` arrays with the slot
    bookkeeping (``token_slot``, ``slot_first``, ``slot_valid``) and, given ``token_labels`` (one per
    token of each sequence), ``token_labels [rows, row_len]`` (``IGNORE_INDEX`` where none).
    ``rows`` defaults to ``batch_rows`` of these sequences."""
    rows = rows or batch_rows([len(x) for x in ids], row_len, row_multiple)
    batch = packing.pack(ids, rows, row_len, num_slots, pad_id)
    arrays = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
    if token_labels is not None:
        flat = np.full(rows * row_len, IGNORE_INDEX, np.int32)
        for i, labels in enumerate(token_labels):
            if len(labels) != len(ids[i]):
                raise ValueError(f"sequence {i}: {len(labels)} token labels for {len(ids[i])} tokens")
            start = int(batch.slot_first[i])
            flat[start: start + len(labels)] = labels
        arrays["token_labels"] = flat.reshape(rows, row_len)
    return arrays
