"""Turn words and entity types into fixed-shape numpy batches for the GLiNER model.

The encoder input is ``[CLS] <<ENT>> type1 <<ENT>> type2 ... <<SEP>> word1 word2 ... [SEP]``
(``[CLS]``/``[SEP]`` being whatever the backbone's tokenizer wraps a sequence in: ``<s>``/``</s>``
for RoBERTa, XLM-R and MPNet) tokenised with the words pre-split (each word, and each type name,
is one "word" of the tokenizer). No token_type_ids are passed, as in the reference (all zeros).
Under a SentencePiece tokenizer (DeBERTa-v3, XLM-R) a word's first sub-token may be a lone ``▁``;
it is the word's vector all the same, as in the reference. Word vectors come from the first
sub-token of each text word; type vectors from the ``<<ENT>>`` tokens. A word that tokenises to
nothing (a lone variation selector, soft hyphen or zero-width space) has no sub-token and gets a
zero vector, and every other word keeps its own first sub-token. The reference counts the words
that produced a sub-token instead, so such a word shifts every later word onto the next word's
token; on text without such words both agree. ``model_pieces`` goes further for inference: it
leaves such words out of what the model sees, and cuts a word too long for one window into
pieces of a token each.

Shapes are padded to buckets so ``jax.jit`` compiles a handful of programs, not one
per batch.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import numpy as np
import tokenizers

SPECIAL_TOKENS = ("[FLERT]",)  # the reference adds this first, then <<ENT>> and <<SEP>>


def prompt_tokens(ent_token: str, sep_token: str) -> tuple[str, ...]:
    """The special tokens GLiNER adds to its backbone's tokenizer (``hf.load_tokenizer``), in order."""
    return (*SPECIAL_TOKENS, ent_token, sep_token)


@dataclasses.dataclass
class Encoded:
    """One example: token ids plus where its words and entity types sit among the tokens."""

    input_ids: list[int]
    word_pos: list[int]  # token index of each text word's first sub-token, -1 if none
    type_pos: list[int]  # token index of each <<ENT>>

    @property
    def num_words(self) -> int:
        return len(self.word_pos)


def build_prompt(labels: Sequence[str], ent_token: str, sep_token: str) -> list[str]:
    prompt: list[str] = []
    for label in labels:
        prompt.append(ent_token)
        prompt.append(label)
    prompt.append(sep_token)
    return prompt


def encode_batch(
    tok: tokenizers.Tokenizer,
    words: Sequence[Sequence[str]],
    labels: Sequence[Sequence[str]],
    *,
    ent_token: str = "<<ENT>>",
    sep_token: str = "<<SEP>>",
    embed_ent_token: bool = True,
) -> list[Encoded]:
    """Tokenise each (words, labels) pair; labels must be non-empty strings."""
    prompts = [build_prompt(lab, ent_token, sep_token) for lab in labels]
    encodings = tok.encode_batch([p + list(w) for p, w in zip(prompts, words)], is_pretokenized=True)
    ent_id = tok.token_to_id(ent_token)
    out = []
    for prompt, text_words, enc in zip(prompts, words, encodings):
        skip = len(prompt)
        word_pos = [-1] * len(text_words)
        # By the tokenizer's word id, not by counting words seen: a word without sub-tokens must not
        # shift the ones after it.
        for t, wid in enumerate(enc.word_ids):
            if wid is not None and 0 <= wid - skip < len(text_words) and word_pos[wid - skip] < 0:
                word_pos[wid - skip] = t
        shift = 0 if embed_ent_token else 1
        type_pos = [t + shift for t, i in enumerate(enc.ids) if i == ent_id]
        out.append(Encoded(list(enc.ids), word_pos, type_pos))
    return out


class Piece(NamedTuple):
    """A unit the model scores: characters ``[start, end)`` of word ``word`` (the whole word, or one
    token's characters of a word too long for a window), and how many tokens it takes alone."""

    word: int
    start: int
    end: int
    tokens: int


def model_pieces(tok: tokenizers.Tokenizer, texts: Sequence[Sequence[str]], max_tokens: int) -> list[list[Piece]]:
    """What the model sees of each text's words, in order.

    A word that tokenises to nothing is left out: no span can start or end on it (it has no
    vector to score) and the model reads exactly the text without it, while a span around it
    still covers its characters. A word of more than ``max_tokens`` tokens (a long run of CJK
    text or a URL, one "word" to the whitespace splitter) would fit no window, so it is cut
    where its tokens start into pieces of one token each: the model sees the sub-words it would
    have seen, and an entity inside the word gets its own characters. Every other word is one
    piece, so ordinary text is scored exactly as the reference does.
    """
    encodings = tok.encode_batch([list(words) for words in texts], is_pretokenized=True, add_special_tokens=False)
    out = []
    for words, enc in zip(texts, encodings):
        counts = np.bincount([w for w in enc.word_ids if w is not None], minlength=len(words))
        pieces: list[Piece] = []
        for i, (word, count) in enumerate(zip(words, counts.tolist())):
            if count > max_tokens:
                pieces += _token_pieces(tok, i, word)
            elif count:
                pieces.append(Piece(i, 0, len(word), count))
        out.append(pieces)
    return out


