r"""Benchmark the attention backends: time and achieved TFLOP/s, forward and forward+backward.

GPU (bf16, head_dim 64, 12 heads, ~16k tokens per batch):
  python -m experiments.bench_attention --out=experiments/results/bench_attention_gpu.json
compares xla (dense masked), blocked (pure JAX) and pallas (fused kernel), local (w=64) and
global, for T in {512, 1024, 8192, 16384}, plus PyTorch FlexAttention with a sliding-window +
document block mask when torch with CUDA is importable.

CPU (float32, small batch): blocked local vs dense at T=8192:
  .venv/bin/python -m experiments.bench_attention --cpu --out=experiments/results/bench_attention_cpu.json

FLOPs count only visible (query, key) pairs: 4*D per pair forward (QK^T and PV) and 10*D
backward (five matmuls), the usual flash-attention convention. Times are medians of at least
3 calls after one warm-up call (`experiments.timing`; forward and forward+backward interleaved).
Configurations that run out of memory are recorded as skipped. Results go to --out (required)
as JSON with the provenance block (each record's ``window`` is the half-width w, None for global),
rewritten after every configuration, and a table is printed. A file at --out holding a result of
another commit is refused before anything runs unless --overwrite.
"""

from __future__ import annotations

import functools
import os
from typing import Callable, Optional

# Let JAX and torch share the GPU: allocate on demand instead of grabbing 75% up front.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from experiments.timing import measure  # noqa: E402
from modernbert_jax import provenance  # noqa: E402
from modernbert_jax.kernels.blocked import blocked_attention  # noqa: E402
from modernbert_jax.kernels.pallas_attention import BlockSizes, flash_attention  # noqa: E402
from modernbert_jax.kernels.reference import xla_attention  # noqa: E402

_CPU = flags.DEFINE_bool("cpu", False, "CPU mode: blocked local vs dense at T=8192 only.")
_OUT = flags.DEFINE_string("out", None, "JSON path, e.g. experiments/results/bench_attention_<backend>[_sweep].json.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a result of another commit at --out.")
_SEQ_LENS = flags.DEFINE_list("seq_lens", ["512", "1024", "8192", "16384"], "Sequence lengths (GPU mode).")
_TOKENS = flags.DEFINE_integer("tokens", 16384, "Tokens per batch: batch = max(1, tokens // T).", lower_bound=1)
_HEADS = flags.DEFINE_integer("heads", 12, "Attention heads (GPU mode; CPU mode uses 2).", lower_bound=1)
_HEAD_DIM = flags.DEFINE_integer("head_dim", 64, "Head dimension.", lower_bound=1)
_HALF_WINDOW = flags.DEFINE_integer("half_window", 64, "Local half-width w (|i - j| <= w; HF local_attention = 2w).",
                                    lower_bound=0)
_MIN_TIME = flags.DEFINE_float("min_time", 0.2, "Seconds of timed runs per measurement (at least 3 runs).",
                               lower_bound=0)
_FLEX_SEQ_LENS = flags.DEFINE_list("flex_seq_lens", ["8192"], "T values to run FlexAttention at (it compiles per shape).")
_FLEX_GLOBAL = flags.DEFINE_bool("flex_global", False, "Also run FlexAttention for global attention (another compile).")
_PALLAS_BLOCKS = flags.DEFINE_list(
    "pallas_blocks", None, "Six ints: block_q,block_k,block_q_dq,block_k_dq,block_q_dkv,block_k_dkv (default BlockSizes())."
)
_PALLAS_WARPS = flags.DEFINE_integer("pallas_num_warps", None, "Triton num_warps (default: 4 for D<=64, else 8).",
                                     lower_bound=1)
_PALLAS_STAGES = flags.DEFINE_integer("pallas_num_stages", 2, "Triton num_stages.", lower_bound=1)
_SWEEP = flags.DEFINE_bool(
    "pallas_sweep", False, "Instead of the table: time candidate Pallas tile shapes at T=8192, local and global."
)
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed for the inputs.", lower_bound=0)
flags.mark_flag_as_required("out")

# Candidate (block_q, block_k, block_q_dq, block_k_dq, block_q_dkv, block_k_dkv, num_warps) for --pallas_sweep.
SWEEP_CANDIDATES = (
    (64, 64, 64, 64, 64, 64, 4),
    (128, 64, 64, 64, 64, 64, 4),
    (128, 64, 64, 64, 64, 64, 8),
    (128, 32, 128, 32, 32, 128, 4),
    (64, 32, 64, 32, 32, 64, 4),
    (128, 128, 64, 128, 128, 64, 8),
)


def visible_pairs(length: int, half_window: Optional[int]) -> int:
    """Number of (query, key) pairs with |i - j| <= w in one fully used row."""
    if half_window is None:
        return length * length
    i = np.arange(length)
    return int(np.sum(np.minimum(length - 1, i + half_window) - np.maximum(0, i - half_window) + 1))


