"""Forward throughput (tokens/s) of our encoder vs Hugging Face `transformers`, side by side.

Same machine, same config, same weights (one checkpoint directory, loaded by both sides), same
sequences. Two settings from the ModernBERT paper: ``fixed`` (every sequence T tokens) and
``variable`` (lengths ~ Normal(T/2, standard deviation T/8), the paper's 256 ± 64 at T=512:
`experiments.efficiency.sequence_lengths`). On the variable setting `transformers` pads each
batch to its longest sequence; we pack sequences into rows of T (ModernBERT's unpadding) — each
side in its own best form. Tokens/s counts real (non-padding) tokens only.

``--arch=modernbert`` (the default) writes our randomly initialised ``--variant`` encoder out
with `hf.save_pretrained`. The papers' other backbones (``--arch`` in
`experiments.backbones.ARCHS`: bert, roberta, xlm-roberta, mpnet, deberta-v3) are random
``transformers`` encoders at the released ``--size`` (`backbones.write_random_backbone`), which
we read with `hf.from_pretrained`. `transformers` runs each family with its fastest attention
on this install: ``sdpa`` where the model class supports it (ModernBERT, BERT, RoBERTa, XLM-R),
else ``eager`` (MPNet and DeBERTa-v2/v3 have no SDPA path); the JSON records which. Our
relative-attention families (MPNet, DeBERTa) run on the dense ``xla`` attention path.

    python -m experiments.bench_throughput --variant=base --seq_len=512 --num_sequences=16 \
        --out=experiments/results/bench_throughput_cpu.json
    python -m experiments.bench_throughput --arch=deberta-v3 --seq_len=512 --num_sequences=16 \
        --out=experiments/results/bench_throughput_deberta-v3_cpu.json

Each side: one warm-up call, then ``--repeats`` timed calls; tokens/s from the median
(`experiments.timing`, which also records the minimum, every time and the load average).
The JSON at ``--out`` (required) carries the provenance block; a file there holding a result of
another commit is refused before anything runs unless ``--overwrite``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from experiments import backbones, efficiency
from experiments.timing import Timing, measure
from modernbert_jax import config as config_lib
from modernbert_jax import hf, model, provenance
from modernbert_jax.data import packing

ARCH = flags.DEFINE_enum("arch", "modernbert", ("modernbert",) + backbones.ARCHS,
                         "encoder family: modernbert (our config, --variant) or a backbone of --size")
VARIANT = flags.DEFINE_string("variant", "base", "--arch=modernbert model size: tiny | base | large")
SIZE = flags.DEFINE_enum("size", "base", ("base", "tiny"), "other --arch: the released base shape or a tiny one")
SEQ_LEN = flags.DEFINE_integer("seq_len", 512, "maximum sequence length T", lower_bound=1)
NUM_SEQ = flags.DEFINE_integer("num_sequences", 16, "sequences per timed call", lower_bound=1)
REPEATS = flags.DEFINE_integer("repeats", 5, "timed repetitions (median reported)", lower_bound=1)
DTYPE = flags.DEFINE_string("dtype", None, "compute dtype; default float32 on CPU, bfloat16 on GPU")
IMPL = flags.DEFINE_string("impl", "auto", "our attention backend: xla | blocked | pallas | auto")
OUT = flags.DEFINE_string("out", None, "JSON output path, e.g. experiments/results/bench_throughput_<backend>.json")
OVERWRITE = flags.DEFINE_bool("overwrite", False, "replace a result of another commit at --out")
SEED = flags.DEFINE_integer("seed", 0, "seed for weights and sequences", lower_bound=0)
flags.mark_flag_as_required("out")


def bench_ours(module, params, seqs: list[np.ndarray], seq_len: int, repeats: int) -> Timing:
    rows = packing.best_fit_decreasing([len(s) for s in seqs], seq_len)
    batch = packing.rows_to_arrays([[seqs[i] for i in row] for row in rows], seq_len,
                                   pad_id=module.config.pad_token_id)
    args = [jnp.asarray(batch[k]) for k in ("input_ids", "segment_ids", "positions")]
    fwd = jax.jit(lambda p, i, s, q: module.apply({"params": p}, i, s, q))
    return measure({"ours": lambda: fwd(params, *args)}, repeats=repeats, sync=jax.block_until_ready)["ours"]


def bench_transformers(ref, seqs: list[np.ndarray], pad_id: int, device: str, dtype, repeats: int) -> Timing:
    import torch

    longest = max(len(s) for s in seqs)
    # The family's pad id: RoBERTa-style models derive position ids from input_ids != pad.
    ids = np.full((len(seqs), longest), pad_id, np.int64)
    mask = np.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, : len(s)], mask[i, : len(s)] = s, 1
    ids_t, mask_t = torch.tensor(ids, device=device), torch.tensor(mask, device=device)

    def run():
        with torch.inference_mode(), torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
            ref(input_ids=ids_t, attention_mask=mask_t)
        if device == "cuda":
            torch.cuda.synchronize()

    return measure({"transformers": run}, repeats=repeats)["transformers"]


def write_checkpoint(arch: str, directory: Path, seed: int) -> None:
    """The random checkpoint both sides read: our ModernBERT ``--variant`` or a backbone of ``--size``."""
    if arch != "modernbert":
        backbones.write_random_backbone(arch, directory, size=SIZE.value, seed=seed)
        return
    cfg = config_lib.model_config(VARIANT.value).copy_and_resolve_references()
    cfg.pad_token_id = 0
    module = model.Encoder(cfg)
    hf.save_pretrained(directory, module, model.init_params(module, jax.random.key(seed)))


def fastest_attention(directory: Path) -> str:
    """``sdpa`` where the checkpoint's `transformers` class implements it, else ``eager``."""
    import transformers

    cls = transformers.MODEL_MAPPING[type(transformers.AutoConfig.from_pretrained(directory))]
    return "sdpa" if cls._supports_sdpa else "eager"


