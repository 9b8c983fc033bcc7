"""Training throughput: our jitted MLM step vs transformers' ModernBertForMaskedLM, same machine.

    python -m experiments.bench_pretrain --variant=tiny --seq_len=512 --batch=8 \
        --out=experiments/results/bench_pretrain_cpu_tiny_T512.json
    python -m experiments.bench_pretrain --variant=base --seq_len=1024 --batch=16 --dtype=bfloat16 --skip_torch \
        --out=experiments/results/bench_pretrain_NVIDIA_H200_base_T1024.json

Both sides train the same architecture (the HF config is written from ours by
`modernbert_jax.hf_families.config_to_hf`) on the same fully packed random batches with 30% of tokens
masked and sparse prediction (only masked positions are decoded), one optimiser step per batch
(ours: StableAdamW; PyTorch: AdamW — PyTorch core has no StableAdamW and the per-tensor RMS costs
one extra reduction). Reported: steady-state tokens/s after warmup steps (compilation excluded),
from the median time of a call (`experiments.timing`, the minimum, every time and the load
average recorded too): for ours a call is ``--steps_per_call`` steps dispatched back to back and
synced once, as the training loop runs them (a sync after every step would idle the device
while the host dispatches the next); PyTorch's eager steps run synchronously anyway.
Also reported: the ratio ours / PyTorch, and MFU = tokens/s x training FLOPs per token / peak FLOP/s. The peak
is the accelerator's datasheet number, or on CPU the measured rate of a large float32 matmul on
the same cores (so CPU MFU means "fraction of what this CPU's matmuls reach"). The JSON goes to
``--out`` (required; by convention experiments/results/bench_pretrain_<device>_<variant>_T<seq_len>.json)
with the provenance block; a file there holding a result of another commit is refused before
anything runs unless ``--overwrite``.
"""

from __future__ import annotations

import json
import os
import platform

from absl import app, flags

from experiments.timing import Timing, measure
from modernbert_jax import provenance

_VARIANT = flags.DEFINE_enum("variant", "tiny", ["tiny", "base", "large"], "Model size (modernbert_jax.config).")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 512, "Tokens per row.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch", 8, "Rows per step.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps per framework (the median step time is reported).",
                              lower_bound=1)
_STEPS_PER_CALL = flags.DEFINE_integer("steps_per_call", 4, "Our steps per timed call, synced once at its end.",
                                       lower_bound=1)
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed steps first (compilation, allocator warmup).", lower_bound=0)
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype of our model.")
_ATTENTION = flags.DEFINE_string("attention_impl", "auto", "Our attention backend (xla|blocked|pallas|auto).")
_SKIP_TORCH = flags.DEFINE_bool("skip_torch", False, "Only time our side (e.g. on a GPU machine without torch).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the random batches and initialisation.", lower_bound=0)
_OUT = flags.DEFINE_string("out", None, "Results JSON, e.g. experiments/results/bench_pretrain_cpu_tiny_T512.json.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a result of another commit at --out.")
flags.mark_flag_as_required("out")

MASK_RATE = 0.30


def random_batch(rng, vocab: int, batch: int, seq_len: int, num_masked: int):
    """Packed rows (one segment each, no padding) and `num_masked` distinct masked positions per row."""
    import numpy as np

    ids = rng.integers(5, vocab, size=(batch, seq_len), dtype=np.int32)
    positions = np.stack([np.sort(rng.choice(seq_len, num_masked, replace=False)) for _ in range(batch)]).astype(np.int32)
    labels = np.take_along_axis(ids, positions, axis=1)
    corrupted = ids.copy()
    np.put_along_axis(corrupted, positions, 4, axis=1)  # [MASK]
    return {
        "input_ids": corrupted,
        "segment_ids": np.ones((batch, seq_len), np.int32),
        "positions": np.broadcast_to(np.arange(seq_len, dtype=np.int32), (batch, seq_len)).copy(),
        "masked_positions": positions,
        "masked_labels": labels,
        "masked_weights": np.ones((batch, num_masked), np.float32),
    }


def bench_jax(model_cfg, batches, steps: int, warmup: int, seed: int, steps_per_call: int) -> tuple[Timing, object]:
    import jax
    import jax.numpy as jnp

    from modernbert_jax import model as model_lib
    from modernbert_jax import optim, sharding
    from modernbert_jax.config import DEFAULT_SHARDING_RULES
    from modernbert_jax.train import state as state_lib, step as step_lib

    seq_len = batches[0]["input_ids"].shape[1]
    module = model_lib.MaskedLM(model_cfg)
    schedule = optim.warmup_stable_decay(8e-4, total_steps=10**6, warmup_steps=10)
    tx = optim.stable_adamw(schedule, max_lr=8e-4, mask=optim.decay_mask)
    mesh = sharding.make_mesh({"data": -1, "fsdp": 1, "tensor": 1})
    with sharding.activate(mesh, DEFAULT_SHARDING_RULES):
        p_shard = sharding.param_shardings(module, mesh, DEFAULT_SHARDING_RULES, jnp.zeros((1, seq_len), jnp.int32))
        s_shard = state_lib.state_shardings(module, tx, p_shard, mesh, seq_len)
        state = state_lib.init_state(module, tx, jax.random.key(seed), s_shard, seq_len)
        train_step = jax.jit(step_lib.make_train_step(module, tx, schedule, seed=seed, use_dropout=False),
                             donate_argnums=(0,))
        device_batches = [jax.device_put({k: v[None] for k, v in b.items()}) for b in batches]
        run = {"state": state, "step": 0}  # the train state threads through the timed calls

        def steps_back_to_back():
            for _ in range(steps_per_call):
                run["state"], metrics = train_step(run["state"], device_batches[run["step"] % len(device_batches)])
                run["step"] += 1
            return metrics

        timing = measure({"ours": steps_back_to_back}, repeats=steps, warmup=warmup, sync=jax.block_until_ready)["ours"]
    return timing, run["state"].params