def time_fwd_and_bwd(forward: Callable[[], object], forward_backward: Callable[[], object], sync) -> dict:
    """Median seconds of each (and every time, the load average) after one warm-up (compile) call."""
    timings = measure({"fwd": forward, "fwd_bwd": forward_backward}, repeats=3, min_time=_MIN_TIME.value, sync=sync)
    return {"fwd_s": timings["fwd"].median_s, "fwd_bwd_s": timings["fwd_bwd"].median_s,
            "timing": {name: t.to_dict() for name, t in timings.items()}}


def is_oom(error: BaseException) -> bool:
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower() or "OutOfMemory" in type(error).__name__


def jax_impls(backend: str) -> dict[str, Callable]:
    impls = {
        "xla": xla_attention,
        "blocked": blocked_attention,
    }
    if backend == "gpu":
        sizes = [int(x) for x in _PALLAS_BLOCKS.value] if _PALLAS_BLOCKS.value else []
        blocks = BlockSizes(*sizes, num_warps=_PALLAS_WARPS.value, num_stages=_PALLAS_STAGES.value)
        impls["pallas"] = functools.partial(flash_attention, block_sizes=blocks)
    return impls


def bench_jax(impl: Callable, batch: int, length: int, heads: int, half_window: Optional[int], dtype) -> dict:
    keys = jax.random.split(jax.random.PRNGKey(_SEED.value), 4)
    shape = (batch, length, heads, _HEAD_DIM.value)
    q, k, v, do = (jax.random.normal(key, shape, jnp.float32).astype(dtype) for key in keys)
    seg = jnp.ones((batch, length), jnp.int32)

    def attend(q, k, v):
        return impl(q, k, v, segment_ids=seg, half_window=half_window)

    forward = jax.jit(attend)
    forward_backward = jax.jit(lambda q, k, v, do: jax.vjp(attend, q, k, v)[1](do))
    return time_fwd_and_bwd(lambda: forward(q, k, v), lambda: forward_backward(q, k, v, do), jax.block_until_ready)


def flex_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def bench_flex(batch: int, length: int, heads: int, half_window: Optional[int], device: str = "cuda") -> dict:
    """PyTorch FlexAttention with a sliding-window + document block mask (it skips blocks too).

    bfloat16 on CUDA; ``device="cpu"`` (float32) exists to check this code without a GPU.
    """
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    generator = torch.Generator(device=device).manual_seed(_SEED.value)
    shape = (batch, heads, length, _HEAD_DIM.value)
    q, k, v, do = (torch.randn(shape, device=device, dtype=dtype, generator=generator) for _ in range(4))
    document = torch.ones((batch, length), device=device, dtype=torch.int32)

    def mask_mod(b, h, q_idx, kv_idx):
        same_document = document[b, q_idx] == document[b, kv_idx]
        if half_window is None:
            return same_document
        return same_document & ((q_idx - kv_idx).abs() <= half_window)

    block_mask = create_block_mask(mask_mod, batch, None, length, length, device=device)
    attend = torch.compile(flex_attention)
    qg, kg, vg = (x.clone().requires_grad_(True) for x in (q, k, v))

    def forward():
        with torch.no_grad():
            return attend(q, k, v, block_mask=block_mask)

    def forward_backward():
        return torch.autograd.grad(attend(qg, kg, vg, block_mask=block_mask), (qg, kg, vg), do)

    sync = (lambda _: torch.cuda.synchronize()) if device == "cuda" else (lambda _: None)
    result = time_fwd_and_bwd(forward, forward_backward, sync)
    del block_mask, q, k, v, do, qg, kg, vg
    if device == "cuda":
        torch.cuda.empty_cache()
    return result


def add_throughput(record: dict) -> dict:
    pairs = visible_pairs(record["T"], record["window"]) * record["B"] * record["H"]
    record["fwd_tflops"] = 4 * pairs * record["D"] / record["fwd_s"] / 1e12
    record["fwd_bwd_tflops"] = 14 * pairs * record["D"] / record["fwd_bwd_s"] / 1e12
    return record


def run(impl_name: str, bench: Callable[[], dict], base: dict) -> dict:
    record = dict(base, impl=impl_name)
    try:
        record.update(bench())
        add_throughput(record)
    except Exception as error:  # noqa: BLE001 -- a failed config is recorded, not fatal
        record["skipped"] = "out of memory" if is_oom(error) else f"{type(error).__name__}: {str(error)[:300]}"
    print_row(record)
    return record


def print_row(record: dict) -> None:
    mode = "global" if record["window"] is None else f"w={record['window']}"
    head = f"{record['impl']:>8} {mode:>7} T={record['T']:>6} B={record['B']:>3}"
    if "blocks" in record:
        head += f" blocks={record['blocks']} warps={record['num_warps']}"
    if "skipped" in record:
        print(f"{head}  skipped: {record['skipped']}", flush=True)
    else:
        print(
            f"{head}  fwd {record['fwd_s'] * 1e3:9.3f} ms {record['fwd_tflops']:8.3g} TF/s"
            f"  fwd+bwd {record['fwd_bwd_s'] * 1e3:9.3f} ms {record['fwd_bwd_tflops']:8.3g} TF/s",
            flush=True,
        )


