"""The ModernBERT paper's efficiency table: inference tokens/s and the largest batch that fits.

    python -m experiments.sweep --config=configs/sweeps/efficiency.py --workdir=DIR    # GPU, full size
    python -m experiments.sweep --config=configs/sweeps/efficiency.py:scale=0.125,num_sequences=8,repeats=2 \
        --workdir=DIR                                                                  # a 2-core CPU, ~7 min

`run(config, workdir)` measures one architecture (``config.architecture``): a randomly
initialised ModernBERT-base or BERT-base configuration (BERT's recipe at BERT-base's sizes, its
position table stretched to the longest length so that it can run at 8192 at all), both shrunk
by ``config.scale`` on a CPU (layers and width in proportion, heads of 64 kept; the sizes used
are part of the summary).

Four synthetic sets of ``num_sequences`` random-token sequences per length T in
``config.lengths``, as in the paper (§4 and Appendix F, Table 10): *fixed*, every sequence T
tokens, and *variable*, lengths ~ Normal(mean T/2, standard deviation T/8), rounded and clipped to
[1, T] (the paper's 256 ± 64 at 512 and 4,096 ± 1,024 at 8,192). The same lengths for both
architectures. ModernBERT runs unpadded: sequences packed into rows of T (best-fit decreasing),
attention kept within each sequence by segment ids. BERT runs as BERT does: one sequence a row,
padded to the longest of its batch, dense masked attention (``bert_attention_impl``). Each set is
processed in batches of the largest batch that fits (the paper's BS column), or fewer rows if the
set needs fewer; tokens/s counts real tokens only, from the median of ``repeats`` timed passes
over the set after ``warmup`` untimed ones (`experiments.timing.measure`).

The largest batch is found without allocating anything: the forward pass is compiled for
``[b, T]`` and XLA's memory analysis (arguments + outputs + temporaries) compared with the
budget, the accelerator's ``bytes_limit`` or, on a CPU (which reports none), ``memory_budget_gb``;
a linear guess from two compilations brackets it and a bisection pins it down.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from experiments.timing import measure
from modernbert_jax import config as config_lib
from modernbert_jax import layers, model, provenance
from modernbert_jax.data import packing

ARCHITECTURES = ("modernbert", "bert")
MODES = ("fixed", "variable")
# The released base models' sizes, scaled together by `config.scale`.
_BASE = {"modernbert": dict(num_layers=22, hidden_size=768, intermediate_size=1152),
         "bert": dict(num_layers=12, hidden_size=768, intermediate_size=3072)}
_HEAD_DIM = 64
_PAD_ID = 0
# The batch search stops here: far above what any device fits at these lengths.
_BATCH_LIMIT = 1 << 16
# Secant probes of the batch search before it falls back to bisection.
_SECANT_STEPS = 8


def model_config(architecture: str, scale: float, max_length: int, dtype: str,
                 attention_impl: str) -> ml_collections.ConfigDict:
    """The base configuration of ``architecture`` with layers and width multiplied by ``scale``."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture={architecture!r} is not one of {ARCHITECTURES}")
    if not 0 < scale <= 1:
        raise ValueError(f"scale={scale} must be in (0, 1]")
    base = _BASE[architecture]
    heads = max(1, round(base["hidden_size"] * scale / _HEAD_DIM))
    hidden = heads * _HEAD_DIM
    sizes = dict(num_layers=max(1, round(base["num_layers"] * scale)), hidden_size=hidden, num_heads=heads,
                 intermediate_size=round(base["intermediate_size"] * hidden / base["hidden_size"]),
                 dtype=dtype, attention_impl=attention_impl, pad_token_id=_PAD_ID)
    if architecture == "bert":
        cfg = config_lib.bert_config(vocab_size=30522, max_position_embeddings=max_length, **sizes)
    else:
        cfg = config_lib.modernbert_config(max_position_embeddings=max(8192, max_length), **sizes)
    config_lib.validate(cfg)
    cfg.lock()
    return cfg


