"""What the index-input checks cost: a jitted MLM forward and gradient with ``model.check_inputs`` on vs off.

    python -m experiments.bench_input_checks --variant=base --arch=modernbert --seq_len=512 --batch=8 \
        --out=experiments/results/bench_input_checks_cpu_base.json
    python -m experiments.bench_input_checks --variant=base --arch=bert --seq_len=512 --batch=32 \
        --out=experiments/results/bench_input_checks_NVIDIA_H200_bert.json

The checks (`modernbert_jax.input_checks`) reduce each index input to a few scalars on the device
and hand them to a host callback; ``host_check`` times the same checks on the host batch, which is
what our own entry points run instead (their programs hold no callback). ``--arch=modernbert`` runs ids and segments (RoPE: no position
table); ``--arch=bert`` (ModernBERT's sizes with BERT's recipe) adds absolute positions and token
types. Both time the forward with sparse prediction (``masked_positions``, 30% of T, also checked)
and the gradient of its loss, on the same packed random rows (two sequences a row). Each call
is timed with `experiments.timing.measure` (interleaved on/off, median reported, load average
recorded); the JSON at ``--out`` carries the provenance block.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import ml_collections
from absl import app, flags

from experiments.timing import measure
from modernbert_jax import config as config_lib
from modernbert_jax import model, provenance
from modernbert_jax.data import packing

_VARIANT = flags.DEFINE_enum("variant", "base", ["tiny", "base", "large"], "Model size (modernbert_jax.config).")
_ARCH = flags.DEFINE_enum("arch", "modernbert", ["modernbert", "bert"], "modernbert, or the sizes with BERT's recipe.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 512, "Tokens per row.", lower_bound=4)
_BATCH = flags.DEFINE_integer("batch", 8, "Rows per call.", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 10, "Timed calls per setting (median reported).", lower_bound=1)
_DTYPE = flags.DEFINE_enum("dtype", None, ["float32", "bfloat16"], "Compute dtype; default float32 on CPU, bfloat16 on GPU.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of weights and rows.", lower_bound=0)
_OUT = flags.DEFINE_string("out", None, "Results JSON, e.g. experiments/results/bench_input_checks_cpu_base.json.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a result of another commit at --out.")
flags.mark_flag_as_required("out")

MASK_RATE = 0.30


def model_block(check_inputs: bool) -> ml_collections.ConfigDict:
    cfg = config_lib.model_config(_VARIANT.value)
    fields = dict(check_inputs=check_inputs, dtype=_DTYPE.value or ("bfloat16" if jax.default_backend() == "gpu" else "float32"))
    if _ARCH.value == "bert":
        fields.update(config_lib.BERT_RECIPE, embedding_dropout=0.0, attention_dropout=0.0, mlp_dropout=0.0,
                      max_position_embeddings=max(cfg.max_position_embeddings, _SEQ_LEN.value))
    return config_lib.replaced(cfg, **fields)


def packed_rows(rng: np.random.Generator, vocab: int) -> dict[str, np.ndarray]:
    """``--batch`` rows of two sequences each (split at a random point) and sorted masked positions."""
    seq_len, batch = _SEQ_LEN.value, _BATCH.value
    rows = []
    for _ in range(batch):
        cut = int(rng.integers(1, seq_len))
        rows.append([list(rng.integers(1, vocab, cut)), list(rng.integers(1, vocab, seq_len - cut))])
    arrays = packing.rows_to_arrays(rows, seq_len, pad_id=0)
    num_masked = max(1, int(MASK_RATE * seq_len))
    arrays["masked_positions"] = np.stack(
        [np.sort(rng.choice(seq_len, num_masked, replace=False)) for _ in range(batch)]).astype(np.int32)
    arrays["token_type_ids"] = np.zeros((batch, seq_len), np.int32)
    return arrays


def main(_):
    out = provenance.ResultFile(_OUT.value, overwrite=_OVERWRITE.value)
    rng = np.random.default_rng(_SEED.value)
    modules = {name: model.MaskedLM(model_block(on)) for name, on in (("on", True), ("off", False))}
    params = model.init_params(modules["on"], jax.random.key(_SEED.value))
    batch = {k: jnp.asarray(v) for k, v in packed_rows(rng, modules["on"].config.vocab_size).items()}

    def loss(module, p, b):
        logits = module.apply({"params": p}, b["input_ids"], b["segment_ids"], b["positions"],
                              token_type_ids=b["token_type_ids"], masked_positions=b["masked_positions"])
        return jax.nn.logsumexp(logits, axis=-1).mean()

    host_batch = jax.device_get(batch)
    checked_cfg = modules["on"].config

    def host_check():
        # What our entry points (pretraining loop, GLiNER, SetFit) pay instead: the same checks on the
        # host batch, then the "off" program.
        model.check_encoder_inputs(checked_cfg, host_batch["input_ids"], host_batch["segment_ids"],
                                          host_batch["positions"], host_batch["token_type_ids"])
        model.check_masked_positions(host_batch["masked_positions"], _SEQ_LEN.value)

    fns = {"host_check": host_check}
    for name, module in modules.items():
        forward = jax.jit(lambda p, b, m=module: loss(m, p, b))
        gradient = jax.jit(jax.grad(lambda p, b, m=module: loss(m, p, b)))
        fns[f"forward_{name}"] = lambda f=forward: f(params, batch)
        fns[f"gradient_{name}"] = lambda f=gradient: f(params, batch)
    timings = measure(fns, repeats=_REPEATS.value, sync=jax.block_until_ready)
    results = {"device": str(jax.devices()[0].device_kind), "backend": jax.default_backend(),
               "variant": _VARIANT.value, "arch": _ARCH.value, "seq_len": _SEQ_LEN.value, "batch": _BATCH.value,
               "dtype": modules["on"].config.dtype, "timings": {k: t.to_dict() for k, t in timings.items()}}
    for kind in ("forward", "gradient"):
        on, off = timings[f"{kind}_on"].median_s, timings[f"{kind}_off"].median_s
        results[f"{kind}_overhead"] = on / off - 1.0
        print(f"{kind:8s} checks on {on * 1e3:9.2f} ms | off {off * 1e3:9.2f} ms | overhead {100 * (on / off - 1):+.1f}%")
    host, forward_off = timings["host_check"].median_s, timings["forward_off"].median_s
    results["host_check_fraction_of_forward"] = host / forward_off
    print(f"host check {host * 1e3:.3f} ms = {100 * host / forward_off:.2f}% of the unchecked forward")
    out.write(results, config=provenance.command_line_config(), seed=_SEED.value)
    print(f"wrote {out.path}")


if __name__ == "__main__":
    app.run(main)
