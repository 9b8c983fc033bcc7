"""A released checkpoint's own tokenizer in the pretraining pipeline (continued pretraining).

    tokenizer = HFTokenizer.load("/models/all-MiniLM-L6-v2")   # or .../tokenizer.json
    tokenizer.encode_batch(["def f(x):"])                       # no [CLS]/[SEP]: the packer adds them
    tokenizer.save_hf(workdir / "hf")                           # the checkpoint's tokenizer files, copied

It wraps the ``tokenizers.Tokenizer`` that ``modernbert_jax.hf.load_tokenizer`` reads in the
``Tokenizer`` protocol of ``modernbert_jax.data.pipeline``. The ids of the sequence markers come
from the checkpoint's ``tokenizer_config.json`` (then ``special_tokens_map.json``, as
``transformers`` reads them), else from the two conventions: BERT's ``[CLS] [SEP] [MASK] [PAD]``
and RoBERTa's ``<s> </s> <mask> <pad>``. Every token the tokenizer marks special (``[UNK]``,
unused slots, the markers) is in ``special_ids``, so it is never chosen for masking and never
drawn by the 10% random replacement. Added tokens that are not special (ModernBERT's runs of
spaces, which code indentation is made of) stay ordinary text: masked and predicted like any word.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import tokenizers

from modernbert_jax import hf, safe_io, spm_checkpoint

TOKENIZER_FILE = "tokenizer.json"
# What a checkpoint's tokenizer consists of, for every family `hf.SUPPORTED` holds; `save_hf` copies
# the ones the source directory has, so `transformers.AutoTokenizer` loads the export as it loads the source.
TOKENIZER_FILES = (TOKENIZER_FILE, *spm_checkpoint.SPM_FILES, "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt")
# The marker each role takes in the BERT and the RoBERTa conventions, tried in this order.
_CONVENTIONS = {"cls_token": ("[CLS]", "<s>"), "sep_token": ("[SEP]", "</s>"),
                "mask_token": ("[MASK]", "<mask>"), "pad_token": ("[PAD]", "<pad>")}


def is_hf_tokenizer(path: str | os.PathLike) -> bool:
    """Whether ``data.tokenizer`` names a Hugging Face tokenizer (a ``.json`` file or an existing
    directory) rather than a sentencepiece ``.model`` (which is trained there when missing)."""
    path = Path(path)
    return path.suffix == ".json" or path.is_dir()


def _directory(path: Path) -> Path:
    """The directory holding the tokenizer files: ``path`` (or its parent for a ``tokenizer.json``),
    or the ``hf/`` export of a pretraining workdir."""
    if path.suffix == ".json":
        if path.name != TOKENIZER_FILE or not path.is_file():
            raise FileNotFoundError(f"{path}: a Hugging Face tokenizer file must be an existing {TOKENIZER_FILE}")
        return path.parent
    if (path / TOKENIZER_FILE).is_file() or spm_checkpoint.find_spm_file(path):
        return path
    return hf.resolve_dir(path)


def _marker(role: str, settings: list[tuple[dict, Path]]) -> str:
    """The token string of ``role`` (e.g. "cls_token") named by the first JSON file that names it."""
    for values, _ in settings:
        value = values.get(role)
        if isinstance(value, dict):  # transformers 4 serialises an AddedToken as a dict
            value = value.get("content")
        if isinstance(value, str):
            return value
    return ""


class HFTokenizer:
    """A checkpoint's tokenizer with the ids packing and masking need (``pipeline.Tokenizer``)."""

    def __init__(self, tokenizer: tokenizers.Tokenizer, directory: Path):
        self.directory, self._tok = directory, tokenizer
        self.vocab_size: int = self._tok.get_vocab_size(with_added_tokens=True)
        settings = [(safe_io.read_json(self.directory / name, what="a tokenizer config"), self.directory / name)
                    for name in ("tokenizer_config.json", "special_tokens_map.json") if (self.directory / name).is_file()]
        ids = {}
        for role, conventions in _CONVENTIONS.items():
            named = _marker(role, settings)
            token = named or next((t for t in conventions if tokenizer.token_to_id(t) is not None), None)
            ids[role] = None if token is None else tokenizer.token_to_id(token)
            if ids[role] is None:
                where = f"{named!r}, which {[f.name for _, f in settings]} name" if named else f"any of {conventions}"
                raise ValueError(f"{directory}: the tokenizer has no {role}: no id for {where}")
        self.cls_id, self.sep_id = ids["cls_token"], ids["sep_token"]
        self.mask_id, self.pad_id = ids["mask_token"], ids["pad_token"]
        special = [i for i, token in self._tok.get_added_tokens_decoder().items() if token.special]
        self.special_ids: tuple[int, ...] = tuple(sorted({*special, *ids.values()}))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "HFTokenizer":
        """A checkpoint directory, its ``tokenizer.json``, or a pretraining workdir (its ``hf/`` export)."""
        directory = _directory(Path(path))
        return cls(hf.load_tokenizer(directory), directory)

    @property
    def files(self) -> tuple[Path, ...]:
        """The tokenizer files of the source directory (``TOKENIZER_FILES`` it has), the vocabulary's first."""
        return tuple(self.directory / name for name in TOKENIZER_FILES if (self.directory / name).is_file())

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Ids of each text without the sequence markers (the packer adds ``[CLS]``/``[SEP]``)."""
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def save_hf(self, directory: str | os.PathLike) -> Path:
        """Copy the source's tokenizer files (``files``) into ``directory``, beside an ``hf.save_pretrained`` export."""
        return safe_io.write_files(directory, {f.name: f.read_bytes() for f in self.files}, overwrite=True)
