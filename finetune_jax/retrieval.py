"""The retrieval kind: a bi-encoder fine-tuned with in-batch negatives, evaluated as IR papers do.

The model is the backbone ``Encoder`` with mean pooling and normalised embeddings, as a
sentence-transformers ``[Transformer, Pooling("mean"), Normalize]`` (``BiEncoder``: the Encoder
plus the loss temperature and the export's length limit; its parameters are the Encoder's).

* Training: ``MultipleNegativesRankingLoss`` (van den Oord et al.'s InfoNCE as sentence-transformers
  defines it): cross-entropy over the cosine similarities of each query with every document of the
  batch, divided by the temperature (0.05 = sentence-transformers' ``scale=20``). Batches hold no
  repeated query or document text (as sentence-transformers' ``NoDuplicatesBatchSampler``): a repeat
  would be a positive scored as a negative.
* Evaluation: every query of a split against the split's whole corpus (its distinct documents),
  exact search (one matrix product, top 100), nDCG@10, MRR@10, recall@10 and recall@100 computed
  by ``pytrec_eval`` (trec_eval) from the run, not by hand.
* ``bm25``: the lexical floor (``bm25s``) on the same corpus with the same metric function.
* Export: a sentence-transformers directory (``setfit_jax.SetFitModel.save_pretrained``'s writer)
  that ``setfit_jax.encoder.SentenceEncoder`` and ``sentence_transformers.SentenceTransformer`` load.

The five kind functions (``build``, ``batches``, ``loss``, ``evaluate``, ``export``) are what
``finetune_jax.loop`` calls for a task of kind ``"retrieval"``; examples are
``{"id", "query", "document", "package"}``.
"""

from __future__ import annotations

import os
import re
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tokenizers

from finetune_jax import tasks
from modernbert_jax import config as config_lib, hf
from modernbert_jax import model as model_lib
from modernbert_jax.data.packing import PackedBatch, rows_needed
from setfit_jax.encoder import SentenceEncoder, embed_packed
from setfit_jax.losses import l2_normalize
from setfit_jax.modeling import SetFitModel

POOLING = "mean"
FIELDS = ("query", "document")
# trec_eval's measures behind our metric names; MRR@10 is trec_eval's recip_rank of the run cut to 10.
_CUTOFF_MEASURES = {"ndcg@10": "ndcg_cut_10", "recall@10": "recall_10", "recall@100": "recall_100"}
TOP_K = 100  # the deepest cutoff of the metrics: the run holds this many documents per query
MRR_DEPTH = 10


class BiEncoder(model_lib.Encoder):
    """The backbone Encoder of a bi-encoder, with the temperature of its contrastive loss and the
    length its exported sentence-transformers model truncates at (``max_seq_length``)."""

    temperature: float = 0.05
    max_seq_length: int = 512


# -- examples ----------------------------------------------------------------------------------
def check_examples(examples: Sequence[dict]) -> None:
    """Raise naming the example id and field unless every example has a distinct string ``id`` and
    non-empty string ``query`` and ``document``."""
    seen = set()
    for i, ex in enumerate(examples):
        if not isinstance(ex, dict) or not isinstance(ex.get("id"), str):
            raise ValueError(f"retrieval example {i} must be a dict with a string 'id', got {ex!r:.200}")
        if ex["id"] in seen:
            raise ValueError(f"retrieval example id {ex['id']!r} occurs twice: ids name queries in the run")
        seen.add(ex["id"])
        for field in FIELDS:
            value = ex.get(field)
            if not isinstance(value, str):
                raise TypeError(f"retrieval example {ex['id']!r}: field {field!r} is "
                                f"{type(value).__name__}, expected str")
            if not value.strip():
                raise ValueError(f"retrieval example {ex['id']!r}: field {field!r} is empty")


