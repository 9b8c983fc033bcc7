"""A checkpoint's sentencepiece model as the ``tokenizers.Tokenizer`` that ``transformers`` builds from it.

DeBERTa-v2/v3 checkpoints (``microsoft/deberta-v3-*``, ``mdeberta-v3-base``) ship only ``spm.model``
and XLM-RoBERTa checkpoints ``sentencepiece.bpe.model``, with no ``tokenizer.json``. ``transformers``
(5.x) then builds its fast tokenizer itself; ``from_spm_checkpoint`` rebuilds the same one, so ids,
offsets and ``word_ids`` of pretokenized input (what GLiNER uses) agree with
``AutoTokenizer.from_pretrained(directory)``:

* DeBERTa-v2 (``spm.model``): the piece table as is (``[PAD]`` 0, ``[CLS]`` 1, ``[SEP]`` 2, ``[UNK]`` 3
  in v3), Unigram without byte fallback; normalizer ``[Lowercase] -> whitespace runs/newlines/tabs to
  one space -> NFC -> strip right`` (``transformers`` 5 does *not* apply the model's precompiled
  charsmap here); pre-tokenizer ``[Punctuation] -> Metaspace``; ``[CLS] $A [SEP]``. ``[MASK]`` is not a
  piece: it is appended after the pieces (id 128000 for v3), as ``added_tokens.json`` records.
* XLM-RoBERTa (``sentencepiece.bpe.model``): fairseq's table, ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2,
  ``<unk>`` 3, then sentencepiece's pieces from id 3 on shifted by one, then ``<mask>``; normalizer
  the precompiled charsmap; pre-tokenizer ``WhitespaceSplit -> Metaspace``; ``<s> $A </s>``.

Options of ``tokenizer_config.json`` that change tokenization are honoured (``do_lower_case``,
``split_by_punct``, ``add_prefix_space``, the special-token names, ``added_tokens_decoder``), as are the
legacy ``special_tokens_map.json`` and ``added_tokens.json``; any other option that would change the
ids raises ``ValueError`` naming it rather than being silently ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sentencepiece import sentencepiece_model_pb2
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

SPACE_MARKER = "\u2581"
# sentencepiece's ModelProto enums (sentencepiece_model.proto).
_UNIGRAM = 1
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED = 1, 2, 3, 4
# transformers' order of named special tokens (SPECIAL_TOKENS_ATTRIBUTES): tokens missing from the
# vocabulary are appended in this order, so it fixes their ids.
_SPECIAL_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# Family by sentencepiece file name: the tokenizer classes its tokenizer_config.json may name,
# and the default special tokens of that class.
FAMILIES: dict[str, dict[str, Any]] = {
    "spm.model": {
        "family": "deberta-v2",
        "classes": ("DebertaV2Tokenizer", "DebertaV2TokenizerFast"),
        "specials": {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]", "sep_token": "[SEP]",
                     "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"},
    },
    "sentencepiece.bpe.model": {
        "family": "xlm-roberta",
        "classes": ("XLMRobertaTokenizer", "XLMRobertaTokenizerFast"),
        "specials": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                     "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"},
    },
}
SPM_FILES = tuple(FAMILIES)
# tokenizer_config.json keys that only concern truncation, padding, saving or bookkeeping: they
# do not change the ids of a text, so they are accepted and ignored.
_INERT_OPTIONS = frozenset({
    "model_max_length", "padding_side", "truncation_side", "clean_up_tokenization_spaces", "name_or_path",
    "special_tokens_map_file", "tokenizer_file", "vocab_file", "vocab_type", "sp_model_kwargs", "model_input_names",
    "tokenizer_class", "auto_map", "backend", "is_local", "local_files_only",
    "max_length", "stride", "truncation_strategy", "pad_to_multiple_of", "pad_token_type_id", "chat_template",
    "legacy", "use_fast", "keep_accents", "strip_accents", "unk_id",
})
_SPECIAL_LISTS = ("extra_special_tokens", "additional_special_tokens")
_HONOURED_OPTIONS = {
    "deberta-v2": frozenset({"do_lower_case", "split_by_punct", "add_prefix_space", "added_tokens_decoder", *_SPECIAL_NAMES}),
    "xlm-roberta": frozenset({"add_prefix_space", "added_tokens_decoder", *_SPECIAL_NAMES}),
}


def find_spm_file(directory: str | Path) -> Path | None:
    """The sentencepiece model file of a checkpoint directory, or None when it has none."""
    for name in SPM_FILES:
        if (Path(directory) / name).is_file():
            return Path(directory) / name
    return None


def _read_json(file: Path) -> dict:
    if not file.is_file():
        return {}
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{file} is not valid JSON: {err}") from err


def _added_token(value: Any, field: str, file: Path, special: bool) -> AddedToken:
    """A token given as a string or as a serialized ``AddedToken`` dict."""
    if isinstance(value, str):
        return AddedToken(value, special=special)
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        flags = {k: bool(value[k]) for k in ("single_word", "lstrip", "rstrip", "normalized") if k in value}
        return AddedToken(value["content"], special=bool(value.get("special", special)), **flags)
    raise ValueError(f"{file}: {field} must be a string or a dict with a 'content' string, got {value!r}")


def _settings(directory: Path, family: str, defaults: dict[str, str]) -> tuple[dict[str, Any], dict[str, AddedToken], list[AddedToken]]:
    """(options, named special tokens, added tokens in id order) from the checkpoint's JSON files.

    Mirrors ``transformers``' precedence: ``added_tokens_decoder`` in tokenizer_config.json, when
    present, replaces the legacy special_tokens_map.json and added_tokens.json.
    """
    config_file = directory / "tokenizer_config.json"
    config = _read_json(config_file)
    unknown = sorted(set(config) - _INERT_OPTIONS - _HONOURED_OPTIONS[family] - set(_SPECIAL_LISTS))
    if unknown:
        raise ValueError(f"{config_file}: option(s) {unknown} would change tokenization and are not supported "
                         f"for a {family} sentencepiece checkpoint")
    sources = [(config, config_file)]
    if "added_tokens_decoder" not in config:
        sources.append((_read_json(directory / "special_tokens_map.json"), directory / "special_tokens_map.json"))
    named = {key: AddedToken(value, special=True) for key, value in defaults.items()}
    for source, file in reversed(sources):  # tokenizer_config.json wins over special_tokens_map.json
        for key in _SPECIAL_NAMES:
            if key in source:
                # A named token that the added tokens also list is added with their flags (see from_spm_checkpoint).
                named[key] = _added_token(source[key], key, file, special=True)
    # transformers 5 writes the special tokens again as extra_special_tokens: harmless while they
    # name tokens that are special already; a new one would need ids we do not assign.
    special_strings = {str(token) for token in named.values()}
    for key in _SPECIAL_LISTS:
        listed = config.get(key) or []
        for value in (listed.values() if isinstance(listed, dict) else listed):
            token = str(_added_token(value, key, config_file, special=True))
            if token not in special_strings:
                raise ValueError(f"{config_file}: {key} lists {token!r}, which is not one of the special tokens "
                                 f"{sorted(special_strings)}; extra special tokens are not supported")
    added: dict[int, AddedToken] = {}
    if "added_tokens_decoder" in config:
        for index, value in config["added_tokens_decoder"].items():
            added[int(index)] = _added_token(value, f"added_tokens_decoder[{index}]", config_file, special=False)
    else:
        added_file = directory / "added_tokens.json"
        for content, index in _read_json(added_file).items():
            if not isinstance(index, int):
                raise ValueError(f"{added_file}: id of {content!r} must be an integer, got {index!r}")
            is_special = content in special_strings
            added[index] = AddedToken(content, normalized=not is_special, special=is_special)
    options = {k: v for k, v in config.items() if k in ("do_lower_case", "split_by_punct", "add_prefix_space")}
    for key, value in options.items():
        if not isinstance(value, bool):
            raise ValueError(f"{config_file}: {key} must be true or false, got {value!r}")
    return options, named, [added[i] for i in sorted(added)]


def _load_proto(file: Path) -> sentencepiece_model_pb2.ModelProto:
    proto = sentencepiece_model_pb2.ModelProto()
    try:
        proto.ParseFromString(file.read_bytes())
    except Exception as err:  # protobuf raises its own DecodeError type
        raise ValueError(f"{file} is not a sentencepiece model: {err}") from err
    if not proto.pieces:
        raise ValueError(f"{file} is not a sentencepiece model: it has no pieces")
    if proto.trainer_spec.model_type != _UNIGRAM:
        raise ValueError(f"{file} is a sentencepiece model of type {proto.trainer_spec.model_type} (not unigram); "
                         "transformers reads DeBERTa-v2 and XLM-RoBERTa models as unigram only")
    return proto


def _deberta_v2(proto, file: Path, options: dict[str, Any], named: dict[str, AddedToken]) -> Tokenizer:
    vocab = [(p.piece, p.score) for p in proto.pieces]
    unk = str(named["unk_token"])
    if (unk, 0.0) not in vocab:
        raise ValueError(f"{file} has no {unk!r} piece with score 0 (the unk_token)")
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=vocab.index((unk, 0.0)), byte_fallback=False))
    steps = [normalizers.Lowercase()] if options.get("do_lower_case", False) else []
    steps += [normalizers.Replace(Regex(r"\s{2,}|[\n\r\t]"), " "), normalizers.NFC(), normalizers.Strip(left=False, right=True)]
    tokenizer.normalizer = normalizers.Sequence(steps)
    scheme = "always" if options.get("add_prefix_space", True) else "first"
    pre = [pre_tokenizers.Punctuation(behavior="isolated")] if options.get("split_by_punct", False) else []
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([*pre, pre_tokenizers.Metaspace(replacement=SPACE_MARKER, prepend_scheme=scheme)])
    tokenizer.decoder = decoders.Metaspace(replacement=SPACE_MARKER, prepend_scheme=scheme)
    return tokenizer


def _xlm_roberta(proto, file: Path, options: dict[str, Any], named: dict[str, AddedToken]) -> Tokenizer:
    types = [p.type for p in proto.pieces[:3]]
    if len(proto.pieces) < 4 or types != [_UNKNOWN, _CONTROL, _CONTROL]:
        raise ValueError(f"{file}: expected fairseq's layout (<unk>, <s>, </s> as pieces 0..2), got piece types {types}")
    # fairseq's dictionary: four specials, then sentencepiece's pieces from 3 on (ids shifted by one), then the mask.
    head = [(str(named[k]), 0.0) for k in ("bos_token", "pad_token", "eos_token", "unk_token")]
    vocab = head + [(p.piece, p.score) for p in proto.pieces[3:]] + [(str(named["mask_token"]), 0.0)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    if proto.normalizer_spec.precompiled_charsmap:
        tokenizer.normalizer = normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap)
    scheme = "always" if options.get("add_prefix_space", True) else "never"
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement=SPACE_MARKER, prepend_scheme=scheme)])
    tokenizer.decoder = decoders.Metaspace(replacement=SPACE_MARKER, prepend_scheme=scheme)
    return tokenizer


def from_spm_checkpoint(directory: str | Path) -> Tokenizer:
    """The fast tokenizer ``transformers`` builds for a checkpoint that ships only a sentencepiece model.

    ``directory`` must hold ``spm.model`` (DeBERTa-v2/v3) or ``sentencepiece.bpe.model``
    (XLM-RoBERTa), optionally with tokenizer_config.json, special_tokens_map.json, added_tokens.json.
    """
    directory = Path(directory)
    file = find_spm_file(directory)
    if file is None:
        raise FileNotFoundError(f"no sentencepiece model ({' or '.join(SPM_FILES)}) in {directory}")
    spec = FAMILIES[file.name]
    family = spec["family"]
    declared = _read_json(directory / "tokenizer_config.json").get("tokenizer_class")
    if declared is not None and declared not in spec["classes"]:
        raise ValueError(f"{directory / 'tokenizer_config.json'}: tokenizer_class {declared!r} does not match "
                         f"{file.name} (a {family} tokenizer: {' or '.join(spec['classes'])})")
    options, named, added = _settings(directory, family, spec["specials"])
    proto = _load_proto(file)
    build = _deberta_v2 if family == "deberta-v2" else _xlm_roberta
    tokenizer = build(proto, file, options, named)
    # Added tokens in transformers' order: added_tokens_decoder by id, sentencepiece's control
    # (special) and user-defined (plain) pieces, then the named specials; tokens already in the
    # vocabulary keep their id, the others are appended in this order.
    pieces = [AddedToken(p.piece, normalized=False, special=p.type == _CONTROL)
              for p in proto.pieces if p.type in (_CONTROL, _USER_DEFINED)]
    seen: set[str] = set()
    for token in [*added, *pieces, *named.values()]:
        if str(token) not in seen:
            seen.add(str(token))
            tokenizer.add_tokens([token])
    # transformers' templates: DeBERTa frames with cls/sep, XLM-RoBERTa with bos/eos.
    cls, sep = (str(named[k]) for k in (("cls_token", "sep_token") if family == "deberta-v2" else ("bos_token", "eos_token")))
    ids = {t: tokenizer.token_to_id(t) for t in (cls, sep)}
    pair = f"{cls} $A {sep} $B:1 {sep}:1" if family == "deberta-v2" else f"{cls} $A {sep} {sep} $B {sep}"
    tokenizer.post_processor = processors.TemplateProcessing(single=f"{cls} $A {sep}", pair=pair,
                                                             special_tokens=list(ids.items()))
    return tokenizer
