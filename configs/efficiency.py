"""Inference efficiency of one architecture (the ModernBERT paper's efficiency table): `experiments.efficiency`.

    python -m experiments.run_point --entry=efficiency --config=configs/efficiency.py:architecture=bert \
        --config.scale=0.125 --workdir=/tmp/efficiency_bert
    python -m experiments.sweep --config=configs/sweeps/efficiency.py --workdir=DIR   # both, one table

``arg`` keys: ``architecture`` (modernbert | bert). ``scale`` 1 is the base models (a GPU); a CPU
needs ~0.125 (layers and width shrunk in proportion, recorded in the result).
"""

import ml_collections

from modernbert_jax import config as config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = config_lib.parse_arg(arg, architecture="modernbert")
    cfg = ml_collections.ConfigDict()
    cfg.architecture = args.architecture  # modernbert | bert
    cfg.seed = 0  # weights and sequences
    cfg.scale = 1.0  # layers and width of the base models multiplied by this
    cfg.num_sequences = 64  # sequences in each of the four sets (the paper: 8,192)
    cfg.lengths = (512, 8192)  # T of the short and long sets
    # CPUs report no memory limit: the largest batch is found against this many GiB there.
    cfg.memory_budget_gb = 16.0
    cfg.dtype = "auto"  # bfloat16 on accelerators, float32 on CPU
    # ModernBERT: its own kernels (pallas on GPU; blocked local / dense global on CPU). BERT: dense
    # masked attention over padded rows, as BERT runs.
    cfg.modernbert_attention_impl = "auto"
    cfg.bert_attention_impl = "xla"
    cfg.warmup = 1  # untimed passes over each set (compilation)
    cfg.repeats = 3  # timed passes; tokens/s from their median
    return cfg