def corpus(examples: Sequence[dict]) -> tuple[list[str], list[str], dict[str, dict[str, int]]]:
    """``(doc_ids, doc_texts, qrels)`` of a split: its distinct documents, each with the id of the
    first example holding it (unique and deterministic), and each query's relevant document (its own
    pair's). Identical documents are one corpus entry: as two they would tie and split the credit."""
    check_examples(examples)
    doc_of_text: dict[str, str] = {}
    for ex in examples:
        doc_of_text.setdefault(ex["document"], ex["id"])
    qrels = {ex["id"]: {doc_of_text[ex["document"]]: 1} for ex in examples}
    return list(doc_of_text.values()), list(doc_of_text), qrels


# -- metrics -----------------------------------------------------------------------------------
def _trec_order(scores: dict[str, float]) -> list[tuple[str, float]]:
    """A query's run in trec_eval's ranking order: score descending, ties by document id descending."""
    return sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)


def ir_metrics(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, float]:
    """nDCG@10, MRR@10, recall@10 and recall@100 of ``run`` (query id -> document id -> score),
    averaged over every query of ``qrels`` (a query with nothing retrieved counts 0), by trec_eval
    through ``pytrec_eval``."""
    import pytrec_eval

    if not qrels:
        raise ValueError("no queries to evaluate: the split is empty")
    run = {q: run.get(q, {}) for q in qrels}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10,100"}).evaluate(run)
    top = {q: dict(_trec_order(scores)[:MRR_DEPTH]) for q, scores in run.items()}
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top)
    # pytrec_eval leaves out queries without a retrieved document; they score 0 on every measure.
    out = {name: sum(per_query.get(q, {}).get(measure, 0.0) for q in qrels) / len(qrels)
           for name, measure in _CUTOFF_MEASURES.items()}
    out["mrr@10"] = sum(mrr.get(q, {}).get("recip_rank", 0.0) for q in qrels) / len(qrels)
    return out


