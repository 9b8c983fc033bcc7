"""ModernBERT-base vs BERT-base inference efficiency (issue 12, table 2; the paper's Table 3).

    python -m experiments.sweep --config=configs/sweeps/efficiency.py --workdir=DIR     # GPU, full size
    python -m experiments.sweep --config=configs/sweeps/efficiency.py:scale=0.125,num_sequences=8,repeats=2 \
        --workdir=DIR                                                                    # this CPU

One point per architecture, so the table reads like the paper's: a row a model, tokens/s on the
fixed and variable sets at 512 and 8192, and the largest batch at each length. ``arg`` keys:
``scale`` (1 = the base models), ``num_sequences`` (per set), ``repeats`` (timed passes).
"""

import ml_collections

from modernbert_jax import config as config_lib
from modernbert_jax import sweep


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = config_lib.parse_arg(arg, scale=1.0, num_sequences=64, repeats=3)
    cfg = ml_collections.ConfigDict()
    cfg.base = "configs/efficiency.py"
    cfg.entry = "efficiency"
    cfg.fixed = {"scale": args.scale, "num_sequences": args.num_sequences, "repeats": args.repeats}
    cfg.points = sweep.sweep("architecture", ["modernbert", "bert"])
    cfg.metrics = tuple(f"{mode}_{length}_tokens_per_sec" for length in (512, 8192) for mode in ("fixed", "variable")
                        ) + ("max_batch_512", "max_batch_8192", "params_millions")
    cfg.figure = {"kind": "bar", "metric": [m for m in cfg.metrics if m.endswith("tokens_per_sec")],
                  "ylabel": "inference tokens/s"}
    return cfg
