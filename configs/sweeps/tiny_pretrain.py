"""Two tiny pretraining runs (seeds 0 and 1), about a minute of CPU time: try the sweep runner with it.

    python -m experiments.sweep --config=configs/sweeps/tiny_pretrain.py --workdir=/tmp/sweep_tiny
    python -m experiments.sweep --config=configs/sweeps/tiny_pretrain.py:steps=40,seeds=3 \
        --workdir=/tmp/sweep_tiny40 --print_commands

``arg`` keys: ``steps`` (training steps per point), ``seeds`` (how many seeds, 0..n-1),
``tokenizer`` (a sentencepiece ``.model`` path, trained there on first use; empty = next to the
corpus in the cache). The text is three packages of the running Python's standard library, so
nothing has to be built first; a 2-layer, 64-wide model at T=64.
"""

import json
import os

import ml_collections

from modernbert_jax import config as config_lib
from modernbert_jax import sweep

STDLIB = os.path.dirname(os.path.dirname(json.__file__))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = config_lib.parse_arg(arg, steps=6, seeds=2, tokenizer="")
    cfg = ml_collections.ConfigDict()
    cfg.base = "configs/pretrain.py:variant=tiny"
    cfg.entry = "pretrain"
    cfg.fixed = {
        "model": {"num_layers": 2, "hidden_size": 64, "num_heads": 2, "intermediate_size": 128,
                  "vocab_size": 512, "local_attention": 16},
        "data": {"files": f"{STDLIB}/json/*.py,{STDLIB}/email/*.py,{STDLIB}/http/*.py",
                 "validation_fraction": 0.2, "vocab_size": 512, "tokenizer": args.tokenizer},
        "seq_len": 64, "micro_batch_size": 8, "batch_size": 8, "batch_warmup_start": 0,
        "total_steps": args.steps, "optimizer": {"warmup_steps": 2, "peak_lr": 3e-3},
        # One evaluation, at the end; a log line and (every 2 steps) a checkpoint to resume from.
        "log_every": 1, "eval_every": args.steps, "eval_batch_size": 8, "eval_batches": 2,
        "checkpoint_every": 2, "export_hf": False, "progress_bar": False,
    }
    cfg.points = sweep.seeds([{}], range(args.seeds))
    cfg.metrics = ("eval.loss", "eval.accuracy", "train.loss", "train.tokens_per_sec", "peak_host_memory_mb")
    cfg.figure = {"kind": "bar", "metric": "eval.loss"}
    return cfg