def find(records: list[dict], impl: str, length: int, half_window: Optional[int]) -> Optional[dict]:
    for record in records:
        if record["impl"] == impl and record["T"] == length and record["window"] == half_window and "skipped" not in record:
            return record
    return None


def ratio(records, slow: tuple, fast: tuple, key: str) -> Optional[float]:
    a, b = find(records, *slow), find(records, *fast)
    return None if a is None or b is None else a[key] / b[key]


def main(argv: list[str]) -> None:
    del argv
    out = provenance.ResultFile(_OUT.value, overwrite=_OVERWRITE.value)
    backend = jax.default_backend()
    half_window = _HALF_WINDOW.value
    records: list[dict] = []
    if _CPU.value:
        dtype, lengths, impl_names, heads = jnp.float32, [8192], ["xla", "blocked"], 2
    else:
        dtype, lengths, heads = (jnp.bfloat16 if backend == "gpu" else jnp.float32), [int(t) for t in _SEQ_LENS.value], _HEADS.value
        impl_names = list(jax_impls(backend))
    impls = jax_impls(backend)
    use_flex = not _CPU.value and flex_available()

    def add(record: dict) -> None:
        records.append(record)
        write_results(out, records, compute_ratios(records, half_window))

    if _SWEEP.value:
        batch, length = max(1, _TOKENS.value // 8192), 8192
        for *sizes, warps in SWEEP_CANDIDATES:
            blocks = BlockSizes(*sizes, num_warps=warps, num_stages=_PALLAS_STAGES.value)
            for mode_half_window in (half_window, None):
                base = {"T": length, "B": batch, "H": heads, "D": _HEAD_DIM.value, "window": mode_half_window,
                        "dtype": jnp.dtype(dtype).name, "blocks": sizes, "num_warps": warps}
                fn = functools.partial(flash_attention, block_sizes=blocks)
                add(run("pallas", lambda: bench_jax(fn, batch, length, heads, mode_half_window, dtype), base))
        return

    for length in lengths:
        batch = 1 if _CPU.value else max(1, _TOKENS.value // length)
        for mode_half_window in (half_window,) if _CPU.value else (half_window, None):
            base = {"T": length, "B": batch, "H": heads, "D": _HEAD_DIM.value, "window": mode_half_window, "dtype": jnp.dtype(dtype).name}
            if use_flex and str(length) in _FLEX_SEQ_LENS.value and (mode_half_window is not None or _FLEX_GLOBAL.value):
                # Before JAX allocates: torch releases its cache afterwards, JAX's allocator keeps its.
                add(run("flex", lambda: bench_flex(batch, length, heads, mode_half_window), base))
            for name in impl_names:
                if name == "blocked" and mode_half_window is None:
                    continue  # global blocked attention *is* the xla path
                add(run(name, lambda: bench_jax(impls[name], batch, length, heads, mode_half_window, dtype), base))

    ratios = compute_ratios(records, half_window)
    print("\nspeed-up ratios (time of the first / time of the second, >1 means the second is faster):")
    for name, value in ratios.items():
        print(f"  {name:<40} {'n/a' if value is None else f'{value:.2f}x'}")
    print(f"wrote {out.path}")


def compute_ratios(records: list[dict], half_window: int) -> dict:
    ratios = {}
    for key in ("fwd_s", "fwd_bwd_s"):
        tag = key[:-2]
        if _CPU.value:
            ratios[f"blocked_vs_xla_local_8192_{tag}"] = ratio(records, ("xla", 8192, half_window), ("blocked", 8192, half_window), key)
        else:
            ratios[f"pallas_vs_xla_local_8192_{tag}"] = ratio(records, ("xla", 8192, half_window), ("pallas", 8192, half_window), key)
            ratios[f"pallas_local_vs_global_8192_{tag}"] = ratio(records, ("pallas", 8192, None), ("pallas", 8192, half_window), key)
            ratios[f"pallas_vs_flex_local_8192_{tag}"] = ratio(records, ("flex", 8192, half_window), ("pallas", 8192, half_window), key)
    return ratios


def write_results(out: provenance.ResultFile, records: list[dict], ratios: dict) -> None:
    """Rewritten after every configuration, so a run cut short by a time limit keeps its results."""
    device = jax.devices()[0]
    out.write(
        {
            "backend": jax.default_backend(),
            "device": getattr(device, "device_kind", str(device)),
            "results": records,
            "ratios": ratios,
        },
        config=provenance.command_line_config(),
        seed=_SEED.value,
        peers=("torch",) if any(r["impl"] == "flex" for r in records) else (),
    )


if __name__ == "__main__":
    app.run(main)