def bench_torch(model_cfg, batches, steps: int, warmup: int, seed: int) -> Timing:
    import torch
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    from modernbert_jax.hf_families import config_to_hf

    torch.manual_seed(seed)
    torch.set_num_threads(os.cpu_count())
    hf = config_to_hf(model_cfg, "mlm")
    hf.update(sparse_prediction=True, sparse_pred_ignore_index=-100)
    model = ModernBertForMaskedLM(ModernBertConfig(**hf)).train()
    model.config._attn_implementation = "sdpa"
    opt = torch.optim.AdamW(model.parameters(), lr=8e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=1e-5)

    def to_torch(b):
        labels = torch.full(b["input_ids"].shape, -100, dtype=torch.long)
        rows = torch.arange(labels.shape[0])[:, None]
        labels[rows, torch.from_numpy(b["masked_positions"]).long()] = torch.from_numpy(b["masked_labels"]).long()
        return {"input_ids": torch.from_numpy(b["input_ids"]).long(),
                "attention_mask": torch.ones(b["input_ids"].shape, dtype=torch.long), "labels": labels}

    torch_batches = [to_torch(b) for b in batches]

    calls = iter(range(warmup + steps))

    def one_step():
        b = torch_batches[next(calls) % len(torch_batches)]
        opt.zero_grad(set_to_none=True)
        loss = model(**b).loss
        loss.backward()
        opt.step()
        return loss

    return measure({"torch": one_step}, repeats=steps, warmup=warmup)["torch"]


def measured_matmul_peak() -> float:
    """FLOP/s of a large float32 matmul on the default device (the CPU's practical peak)."""
    import jax
    import jax.numpy as jnp

    n = 2048
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    timing = measure({"matmul": lambda: f(a)}, repeats=5, sync=jax.block_until_ready)["matmul"]
    return 2 * n**3 / timing.median_s


def main(argv):
    del argv
    import jax
    import numpy as np

    from modernbert_jax import config as config_lib
    from modernbert_jax.train import metrics as metrics_lib

    out = provenance.ResultFile(_OUT.value, overwrite=_OVERWRITE.value)
    cfg = config_lib.model_config(_VARIANT.value)
    cfg.unlock()
    cfg.dtype = _DTYPE.value
    cfg.attention_impl = _ATTENTION.value
    cfg.max_position_embeddings = max(cfg.max_position_embeddings, _SEQ_LEN.value)
    cfg.lock()
    seq_len, batch = _SEQ_LEN.value, _BATCH.value
    num_masked = int(MASK_RATE * seq_len)
    rng = np.random.default_rng(_SEED.value)
    batches = [random_batch(rng, cfg.vocab_size, batch, seq_len, num_masked) for _ in range(2)]
    tokens_per_step = batch * seq_len

    jax_timing, params = bench_jax(cfg, batches, _STEPS.value, _WARMUP.value, _SEED.value, _STEPS_PER_CALL.value)
    ours = tokens_per_step * _STEPS_PER_CALL.value / jax_timing.median_s
    device = jax.devices()[0]
    on_cpu = device.platform == "cpu"
    peak = measured_matmul_peak() if on_cpu else metrics_lib.peak_flops_per_device()
    flops_per_token = metrics_lib.train_flops_per_token(params, cfg, seq_len, num_masked / seq_len)
    result = {
        "variant": _VARIANT.value, "seq_len": seq_len, "batch": batch, "dtype": _DTYPE.value,
        "attention_impl": _ATTENTION.value, "steps": _STEPS.value, "warmup": _WARMUP.value,
        "steps_per_call": _STEPS_PER_CALL.value,
        "device": device.device_kind, "num_devices": jax.device_count(), "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "ours_tokens_per_sec": ours,
        "ours_step_timing": jax_timing.to_dict(),
        "train_flops_per_token": flops_per_token,
        "peak_flops_per_device": peak,
        "peak_source": "measured float32 2048^3 matmul" if on_cpu else "datasheet dense bf16",
        "mfu": ours * flops_per_token / (peak * jax.device_count()) if peak else None,
    }
    if not _SKIP_TORCH.value:
        import torch

        torch_timing = bench_torch(cfg, batches, _STEPS.value, _WARMUP.value, _SEED.value)
        theirs = tokens_per_step / torch_timing.median_s
        result.update(torch_tokens_per_sec=theirs, torch_step_timing=torch_timing.to_dict(),
                      ratio_ours_over_torch=ours / theirs,
                      torch_threads=torch.get_num_threads())
    # Random batches: nothing is read, the seed makes them.
    out.write(result, config=provenance.command_line_config(), seed=_SEED.value,
              peers=() if _SKIP_TORCH.value else ("torch", "transformers"))
    print(json.dumps(result, indent=2))
    print(f"wrote {out.path}")


if __name__ == "__main__":
    app.run(main)
