"""The sentencepiece BPE tokenizer: exact round-trip on real standard-library code, BERT specials, determinism."""

import sysconfig
from pathlib import Path

import pytest

from modernbert_jax.data.sentencepiece_tokenizer import SentencePieceTokenizer, train_sentencepiece

STDLIB = Path(sysconfig.get_paths()["stdlib"])
STDLIB_FILES = sorted(STDLIB.glob("*.py"))


def _texts(paths):
    return [p.read_text(encoding="utf-8") for p in paths]


@pytest.fixture(scope="module")
def tokenizer():
    # Trained on a tenth of the top-level modules; round-trip is then checked on all of them.
    return train_sentencepiece(_texts(STDLIB_FILES[::10]), 2048)


def test_round_trip_every_top_level_stdlib_module(tokenizer):
    assert len(STDLIB_FILES) > 100
    for path in STDLIB_FILES:
        source = path.read_text(encoding="utf-8")
        ids = tokenizer.encode(source)
        assert tokenizer.decode(ids) == source, f"round trip changed {path}"
        assert all(0 <= i < tokenizer.vocab_size for i in ids)


def test_round_trip_of_characters_sentencepiece_treats_specially(tokenizer):
    # U+2581 is sentencepiece's own space marker; NUL/CR/BOM/ideographic space/emoji are rare.
    texts = ["x = '\u2581'  # marker\n", "a\r\nb\x00c\ufeff\u3000d 😀\t\n", "   \n\n\t\t  ", ""]
    for text in texts:
        assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.encode_batch(texts) == [tokenizer.encode(t) for t in texts]


def test_bert_special_tokens_are_control_symbols(tokenizer):
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id) == (0, 1, 2, 3, 4)
    assert [tokenizer.id_to_piece(i) for i in tokenizer.special_ids] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # Literal "[MASK]" in text is ordinary text, and control ids decode to nothing.
    assert tokenizer.mask_id not in tokenizer.encode("x[MASK]y [CLS]")
    hello = tokenizer.encode("hello")
    assert tokenizer.decode([tokenizer.cls_id, *hello, tokenizer.sep_id, tokenizer.pad_id]) == "hello"


def test_training_is_deterministic_and_vocab_is_a_multiple_of_64(tokenizer, tmp_path):
    again = train_sentencepiece(_texts(STDLIB_FILES[::10]), 2048, output_path=tmp_path / "t.model")
    assert again.model_proto == tokenizer.model_proto
    assert again.vocab_size == 2048
    loaded = SentencePieceTokenizer.load(tmp_path / "t.model")
    assert loaded.encode("def f(x):\n    return x\n") == tokenizer.encode("def f(x):\n    return x\n")
    with pytest.raises(ValueError, match="vocab_size=2000"):
        train_sentencepiece(["abc"], 2000)


def test_hugging_face_export_gives_the_same_ids(tokenizer, tmp_path):
    from tokenizers import Tokenizer

    tokenizer.save_hf(tmp_path)
    hf = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    for path in STDLIB_FILES[1::12]:
        source = path.read_text(encoding="utf-8")
        assert hf.encode(source, add_special_tokens=False).ids == tokenizer.encode(source), path
        assert hf.decode(tokenizer.encode(source)) == source
    ids = hf.encode("def f(x):\n\treturn x").ids
    assert ids[0] == tokenizer.cls_id and ids[-1] == tokenizer.sep_id
    assert hf.token_to_id("[MASK]") == tokenizer.mask_id and hf.token_to_id("[PAD]") == tokenizer.pad_id
