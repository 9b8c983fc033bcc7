"""ModernBERT's recipe against each of its improvements removed in turn, and classic BERT (issue 12, table 1).

    python -m experiments.sweep --config=configs/sweeps/modernbert_ablations.py \
        --workdir=/tmp/modernbert_ablations --workers=2
    python -m experiments.sweep --config=configs/sweeps/modernbert_ablations.py:steps=2000 \
        --workdir=DIR --print_commands     # one command per point, for a scheduler

``arg`` keys: ``variant`` (the base size of ``configs/pretrain.py``: tiny | demo | base), ``steps``
(0 = the variant's own run length), ``seeds`` (3). Every point trains on the same offline corpus
for the same number of steps at the same batch and sequence length (the same token budget; padded
batches hold fewer real tokens in it) and is scored on the same packed validation rows.

The full recipe here is one launch: linear warmup over 5% of the steps, constant, then ModernBERT's
1-sqrt decay over the last 20% (its decay phase, folded in so a run ends annealed); the linear-decay
ablation decays linearly from the end of warmup, as BERT did.
"""

import ml_collections

from modernbert_jax import config as config_lib
from modernbert_jax import sweep

# Classic BERT: BERT's recipe (modernbert_jax.config.BERT_RECIPE) at the base's sizes, with its
# 4x-wide GELU MLP and BERT's 15% masking.
CLASSIC_BERT = {**{f"model.{k}": v for k, v in config_lib.BERT_RECIPE.items()}, "data.mask_rate": 0.15}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = config_lib.parse_arg(arg, variant="tiny", steps=0, seeds=3)
    base = config_lib.load_config(f"configs/pretrain.py:variant={args.variant}")
    hidden, intermediate = base.model.hidden_size, base.model.intermediate_size
    steps = args.steps or base.total_steps
    warmup = steps // 20
    cfg = ml_collections.ConfigDict()
    cfg.base = f"configs/pretrain.py:variant={args.variant}"
    cfg.entry = "pretrain"
    # No Hugging Face export: most ablations (GELU MLP, absolute positions, post-LN) are not
    # expressible as a transformers ModernBERT config. One evaluation, at the end, on more
    # validation rows than the variant's periodic one (the comparison is the point of the run).
    cfg.fixed = {"export_hf": False, "total_steps": steps, "eval_every": steps, "eval_batches": 32,
                 "optimizer": {"warmup_steps": warmup, "decay_steps": steps // 5}}
    linear_decay = {"optimizer.decay_shape": "linear", "optimizer.decay_steps": steps - warmup}
    ablations = [
        {"label": "ModernBERT recipe"},
        # GeGLU's input projection is twice as wide: 1.5x the GELU MLP's width keeps the parameter count.
        {"label": "GeGLU → GELU", "model.mlp": "gelu", "model.intermediate_size": intermediate * 3 // 2},
        {"label": "RoPE → absolute", "model.position_embedding": "absolute"},
        {"label": "local/global → global", "model.attention_pattern": "global"},
        # Post-LN normalises every sublayer's output, so the final norm goes with it (as in BERT).
        {"label": "pre-LN → post-LN", "model.norm_placement": "post", "model.final_norm": False},
        {"label": "packing → padding", "data.packing": False},
        {"label": "30% → 15% masking", "data.mask_rate": 0.15},
        {"label": "StableAdamW → AdamW", "optimizer.name": "adamw"},
        {"label": "WSD → linear decay", **linear_decay},
        # Classic BERT: every change at once, with its 4x-wide GELU MLP.
        {"label": "classic BERT", **CLASSIC_BERT, "model.intermediate_size": 4 * hidden, "data.packing": False,
         "optimizer.name": "adamw", **linear_decay},
    ]
    # Seed-major: every ablation's first seed runs before any second seed, so a sweep cut short
    # still compares every row.
    cfg.points = sweep.product(sweep.sweep(sweep.SEED, range(args.seeds)), ablations)
    cfg.metrics = ("eval.loss", "eval.accuracy", "train.tokens_per_sec", "train.packing_efficiency",
                   "peak_host_memory_mb", "peak_device_memory_mb")
    cfg.figure = {"kind": "bar", "metric": "eval.loss"}
    return cfg