def _token_pieces(tok: tokenizers.Tokenizer, index: int, word: str) -> list[Piece]:
    """Word ``index`` cut at the start of each of its tokens (offsets are relative to the word)."""
    offsets = tok.encode([word], is_pretokenized=True, add_special_tokens=False).offsets
    cuts = sorted({start for start, end in offsets if end > start})
    spans = [(a, b) for a, b in zip(cuts, cuts[1:] + [max(end for _, end in offsets)])]
    # Alone, a piece may tokenise differently ("##aa" becomes "aa", SentencePiece adds "▁"): count again.
    encodings = tok.encode_batch([[word[a:b]] for a, b in spans], is_pretokenized=True, add_special_tokens=False)
    return [Piece(index, a, b, len(e.ids)) for (a, b), e in zip(spans, encodings) if e.ids]


BUCKETS = (8, 16, 32, 48, 64, 96, 128)


def bucket(n: int, minimum: int = 8) -> int:
    """Round ``n`` up to 8, 16, 32, 48, 64, 96, 128, then to a multiple of 64.

    Steps of about 1.5x keep padding (wasted encoder and span-head work) small while
    bounding how many shapes ``jax.jit`` compiles.
    """
    for size in BUCKETS:
        if size >= max(n, minimum):
            return size
    return -(-n // 64) * 64


def collate(
    examples: Sequence[Encoded],
    *,
    pad_id: int = 0,
    batch_size: int | None = None,
    num_types: int | None = None,
    num_words: int | None = None,
    num_tokens: int | None = None,
) -> dict[str, np.ndarray]:
    """Pad encoded examples into arrays; sizes default to buckets of the batch maxima."""
    B = batch_size or len(examples)
    T = num_tokens or bucket(max(len(e.input_ids) for e in examples))
    W = num_words or bucket(max(max(e.num_words for e in examples), 1))
    C = num_types or bucket(max(max(len(e.type_pos) for e in examples), 1), minimum=4)
    input_ids = np.full((B, T), pad_id, np.int32)
    attention_mask = np.zeros((B, T), np.int32)
    word_pos = np.zeros((B, W), np.int32)
    word_valid = np.zeros((B, W), bool)
    type_pos = np.zeros((B, C), np.int32)
    type_mask = np.zeros((B, C), bool)
    text_lengths = np.zeros((B,), np.int32)
    for b, e in enumerate(examples):
        n = len(e.input_ids)
        if n > T or e.num_words > W or len(e.type_pos) > C:
            raise ValueError(f"example {b} ({n} tokens, {e.num_words} words, {len(e.type_pos)} types) "
                             f"does not fit the batch shape T={T}, W={W}, C={C}")
        input_ids[b, :n] = e.input_ids
        attention_mask[b, :n] = 1
        pos = np.asarray(e.word_pos, np.int32)
        word_pos[b, : e.num_words] = np.maximum(pos, 0)
        word_valid[b, : e.num_words] = pos >= 0
        type_pos[b, : len(e.type_pos)] = e.type_pos
        type_mask[b, : len(e.type_pos)] = True
        text_lengths[b] = e.num_words
    # Rows that only pad the batch attend to one token, so no row has an all-masked softmax.
    attention_mask[len(examples):, 0] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "word_pos": word_pos,
        "word_valid": word_valid,
        "type_pos": type_pos,
        "type_mask": type_mask,
        "text_lengths": text_lengths,
    }


def span_labels(
    spans: Sequence[Sequence[tuple[int, int, int]]], num_words: int, max_width: int, num_types: int
) -> np.ndarray:
    """Multi-hot targets ``[B, W, K, C]`` from per-example ``(start, end, type_index)`` word spans.

    Spans wider than ``max_width`` cannot be represented and are dropped, as in the reference.
    """
    labels = np.zeros((len(spans), num_words, max_width, num_types), np.float32)
    for b, example in enumerate(spans):
        for start, end, type_index in example:
            width = end - start
            if 0 <= width < max_width and 0 <= start < num_words and end < num_words:
                labels[b, start, width, type_index] = 1.0
    return labels