def sequence_lengths(mode: str, n: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` lengths: all ``seq_len`` (fixed) or ~ Normal(seq_len/2, seq_len/8) in [1, seq_len] (variable)."""
    if mode == "fixed":
        return np.full(n, seq_len)
    if mode == "variable":
        return np.clip(np.rint(rng.normal(seq_len / 2, seq_len / 8, n)), 1, seq_len).astype(int)
    raise ValueError(f"mode={mode!r} is not one of {MODES}")


def sequences(lengths: Sequence[int], vocab_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random token ids of the given lengths (ids below 5 are special tokens in both vocabularies)."""
    return [rng.integers(5, vocab_size, size=int(n), dtype=np.int32) for n in lengths]


@dataclasses.dataclass(frozen=True)
class Batches:
    """The arrays a pass over one set feeds the encoder, and the real tokens among them."""

    arrays: list[dict[str, np.ndarray]]  # input_ids / segment_ids / positions, each [batch, length]
    real_tokens: int

    @property
    def slots(self) -> int:
        """Token positions computed, padding included."""
        return sum(a["input_ids"].size for a in self.arrays)


def packed_batches(seqs: Sequence[np.ndarray], seq_len: int, batch: int) -> Batches:
    """ModernBERT's unpadding: sequences packed into rows of ``seq_len``, ``batch`` rows a call
    (the last call's batch filled with empty rows, so that every call has one shape)."""
    rows = packing.best_fit_decreasing([len(s) for s in seqs], seq_len)
    arrays = [packing.rows_to_arrays([[seqs[i] for i in row] for row in rows[start:start + batch]],
                                     seq_len, pad_id=_PAD_ID, num_rows=batch)
              for start in range(0, len(rows), batch)]
    return Batches(arrays, sum(len(s) for s in seqs))


def padded_batches(seqs: Sequence[np.ndarray], batch: int) -> Batches:
    """BERT's way: one sequence a row, ``batch`` rows a call, each call padded to its longest sequence."""
    arrays = [packing.rows_to_arrays([[s] for s in seqs[start:start + batch]],
                                     max(len(s) for s in seqs[start:start + batch]), pad_id=_PAD_ID)
              for start in range(0, len(seqs), batch)]
    return Batches(arrays, sum(len(s) for s in seqs))


def forward_fn(module: model.Encoder) -> Callable:
    """The jitted inference pass ``(params, input_ids, segment_ids, positions) -> hidden states``."""
    return jax.jit(lambda params, ids, seg, pos: module.apply({"params": params}, ids, seg, pos))


def compiled_bytes(forward: Callable, params: Any, batch: int, seq_len: int) -> int:
    """Device memory XLA plans for ``forward`` on ``[batch, seq_len]``: arguments + outputs + temporaries."""
    shape = jax.ShapeDtypeStruct((batch, seq_len), jnp.int32)
    stats = forward.lower(params, shape, shape, shape).compile().memory_analysis()
    return stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes


def largest_batch(memory: Callable[[int], int], budget: int, limit: int = _BATCH_LIMIT) -> int:
    """The largest ``b`` in [1, limit] with ``memory(b) <= budget`` (``memory`` non-decreasing); 0 if none.

    Each ``memory`` call is a compilation, so the search spends few: memory grows almost linearly
    with the batch, and the line through the last two measurements (the secant) lands within a
    few rows of the answer; the probe is kept strictly between the largest batch known to fit and
    the smallest known not to, next to the boundary it predicts, and bisection takes over if the
    secant has not converged after ``_SECANT_STEPS`` probes.
    """
    measured = [(1, memory(1))]
    if measured[0][1] > budget:
        return 0
    lo, hi = 1, limit + 1  # invariant: lo fits; hi does not (limit + 1: not known yet)
    while hi - lo > 1:
        guess = (lo + hi) // 2
        if len(measured) == 1:
            guess = min(2, limit)
        elif len(measured) <= _SECANT_STEPS:
            (b0, m0), (b1, m1) = measured[-2:]
            if m1 != m0:
                guess = int(b1 + (budget - m1) * (b1 - b0) / (m1 - m0))
                guess = min(max(guess, lo + 1), hi - 1)
        used = memory(guess)
        measured.append((guess, used))
        lo, hi = (guess, hi) if used <= budget else (lo, guess)
    return lo


def memory_budget(config: ml_collections.ConfigDict) -> int:
    """Bytes the forward pass may use: the device's limit where it reports one, else ``memory_budget_gb``."""
    stats = jax.local_devices()[0].memory_stats() or {}
    return int(stats.get("bytes_limit") or config.memory_budget_gb * 2**30)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Measure ``config.architecture``: tokens/s on every set and the largest batch at every length.

    Writes every timing (each pass, the load average) to ``workdir/timings.json``; returns scalars.
    """
    arch = config.architecture
    impl = config.modernbert_attention_impl if arch == "modernbert" else config.bert_attention_impl
    cfg = model_config(arch, config.scale, max(config.lengths), config.dtype, impl)
    module = model.Encoder(cfg)
    params = model.init_params(module, jax.random.key(config.seed))
    forward = forward_fn(module)
    budget = memory_budget(config)
    summary: dict[str, Any] = {
        "num_layers": cfg.num_layers, "hidden_size": cfg.hidden_size, "num_heads": cfg.num_heads,
        "intermediate_size": cfg.intermediate_size, "dtype": layers.compute_dtype(cfg).name,
        "params_millions": sum(x.size for x in jax.tree.leaves(params)) / 1e6,
        "memory_budget_gb": budget / 2**30,
    }
    timings = {}
    progress = tqdm.tqdm(total=len(config.lengths) * len(MODES), desc=f"efficiency[{arch}]", unit="set")
    for length in config.lengths:
        max_batch = largest_batch(lambda b: compiled_bytes(forward, params, b, length), budget)
        summary[f"max_batch_{length}"] = max_batch
        if max_batch == 0:
            raise ValueError(f"{arch} at T={length}: not even one row fits the memory budget of "
                             f"{budget / 2**30:.1f} GiB (config.memory_budget_gb or the device's limit)")
        for mode in MODES:
            # One generator per set, seeded alike for both architectures: the same lengths for both.
            rng = np.random.default_rng([config.seed, length, MODES.index(mode)])
            seqs = sequences(sequence_lengths(mode, config.num_sequences, length, rng), cfg.vocab_size, rng)
            if arch == "modernbert":
                rows = len(packing.best_fit_decreasing([len(s) for s in seqs], length))
                batches = packed_batches(seqs, length, min(max_batch, rows))
            else:
                batches = padded_batches(seqs, min(max_batch, len(seqs)))
            device_arrays = [[jnp.asarray(a[k]) for k in ("input_ids", "segment_ids", "positions")]
                             for a in batches.arrays]
            timing = measure({"pass": lambda: [forward(params, *args) for args in device_arrays]},
                             repeats=config.repeats, warmup=config.warmup, sync=jax.block_until_ready)["pass"]
            name = f"{mode}_{length}"
            summary[f"{name}_tokens_per_sec"] = batches.real_tokens / timing.median_s
            summary[f"{name}_real_tokens"] = batches.real_tokens
            summary[f"{name}_padding_fraction"] = 1 - batches.real_tokens / batches.slots
            timings[name] = timing.to_dict()
            progress.update()
    progress.close()
    provenance.write_result(Path(workdir) / "timings.json", timings, overwrite=True)
    return summary


def inputs(config: ml_collections.ConfigDict) -> list[str]:
    """No files: the sequences are random tokens drawn from ``config.seed``."""
    del config
    return []
