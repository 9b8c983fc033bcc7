"""``hf.load_tokenizer`` on checkpoints that ship only a sentencepiece model (DeBERTa-v3's
``spm.model``, XLM-RoBERTa's ``sentencepiece.bpe.model``) against ``transformers``' own fast
tokenizer for the same directory: ids, offsets, special tokens and pretokenized ``word_ids``
must be identical (exact equality, no tolerance)."""

import io
import json
import sysconfig
from pathlib import Path

import pytest
import sentencepiece as spm
import transformers

from modernbert_jax import hf

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# Real English prose and code, fixed for a given Python: argparse/textwrap docstrings and source.
CORPUS = ("argparse.py", "textwrap.py", "calendar.py")
TEXTS = [
    "Hello world, this is a test.",
    "  leading spaces and   runs   of spaces  ",
    "Tabs\tand\nnewlines\r\nmixed  \t in",
    "Unicode: café naïve Ærø 東京 😀 ﬁ ① Ａｂｃ",  # NFKC-sensitive characters, CJK, emoji
    "decomposed: cafe\u0301 nai\u0308ve",  # NFC composes these
    "numbers 12345 3.14159 -7 1e10 and 2024-01-31",
    "punctuation!!! (parens) [brackets] {braces} a,b;c:d 'q' \"dq\" ... --",
    "def parse_args(self, args=None, namespace=None):\n    return self._parse(args)",
    "The capital is [MASK] and <mask> too.",
    "x[MASK]y [CLS] [SEP] <s> </s> <pad>",
    "",
    "   ",
]
WORDS = [
    ["Hello", "world", ",", "this", "is", "Parser"],
    ["café", "東京", "😀", "12345", "3.14", "--help"],
    ["  padded ", "", "x", "[MASK]", "<mask>", "argument_parser"],
]


def _train(tmp_path: Path, **spec) -> bytes:
    """A tiny unigram model on stdlib text (deterministic: all lines, in order, one thread)."""
    lines = [line for name in CORPUS for line in (STDLIB / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.Train(sentence_iterator=iter(lines), model_writer=model, model_type="unigram",
                                   vocab_size=800, input_sentence_size=0, num_threads=1, minloglevel=2, **spec)
    return model.getvalue()


@pytest.fixture(scope="module")
def deberta_dir(tmp_path_factory):
    """Shaped like microsoft/deberta-v3-*: [PAD] 0, [CLS] 1, [SEP] 2, [UNK] 3 in spm.model, [MASK] appended."""
    path = tmp_path_factory.mktemp("deberta_v3")
    proto = _train(path, pad_id=0, pad_piece="[PAD]", bos_id=1, bos_piece="[CLS]", eos_id=2, eos_piece="[SEP]",
                   unk_id=3, unk_piece="[UNK]")
    (path / "spm.model").write_bytes(proto)
    size = spm.SentencePieceProcessor(model_proto=proto).get_piece_size()
    (path / "config.json").write_text(json.dumps({"model_type": "deberta-v2"}))
    (path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "vocab_type": "spm"}))
    (path / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]", "sep_token": "[SEP]",
        "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}))
    (path / "added_tokens.json").write_text(json.dumps({"[MASK]": size}))
    return path


@pytest.fixture(scope="module")
def xlmr_dir(tmp_path_factory):
    """Shaped like xlm-roberta-base: <unk> 0, <s> 1, </s> 2 in the spm; fairseq ids <s> 0 <pad> 1 </s> 2 <unk> 3."""
    path = tmp_path_factory.mktemp("xlm_roberta")
    proto = _train(path, unk_id=0, unk_piece="<unk>", bos_id=1, bos_piece="<s>", eos_id=2, eos_piece="</s>", pad_id=-1)
    (path / "sentencepiece.bpe.model").write_bytes(proto)
    (path / "config.json").write_text(json.dumps({"model_type": "xlm-roberta"}))
    (path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}))
    return path


def _assert_same(ours, theirs):
    for text in TEXTS:
        got, want = ours.encode(text), theirs(text, return_offsets_mapping=True)
        assert got.ids == want["input_ids"], text
        assert got.offsets == [tuple(o) for o in want["offset_mapping"]], text
    for words in WORDS:
        got = ours.encode_batch([words], is_pretokenized=True)[0]
        want = theirs(words, is_split_into_words=True)
        assert got.ids == want["input_ids"], words
        assert got.word_ids == want.word_ids(), words
    assert ours.get_vocab_size() == len(theirs)
    for name in ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token", "bos_token", "eos_token"):
        token = getattr(theirs, name)
        assert ours.token_to_id(token) == theirs.convert_tokens_to_ids(token), name
    ids = ours.encode(TEXTS[0]).ids
    assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=True)


def test_deberta_v3_matches_transformers(deberta_dir):
    theirs = transformers.AutoTokenizer.from_pretrained(str(deberta_dir))
    assert type(theirs).__name__ == "DebertaV2Tokenizer"
    ours = hf.load_tokenizer(deberta_dir)
    assert [ours.token_to_id(t) for t in ("[PAD]", "[CLS]", "[SEP]", "[UNK]")] == [0, 1, 2, 3]
    assert ours.token_to_id("[MASK]") == ours.get_vocab_size() - 1  # appended after the pieces
    _assert_same(ours, theirs)