def exact_search(query_emb: np.ndarray, doc_emb: np.ndarray, query_ids: Sequence[str], doc_ids: Sequence[str],
                 k: int = TOP_K) -> dict[str, dict[str, float]]:
    """The run of an exact (brute-force) inner-product search: each query's top ``k`` documents."""
    scores = np.asarray(query_emb, np.float32) @ np.asarray(doc_emb, np.float32).T
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return {q: {doc_ids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(query_ids)}


# -- model -------------------------------------------------------------------------------------
def build(config: ml_collections.ConfigDict, task: tasks.Task, rng: jax.Array) -> tuple[BiEncoder, Any]:
    """The backbone of ``config`` as a ``BiEncoder`` and its float32 parameters."""
    from finetune_jax import loop  # the loop imports this module

    del task, rng  # a bi-encoder adds no parameters to the backbone
    encoder, params = hf.from_pretrained(loop.backbone_dir(config), head=None)
    usable = config_lib.max_length(encoder.config)
    config_lib.check_fields(config, {
        "retrieval.temperature": (0.0, None, True, False, False),
        "retrieval.query_max_length": (3, usable, False, False, True),
        "retrieval.document_max_length": (3, usable, False, False, True),
        "train.batch_size": (1, None, False, False, True),
    })
    module = BiEncoder(model_lib.checked_on_host(encoder.config), temperature=float(config.retrieval.temperature),
                       max_seq_length=int(config.retrieval.document_max_length))
    return module, params


def _sentence_encoder(module: BiEncoder, params: Any, tokenizer: tokenizers.Tokenizer,
                      max_length: int) -> SentenceEncoder:
    return SentenceEncoder(module, params, tokenizer, max_length, POOLING, normalize=True)


def _packed(batch: dict[str, np.ndarray], field: str) -> PackedBatch:
    return PackedBatch(**{name: batch[f"{field}_{name}"] for name in PackedBatch.__dataclass_fields__})


def no_duplicate_batches(examples: Sequence[dict], order: Sequence[int], batch_size: int) -> list[list[int]]:
    """``order`` cut into batches in which no text occurs twice, in either field.

    Sentence-transformers' ``NoDuplicatesBatchSampler`` rule: walk the remaining examples in order,
    take each whose query and document are new to the batch, defer the others to later batches in
    the same order. The last batches may be short (duplicates left over).
    """
    remaining, out = list(order), []
    while remaining:
        seen: set[str] = set()
        batch, deferred = [], []
        for pos, i in enumerate(remaining):
            if len(batch) == batch_size:
                deferred.extend(remaining[pos:])
                break
            texts = {examples[i][field] for field in FIELDS}
            if texts.isdisjoint(seen):
                batch.append(i)
                seen |= texts
            else:
                deferred.append(i)
        out.append(batch)
        remaining = deferred
    return out


def batches(examples: Sequence[dict], tokenizer: tokenizers.Tokenizer, module: BiEncoder,
            config: ml_collections.ConfigDict, *, seed: int, epoch: int) -> list[dict[str, np.ndarray]]:
    """One epoch of ``train.batch_size`` pairs per batch, shuffled by ``(seed, epoch)``, without repeated
    texts, as fixed-shape packed queries (``query_*``) and documents (``document_*``): pair ``i`` of a
    batch is query slot ``i`` and document slot ``i``; ``*_slot_valid`` marks the pairs of a short batch."""
    check_examples(examples)
    size = int(config.train.batch_size)
    order = np.random.default_rng([seed, epoch]).permutation(len(examples))
    groups = no_duplicate_batches(examples, order.tolist(), size)
    packed_fields = {}
    for field, max_length in (("query", config.retrieval.query_max_length),
                              ("document", config.retrieval.document_max_length)):
        body = _sentence_encoder(module, None, tokenizer, int(max_length))
        ids = body.tokenize([ex[field] for ex in examples])
        row_len = body.row_len_for(ids)
        # One row count for every epoch (the rows the longest batch of texts needs), unless some
        # batch of this epoch needs more.
        longest = sorted((len(x) for x in ids), reverse=True)[:size]
        rows = max([rows_needed(longest, row_len)] + [rows_needed([len(ids[i]) for i in g], row_len) for g in groups])
        packed_fields[field] = [body.pack([ids[i] for i in g], rows, row_len, size) for g in groups]
    return [{f"{field}_{name}": np.asarray(getattr(packed_fields[field][b], name))
             for field in FIELDS for name in PackedBatch.__dataclass_fields__}
            for b in range(len(groups))]


def multiple_negatives_ranking_loss(queries: jax.Array, documents: jax.Array, valid: jax.Array,
                                    temperature: float) -> tuple[jax.Array, jax.Array]:
    """Sentence-transformers' ``MultipleNegativesRankingLoss`` (cosine similarity, scale = 1/temperature)
    over the ``valid`` pairs of a batch: the mean cross-entropy of each query's similarities to every
    valid document, its own being the target. Returns ``(loss, in-batch top-1 accuracy)``."""
    scores = (l2_normalize(queries) @ l2_normalize(documents).T) / temperature
    scores = jnp.where(valid[None, :], scores, -jnp.inf)  # a short batch's empty slots are no negatives
    target = jnp.arange(scores.shape[0])
    per_query = -jnp.take_along_axis(jax.nn.log_softmax(scores, axis=-1), target[:, None], axis=-1)[:, 0]
    weight = valid.astype(jnp.float32)
    count = jnp.maximum(weight.sum(), 1.0)
    correct = (jnp.argmax(scores, axis=-1) == target).astype(jnp.float32)
    return jnp.sum(jnp.where(valid, per_query, 0.0)) / count, jnp.sum(correct * weight) / count


def loss(module: BiEncoder, params: Any, batch: dict[str, jax.Array], *, rng: jax.Array,
         deterministic: bool) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Mean in-batch-negatives loss of a ``batches`` batch, and its in-batch retrieval accuracy."""
    query_rng, document_rng = jax.random.split(rng)
    queries = embed_packed(module, params, _packed(batch, "query"), POOLING, True,
                           deterministic=deterministic, dropout_rng=query_rng)
    documents = embed_packed(module, params, _packed(batch, "document"), POOLING, True,
                             deterministic=deterministic, dropout_rng=document_rng)
    value, accuracy = multiple_negatives_ranking_loss(queries, documents, batch["query_slot_valid"],
                                                      module.temperature)
    return value, {"in_batch_accuracy": accuracy}


# -- evaluation --------------------------------------------------------------------------------
def encode(module: BiEncoder, params: Any, tokenizer: tokenizers.Tokenizer, texts: Sequence[str], max_length: int,
           texts_per_call: int = 64) -> np.ndarray:
    """Normalised mean-pooled embeddings ``[N, D]`` of ``texts`` truncated to ``max_length`` tokens, as
    ``SentenceEncoder.encode`` (packed, about ``texts_per_call`` full-length texts per forward)."""
    body = _sentence_encoder(module, params, tokenizer, max_length)
    return body.encode(texts, tokens_per_call=texts_per_call * max_length)


def evaluate(module: BiEncoder, params: Any, examples: Sequence[dict], tokenizer: tokenizers.Tokenizer,
             config: ml_collections.ConfigDict, task: tasks.Task) -> dict[str, float]:
    """nDCG@10, MRR@10, recall@10 and recall@100 of every query of the split against its corpus."""
    del task
    doc_ids, doc_texts, qrels = corpus(examples)
    embedded = {field: encode(module, params, tokenizer, texts, int(config.retrieval[f"{field}_max_length"]),
                              texts_per_call=int(config.eval.batch_size))
                for field, texts in (("query", [ex["query"] for ex in examples]), ("document", doc_texts))}
    run = exact_search(embedded["query"], embedded["document"], [ex["id"] for ex in examples], doc_ids)
    return ir_metrics(qrels, run)


_STOPWORDS = "en"
_IDENTIFIER_BOUNDARY = re.compile(r"_+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def split_identifiers(text: str) -> str:
    """``parse_config``/``parseConfig``/``HTTPServer`` -> ``parse config``/``parse Config``/``HTTP Server``:
    identifiers cut into the words a natural-language query would use."""
    return _IDENTIFIER_BOUNDARY.sub(" ", text)


def bm25(examples: Sequence[dict]) -> dict[str, float]:
    """The lexical floor: BM25 (``bm25s``, Lucene's variant, k1=1.5, b=0.75) of every query against the
    split's corpus, with ``evaluate``'s metrics.

    Tokens are ``bm25s``' default (lowercased words of 2+ characters, English stopwords removed) after
    ``split_identifiers``: the default alone keeps ``parse_config`` as one token that no docstring
    query contains, which would make the floor an artefact of tokenisation. A document sharing no
    term with a query is not retrieved for it (score 0), as in Lucene.
    """
    import bm25s

    doc_ids, doc_texts, qrels = corpus(examples)

    def tokenize(texts: list[str]) -> list[list[str]]:
        return bm25s.tokenize([split_identifiers(t) for t in texts], stopwords=_STOPWORDS, return_ids=False,
                              show_progress=False)

    retriever = bm25s.BM25()
    retriever.index(tokenize(doc_texts), show_progress=False)
    queries = tokenize([ex["query"] for ex in examples])
    found, scores = retriever.retrieve(queries, k=min(TOP_K, len(doc_ids)), show_progress=False)
    run = {ex["id"]: {doc_ids[j]: float(s) for j, s in zip(found[i], scores[i]) if s > 0}
           for i, ex in enumerate(examples)}
    return ir_metrics(qrels, run)


# -- export ------------------------------------------------------------------------------------
def export(path: str | os.PathLike, module: BiEncoder, params: Any, tokenizer: tokenizers.Tokenizer,
           task: tasks.Task) -> None:
    """A sentence-transformers directory (``[Transformer, Pooling("mean"), Normalize]``, ``max_seq_length``
    = ``module.max_seq_length``) through SetFit's writer, replacing the files of an earlier export (the
    loop's own output directory, written again when a finished run is rerun)."""
    del task
    SetFitModel(_sentence_encoder(module, params, tokenizer, module.max_seq_length)).save_pretrained(
        path, overwrite=True)
