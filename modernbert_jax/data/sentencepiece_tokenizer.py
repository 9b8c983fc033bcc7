"""A sentencepiece BPE tokenizer for pretraining, trained on our own corpus, that round-trips code.

The paper's vocabulary has 50,368 entries (a multiple of 64, so the embedding matrix tiles well
on accelerators); smaller variants use e.g. 4,096 or 8,192. BERT's special tokens come first:

    0 [PAD]   1 [UNK]   2 [CLS]   3 [SEP]   4 [MASK]   5 "\\n"   6 "\\t"   then 256 byte pieces

``[CLS]``/``[SEP]``/``[MASK]`` are *control* symbols: they are never produced from text (a
literal "[MASK]" in a source file is ordinary text) and decode to nothing. Newline and tab are
user-defined pieces because the trainer reads one line at a time and would otherwise never see
them. With the identity normalizer, no dummy prefix, no whitespace collapsing, whitespace-only
pieces (indentation) and byte fallback for unseen characters, ``decode(encode(s)) == s`` for
any string — in particular every ``.py`` file of the corpus. The one character sentencepiece
cannot carry as itself is its own space marker U+2581 ("▁", which tokenizer code does contain):
``encode`` writes it as its three UTF-8 byte pieces, which decode back to "▁", not to a space.

Training is deterministic: sentences are fed in the given order, none are sampled.

``save_hf(directory)`` writes the same tokenizer as a Hugging Face ``tokenizer.json`` (BPE with
merges ranked by piece score, byte fallback, ``[CLS] $A [SEP]`` template) plus
``tokenizer_config.json``, next to a checkpoint written by ``modernbert_jax.hf.save_pretrained``.
It gives the same ids as sentencepiece except in two places where Hugging Face conventions win:
a literal "[MASK]"/"[CLS]"/... in text becomes the special token (so fill-mask works), and a
literal U+2581 is read as a space.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Iterable, Iterator

import sentencepiece as spm

from modernbert_jax import safe_io

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
VOCAB_MULTIPLE = 64
SPACE_MARKER = "\u2581"
USER_DEFINED = ("\n", "\t")


class SentencePieceTokenizer:
    """Encode/decode with a trained model; exposes the ids the packing and masking code needs."""

    def __init__(self, model_proto: bytes):
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self._proto = model_proto
        self.vocab_size: int = self._sp.get_piece_size()
        ids = {}
        for piece in (PAD, UNK, CLS, SEP, MASK):
            i = self._sp.piece_to_id(piece)
            if self._sp.id_to_piece(i) != piece:
                raise ValueError(f"sentencepiece model has no {piece} piece; train it with train_sentencepiece()")
            ids[piece] = i
        self.pad_id, self.unk_id = ids[PAD], ids[UNK]
        self.cls_id, self.sep_id, self.mask_id = ids[CLS], ids[SEP], ids[MASK]
        self.special_ids: tuple[int, ...] = (self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id)
        self._marker_bytes = [self._sp.piece_to_id(f"<0x{b:02X}>") for b in SPACE_MARKER.encode("utf-8")]

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SentencePieceTokenizer":
        """Load a ``.model`` file written by ``save`` or ``train_sentencepiece``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"sentencepiece model {path} does not exist")
        return cls(path.read_bytes())

    def save(self, path: str | os.PathLike) -> Path:
        return safe_io.write_file(path, self._proto)

    @property
    def model_proto(self) -> bytes:
        return self._proto

    def encode(self, text: str) -> list[int]:
        if SPACE_MARKER not in text:
            return self._sp.encode(text)
        ids: list[int] = []
        for i, part in enumerate(text.split(SPACE_MARKER)):
            if i:
                ids.extend(self._marker_bytes)
            ids.extend(self._sp.encode(part))
        return ids

    def encode_batch(self, texts: list[str], num_threads: int = -1) -> list[list[int]]:
        """``encode`` of each text, run on ``num_threads`` native threads (-1: all cores)."""
        out: list[list[int]] = self._sp.encode([t.replace(SPACE_MARKER, "") for t in texts], num_threads=num_threads)
        for i, text in enumerate(texts):
            if SPACE_MARKER in text:
                out[i] = self.encode(text)
        return out

    def decode(self, ids: Iterable[int]) -> str:
        return self._sp.decode([int(i) for i in ids])

    def id_to_piece(self, i: int) -> str:
        return self._sp.id_to_piece(int(i))

    def to_hf_tokenizer(self):
        """The equivalent ``tokenizers.Tokenizer`` (see the module docstring for the two differences)."""
        from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

        sp = self._sp
        pieces = [sp.id_to_piece(i) for i in range(self.vocab_size)]
        vocab = {piece: i for i, piece in enumerate(pieces)}
        mergeable = [i for i, piece in enumerate(pieces)
                     if len(piece) > 1 and piece not in USER_DEFINED
                     and not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i) or sp.is_unused(i))]
        # sentencepiece BPE merges the adjacent pair whose concatenation scores highest; pieces are
        # stored best score first, so ranking every split of piece i by i reproduces it.
        merges = sorted(
            (i, vocab[piece[:k]], vocab[piece[k:]])
            for i in mergeable for piece in [pieces[i]] for k in range(1, len(piece))
            if piece[:k] in vocab and piece[k:] in vocab
        )
        tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[(pieces[a], pieces[b]) for _, a, b in merges],
                                         unk_token=UNK, byte_fallback=True))
        tokenizer.normalizer = normalizers.Replace(" ", SPACE_MARKER)
        tokenizer.decoder = decoders.Sequence([decoders.Replace(SPACE_MARKER, " "), decoders.ByteFallback(), decoders.Fuse()])
        tokenizer.add_tokens([AddedToken(piece, normalized=False, special=False) for piece in USER_DEFINED])
        tokenizer.add_special_tokens([AddedToken(pieces[i], normalized=False, special=True) for i in self.special_ids])
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{CLS} $A {SEP}", pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
            special_tokens=[(CLS, self.cls_id), (SEP, self.sep_id)],
        )
        return tokenizer

    def save_hf(self, directory: str | os.PathLike) -> Path:
        """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``directory``."""
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "cls_token": CLS, "sep_token": SEP,
                  "mask_token": MASK, "pad_token": PAD, "unk_token": UNK}
        return safe_io.write_files(directory, {"tokenizer.json": self.to_hf_tokenizer().to_str(pretty=True),
                                               "tokenizer_config.json": json.dumps(config, indent=2) + "\n"},
                                   overwrite=True)