def main(_):
    import torch
    import transformers

    out = provenance.ResultFile(OUT.value, overwrite=OVERWRITE.value)
    backend = jax.default_backend()
    dtype = DTYPE.value or ("bfloat16" if backend == "gpu" else "float32")
    device = "cuda" if backend == "gpu" else "cpu"
    torch.set_num_threads(os.cpu_count())
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / ARCH.value
        write_checkpoint(ARCH.value, directory, SEED.value)
        loaded, params = hf.from_pretrained(directory)
        attn = fastest_attention(directory)
        ref = transformers.AutoModel.from_pretrained(directory, attn_implementation=attn).eval().to(device)
    cfg = config_lib.replaced(loaded.config, dtype=dtype, attention_impl=IMPL.value)
    module = model.Encoder(cfg)
    # Packed rows are SEQ_LEN long and positions restart per segment, so SEQ_LEN itself is what must fit.
    if SEQ_LEN.value > config_lib.max_length(cfg):
        raise ValueError(f"--seq_len={SEQ_LEN.value} is longer than --arch={ARCH.value} takes "
                         f"({config_lib.max_length(cfg)} positions)")
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]

    rng = np.random.default_rng(SEED.value)
    results = {"device": str(jax.devices()[0].device_kind), "backend": backend, "arch": ARCH.value,
               "size": VARIANT.value if ARCH.value == "modernbert" else SIZE.value,
               "seq_len": SEQ_LEN.value, "num_sequences": NUM_SEQ.value, "dtype": dtype, "impl": IMPL.value,
               "transformers_class": type(ref).__name__, "transformers_attn_implementation": attn,
               "settings": {}}
    for mode in ("fixed", "variable"):
        seqs = efficiency.sequences(efficiency.sequence_lengths(mode, NUM_SEQ.value, SEQ_LEN.value, rng),
                                    cfg.vocab_size, rng)
        tokens = sum(len(s) for s in seqs)
        t_ours = bench_ours(module, params, seqs, SEQ_LEN.value, REPEATS.value)
        t_ref = bench_transformers(ref, seqs, cfg.pad_token_id, device, torch_dtype, REPEATS.value)
        row = {"tokens": tokens, "ours_tokens_per_s": tokens / t_ours.median_s,
               "transformers_tokens_per_s": tokens / t_ref.median_s,
               "ratio_ours_over_transformers": t_ref.median_s / t_ours.median_s,
               "ours_timing": t_ours.to_dict(), "transformers_timing": t_ref.to_dict()}
        results["settings"][mode] = row
        print(f"{ARCH.value} {mode:9s} ours {row['ours_tokens_per_s']:10.0f} tok/s | transformers "
              f"{row['transformers_tokens_per_s']:10.0f} tok/s | ratio {row['ratio_ours_over_transformers']:.2f}x")
    out.write(results, config=provenance.command_line_config(), seed=SEED.value, peers=("torch", "transformers"))
    print(f"wrote {out.path}")


if __name__ == "__main__":
    app.run(main)