def test_xlm_roberta_matches_transformers(xlmr_dir):
    theirs = transformers.AutoTokenizer.from_pretrained(str(xlmr_dir))
    assert type(theirs).__name__ == "XLMRobertaTokenizer"
    ours = hf.load_tokenizer(xlmr_dir)
    assert [ours.token_to_id(t) for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    # fairseq offset: sentencepiece piece i (i >= 3) is id i + 1.
    sp = spm.SentencePieceProcessor(model_file=str(xlmr_dir / "sentencepiece.bpe.model"))
    assert ours.token_to_id(sp.id_to_piece(10)) == 11
    _assert_same(ours, theirs)


@pytest.mark.parametrize("option", [{"do_lower_case": True}, {"split_by_punct": True}, {"add_prefix_space": False}])
def test_deberta_options_are_honoured(deberta_dir, tmp_path, option):
    for name in ("spm.model", "config.json", "special_tokens_map.json", "added_tokens.json"):
        (tmp_path / name).write_bytes((deberta_dir / name).read_bytes())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"vocab_type": "spm", **option}))
    theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    ours = hf.load_tokenizer(tmp_path)
    _assert_same(ours, theirs)
    # The option matters: without it the ids differ on this text.
    default = hf.load_tokenizer(deberta_dir)
    assert any(ours.encode(t).ids != default.encode(t).ids for t in TEXTS)


def test_added_tokens_files_fix_the_ids_of_tokens_outside_the_vocabulary(deberta_dir, xlmr_dir, tmp_path):
    # Legacy added_tokens.json with a token before [MASK]: both are appended, in id order.
    deberta = tmp_path / "deberta"
    deberta.mkdir()
    for name in ("spm.model", "config.json", "special_tokens_map.json", "tokenizer_config.json"):
        (deberta / name).write_bytes((deberta_dir / name).read_bytes())
    size = hf.load_tokenizer(deberta_dir).get_vocab_size() - 1
    (deberta / "added_tokens.json").write_text(json.dumps({"<extra>": size, "[MASK]": size + 1}))
    # Newer XLM-R dumps: added_tokens_decoder in tokenizer_config.json, <mask> stripping the space before it.
    xlmr = tmp_path / "xlmr"
    xlmr.mkdir()
    for name in ("sentencepiece.bpe.model", "config.json"):
        (xlmr / name).write_bytes((xlmr_dir / name).read_bytes())
    mask_id = hf.load_tokenizer(xlmr_dir).token_to_id("<mask>")
    flags = {"lstrip": False, "rstrip": False, "normalized": False, "single_word": False, "special": True}
    decoder = {str(i): {"content": t, **flags} for i, t in enumerate(("<s>", "<pad>", "</s>", "<unk>"))}
    decoder[str(mask_id)] = {"content": "<mask>", **flags, "lstrip": True}
    (xlmr / "tokenizer_config.json").write_text(json.dumps({"added_tokens_decoder": decoder, "mask_token": "<mask>"}))
    for path in (deberta, xlmr):
        theirs = transformers.AutoTokenizer.from_pretrained(str(path))
        _assert_same(hf.load_tokenizer(path), theirs)
    assert hf.load_tokenizer(deberta).token_to_id("<extra>") == size
    # lstrip: the mask's span takes in the space before it.
    assert hf.load_tokenizer(xlmr).encode("a <mask>", add_special_tokens=False).offsets[-1] == (1, 8)
    assert hf.load_tokenizer(xlmr_dir).encode("a <mask>", add_special_tokens=False).offsets[-1] == (2, 8)


def test_extra_special_tokens_are_added_after_the_vocabulary(deberta_dir):
    tok = hf.load_tokenizer(deberta_dir, special_tokens=("<<ENT>>", "<<SEP>>", "[MASK]"))
    size = hf.load_tokenizer(deberta_dir).get_vocab_size()
    assert [tok.token_to_id(t) for t in ("<<ENT>>", "<<SEP>>")] == [size, size + 1]
    assert tok.encode("a <<ENT>> b", add_special_tokens=False).ids.count(size) == 1


def test_unsupported_option_is_named(deberta_dir, tmp_path):
    (tmp_path / "spm.model").write_bytes((deberta_dir / "spm.model").read_bytes())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"split_special_tokens": True}))
    with pytest.raises(ValueError, match="split_special_tokens"):
        hf.load_tokenizer(tmp_path)


def test_bpe_sentencepiece_model_is_refused(tmp_path):
    model = io.BytesIO()
    lines = (STDLIB / "textwrap.py").read_text(encoding="utf-8").splitlines()
    spm.SentencePieceTrainer.Train(sentence_iterator=iter(lines), model_writer=model, model_type="bpe", vocab_size=300,
                                   num_threads=1, minloglevel=2)
    (tmp_path / "sentencepiece.bpe.model").write_bytes(model.getvalue())
    with pytest.raises(ValueError, match="not unigram"):
        hf.load_tokenizer(tmp_path)


def test_directory_without_a_tokenizer_names_what_it_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        hf.load_tokenizer(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    for name in ("tokenizer.json", "spm.model", "sentencepiece.bpe.model"):
        assert name in message


def test_a_tokenizer_config_written_by_transformers_5_loads(xlmr_dir, tmp_path):
    """transformers 5 saves extra_special_tokens (the special tokens again) and local_files_only."""
    theirs = transformers.AutoTokenizer.from_pretrained(str(xlmr_dir))
    saved = tmp_path / "saved"
    theirs.save_pretrained(saved)
    (saved / "tokenizer.json").unlink()  # keep only what a sentencepiece checkpoint ships
    (saved / "sentencepiece.bpe.model").write_bytes((xlmr_dir / "sentencepiece.bpe.model").read_bytes())
    _assert_same(hf.load_tokenizer(saved), transformers.AutoTokenizer.from_pretrained(str(saved)))
    config = json.loads((saved / "tokenizer_config.json").read_text())
    config["extra_special_tokens"] = ["<new>"]
    (saved / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="extra_special_tokens.*<new>"):
        hf.load_tokenizer(saved)
