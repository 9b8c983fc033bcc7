"""Deterministic, resumable MLM pretraining input pipeline (host-side, NumPy).

Interface (what the train loop codes against)::

    from modernbert_jax.data.pipeline import PretrainPipeline
    from modernbert_jax.data.sources import InMemorySource, TfdsSource, TextFileSource

    train = PretrainPipeline(
        source,                 # DocumentSource: len(source), source[i] -> str
        tokenizer,              # Tokenizer protocol below (SentencePieceTokenizer implements it)
        batch_size=64,          # GLOBAL rows per batch
        seq_len=1024,
        seed=0,
        mask_rate=0.30,         # 0.15 for evaluation
        shuffle=True,           # new permutation of the documents every epoch
        num_epochs=None,        # None = loop forever; 1 for a single evaluation pass
        process_index=jax.process_index(), process_count=jax.process_count(),
        packing=True,           # False: one chunk per row, padded (the BERT-style ablation)
    )
    batch = next(train)                 # this host's rows of the global batch
    batch = train.next_batch(768)       # same, with another global batch size (batch-size warmup)
    state = train.get_state()           # small JSON-serialisable dict -> store in the checkpoint
    train.set_state(state)              # a resumed run then sees exactly the same batches

Each batch is a dict of NumPy arrays with ``B = batch_size // process_count`` rows:

    input_ids        int32   [B, T]  corrupted tokens ([MASK] / random / kept)
    segment_ids      int32   [B, T]  0 = padding, 1..n = packed sequence
    positions        int32   [B, T]  restart at 0 in each sequence
    masked_positions int32   [B, M]  indices into T, M = ceil(mask_rate * T)
    masked_labels    int32   [B, M]  original token ids (pad_id where unused)
    masked_weights   float32 [B, M]  1.0 for real targets, 0.0 for unused slots

``train.packing_efficiency`` (running, survives resume) gives the non-padding fraction to log.

Determinism: document order is a permutation drawn from ``(seed, epoch)``; masking of global row
``r`` in step ``s`` uses a generator seeded by ``(seed, s, r)``. Every host packs the *whole*
global batch (cheap next to a training step) and keeps its slice, so the global batch is the
same for any number of hosts: one process and two processes see identical data. The state is
the epoch, the cursor in the permutation and references ``(document, chunk)`` to the chunks
still waiting in the packing buffer; ``set_state`` re-tokenizes those documents.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

import numpy as np

from modernbert_jax.config import check_number
from modernbert_jax.data import masking, packing
from modernbert_jax.data.sources import DocumentSource

log = logging.getLogger(__name__)

STATE_FORMAT = "modernbert_jax.data.PretrainPipeline/1"
READ_GROUP = 32  # documents tokenized per call


class Tokenizer(Protocol):
    """What the pipeline needs from a tokenizer."""

    vocab_size: int
    cls_id: int
    sep_id: int
    mask_id: int
    pad_id: int
    special_ids: tuple[int, ...]

    def encode_batch(self, texts: list[str]) -> list[list[int]]: ...


class PretrainPipeline:
    """Shuffled, packed, MLM-masked global batches from a document source; see the module docstring."""

    def __init__(
        self,
        source: DocumentSource,
        tokenizer: Tokenizer,
        *,
        batch_size: int,
        seq_len: int,
        seed: int,
        mask_rate: float = 0.30,
        mask_prob: float = 0.8,
        random_prob: float = 0.1,
        shuffle: bool = True,
        num_epochs: int | None = None,
        process_index: int = 0,
        process_count: int = 1,
        pack_buffer_batches: float = 2.0,
        packing: bool = True,
    ):
        if len(source) == 0:
            raise ValueError("document source is empty")
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index={process_index} not in [0, process_count={process_count})")
        check_number("seq_len", seq_len, low=1, integer=True)
        check_number("mask_rate", mask_rate, low=0, high=1, low_open=True, high_open=True)
        check_number("mask_prob", mask_prob, low=0, high=1)
        check_number("random_prob", random_prob, low=0, high=1)
        if mask_prob + random_prob > 1:
            raise ValueError(f"mask_prob + random_prob = {mask_prob} + {random_prob} exceeds 1: they split the "
                             "selected tokens into [MASK] / random / unchanged")
        if num_epochs is not None:
            check_number("num_epochs", num_epochs, low=1, integer=True)
        check_number("pack_buffer_batches", pack_buffer_batches, low=0, low_open=True)
        self.source, self.tokenizer = source, tokenizer
        self.batch_size, self.seq_len, self.seed = batch_size, seq_len, int(seed)
        self.mask_rate, self.mask_prob, self.random_prob = mask_rate, mask_prob, random_prob
        self.shuffle, self.num_epochs = shuffle, num_epochs
        self.process_index, self.process_count = process_index, process_count
        self.pack_buffer_batches = pack_buffer_batches
        self.packing = packing
        self._check_batch_size(batch_size)
        self._step = 0
        self._epoch = 0
        self._cursor = 0
        self._pending: list[tuple[int, int, list[int]]] = []  # (document, chunk, tokens) in arrival order
        self._real_tokens = 0
        self._total_tokens = 0
        self._order = self._permutation(0)

    # -- public API ---------------------------------------------------------------------------

    @property
    def packing_efficiency(self) -> float:
        """Non-padding fraction over all batches produced so far (carried through resume)."""
        return self._real_tokens / self._total_tokens if self._total_tokens else 0.0

    @property
    def step(self) -> int:
        return self._step

    @property
    def epoch(self) -> int:
        return self._epoch

    def __iter__(self) -> "PretrainPipeline":
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        return self.next_batch()

    def next_batch(self, batch_size: int | None = None) -> dict[str, np.ndarray]:
        """This host's slice of the next global batch (``batch_size`` rows globally, default the constructor's)."""
        batch_size = self.batch_size if batch_size is None else batch_size
        self._check_batch_size(batch_size)
        self._fill_buffer(batch_size)
        if not self._pending:
            raise StopIteration
        rows = self._take_rows(batch_size)
        global_batch = packing.rows_to_arrays(rows, self.seq_len, self.tokenizer.pad_id)
        self._real_tokens += int((global_batch["segment_ids"] > 0).sum())
        self._total_tokens += global_batch["segment_ids"].size
        local = batch_size // self.process_count
        lo = self.process_index * local
        host = {k: v[lo : lo + local] for k, v in global_batch.items()}
        rngs = [np.random.default_rng([self.seed, 1, self._step, row]) for row in range(lo, lo + local)]
        tok = self.tokenizer
        out = masking.mask_batch(
            host, rngs, rate=self.mask_rate, mask_id=tok.mask_id, pad_id=tok.pad_id,
            special_ids=tok.special_ids, vocab_size=tok.vocab_size,
            mask_prob=self.mask_prob, random_prob=self.random_prob,
        )
        self._step += 1
        return out

    def get_state(self) -> dict:
        """JSON-serialisable position of the pipeline (no token data)."""
        return {
            "format": STATE_FORMAT,
            "seed": self.seed,
            "seq_len": self.seq_len,
            "num_documents": len(self.source),
            "packing": self.packing,
            "step": self._step,
            "epoch": self._epoch,
            "cursor": self._cursor,
            "pending": [[doc, chunk] for doc, chunk, _ in self._pending],
            "real_tokens": self._real_tokens,
            "total_tokens": self._total_tokens,
        }

    def set_state(self, state: dict) -> None:
        """Continue exactly where ``get_state`` was taken (the global batch size may differ)."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"pipeline state format {state.get('format')!r}, expected {STATE_FORMAT!r}")
        # States from before the `packing` option were all packed.
        state = {"packing": True, **state}
        for field, mine in (("seed", self.seed), ("seq_len", self.seq_len), ("num_documents", len(self.source)),
                            ("packing", self.packing)):
            if state[field] != mine:
                raise ValueError(f"pipeline state has {field}={state[field]}, this pipeline has {field}={mine}")
        self._step, self._epoch, self._cursor = int(state["step"]), int(state["epoch"]), int(state["cursor"])
        self._real_tokens, self._total_tokens = int(state["real_tokens"]), int(state["total_tokens"])
        self._order = self._permutation(self._epoch)
        docs = sorted({doc for doc, _ in state["pending"]})
        chunks_by_doc = dict(zip(docs, self._chunks(docs)))
        self._pending = [(doc, chunk, chunks_by_doc[doc][chunk]) for doc, chunk in state["pending"]]

    # -- internals ----------------------------------------------------------------------------

    def _check_batch_size(self, batch_size: int) -> None:
        if batch_size <= 0 or batch_size % self.process_count:
            raise ValueError(f"batch_size={batch_size} must be a positive multiple of process_count={self.process_count}")

    def _permutation(self, epoch: int) -> np.ndarray:
        n = len(self.source)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, 0, epoch]).permutation(n)

    def _chunks(self, docs: list[int]) -> list[list[list[int]]]:
        """Chunks of each document (tokenized together: the tokenizer runs them in parallel)."""
        tok = self.tokenizer
        encoded = tok.encode_batch([self.source[d] for d in docs])
        return [packing.chunk_document(ids, self.seq_len, tok.cls_id, tok.sep_id) for ids in encoded]

    def _fill_buffer(self, batch_size: int) -> None:
        """Read documents until the buffer holds ``pack_buffer_batches`` batches' worth of tokens.

        Documents are read in groups of ``READ_GROUP`` (never across an epoch boundary) so that
        tokenization is batched; the state stays exact because groups are consumed whole.
        """
        target = math.ceil(self.pack_buffer_batches * batch_size * self.seq_len)
        buffered = sum(len(c) for _, _, c in self._pending)
        while buffered < target:
            if self._cursor == len(self._order):
                if self.num_epochs is not None and self._epoch + 1 >= self.num_epochs:
                    return
                log.info("finished reading epoch %d after %d batches; packing efficiency so far %.4f",
                         self._epoch, self._step, self.packing_efficiency)
                self._epoch += 1
                self._cursor = 0
                self._order = self._permutation(self._epoch)
            docs = [int(d) for d in self._order[self._cursor : self._cursor + READ_GROUP]]
            self._cursor += len(docs)
            for doc, chunks in zip(docs, self._chunks(docs)):
                for i, chunk in enumerate(chunks):
                    self._pending.append((doc, i, chunk))
                    buffered += len(chunk)

    def _take_rows(self, batch_size: int) -> list[list[list[int]]]:
        """Packed: best-fit-decreasing over the buffer; the fullest rows form the batch, the rest wait.
        Unpacked: the oldest chunks, one per row (the rest of the row is padding)."""
        if self.packing:
            lengths = [len(c) for _, _, c in self._pending]
            rows = packing.best_fit_decreasing(lengths, self.seq_len)
            # Fullest first; ties go to the row holding the oldest chunk, so nothing waits forever
            # among equally good rows.
            rows.sort(key=lambda r: (-sum(lengths[i] for i in r), min(r)))
        else:
            rows = [[i] for i in range(len(self._pending))]
        chosen = rows[:batch_size]
        taken = {i for r in chosen for i in r}
        out = [[self._pending[i][2] for i in r] for r in chosen]
        out += [[] for _ in range(batch_size - len(out))]  # only at the end of a finite pass
        self._pending = [p for i, p in enumerate(self._pending) if i not in taken]
        return out