def _lines(texts: Iterable[str], max_line_bytes: int) -> Iterator[str]:
    """Training sentences: the non-blank lines of each document (the trainer is line-based)."""
    for text in texts:
        for line in text.split("\n"):
            if line.strip() and len(line.encode("utf-8")) <= max_line_bytes:
                yield line


def train_sentencepiece(
    texts: Iterable[str],
    vocab_size: int,
    *,
    output_path: str | os.PathLike | None = None,
    character_coverage: float = 0.9999,
    max_line_bytes: int = 4096,
    num_threads: int = 1,
) -> SentencePieceTokenizer:
    """Train a BPE model on ``texts`` (documents); optionally write it to ``output_path`` (a ``.model`` file).

    ``vocab_size`` must be a multiple of 64. Rare characters beyond ``character_coverage`` are
    left to the byte fallback rather than given their own pieces.
    """
    if vocab_size % VOCAB_MULTIPLE or vocab_size < 512:
        raise ValueError(f"vocab_size={vocab_size} must be a multiple of {VOCAB_MULTIPLE} and at least 512")
    model = io.BytesIO()
    spm.SentencePieceTrainer.Train(
        sentence_iterator=_lines(texts, max_line_bytes),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=False,
        split_by_whitespace=True,
        allow_whitespace_only_pieces=True,
        max_sentence_length=max_line_bytes,
        character_coverage=character_coverage,
        pad_id=0, pad_piece=PAD,
        unk_id=1, unk_piece=UNK,
        bos_id=-1, eos_id=-1,
        control_symbols=[CLS, SEP, MASK],
        user_defined_symbols=list(USER_DEFINED),
        input_sentence_size=0,  # use every line, in order: no sampling, so training is deterministic
        num_threads=num_threads,
        minloglevel=2,
    )
    tokenizer = SentencePieceTokenizer(model.getvalue())
    if output_path is not None:
        tokenizer.save(output_path)
    return tokenizer
