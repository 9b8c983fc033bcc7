"""MLM pretraining with the ModernBERT recipe, one phase per launch.

    python -m experiments.pretrain --config=configs/pretrain.py:variant=tiny --workdir=/tmp/mlm_tiny
    python -m experiments.pretrain --config=configs/pretrain.py:variant=base,phase=extend \
        --config.init_from=/ckpt/base_pretrain --workdir=/ckpt/base_extend
    python -m experiments.pretrain --config=configs/pretrain.py:variant=demo --workdir=/tmp/mlm_demo
    python -m experiments.pretrain --config=configs/pretrain.py:variant=tiny,phase=decay \
        --config.init_from="$(python -c 'from setfit_jax.fewshot import minilm_path; print(minilm_path())')" \
        --workdir=/tmp/minilm_decay

``arg`` keys: ``variant`` = demo | tiny | base | large (model size and run length; demo is the
tiny model for a ~2-3 minute CPU run), ``phase`` = pretrain | extend | decay:

* pretrain — T=1024, global RoPE θ=10k, linear warmup then constant LR, batch-size warmup;
* extend   — T=8192, global RoPE θ=160k, constant LR (lower peak), starts from ``init_from``;
* decay    — T=8192, θ=160k, 1-sqrt decay of the LR to 0 over the phase, starts from ``init_from``.

Tiny/demo variants scale T, batches and steps down (extend/decay use T=256) so every phase runs
on a CPU. Any field can be overridden: ``--config.total_steps=100 --config.optimizer.peak_lr=1e-3``.
Data defaults to the embedded offline corpus (TFDS ``modernbert_corpus``, built on first use);
``data.dataset`` takes any TFDS name and ``data.files`` globs of your own text or JSONL files.

Continued pretraining of a released checkpoint (the fourth command: all-MiniLM-L6-v2, a BERT,
on the offline corpus): ``init_from`` names a Hugging Face directory (config.json,
model.safetensors, tokenizer.json) of any family ``modernbert_jax.hf`` loads, and ``decay``
(1-sqrt decay to 0) is the natural recipe. The checkpoint's config.json is then the model block:
of ``model`` only the run's own fields (``train.loop.RUN_FIELDS``: attention_impl, dtype, dropout,
remat, ...) apply, and an architecture field overridden to another value than the checkpoint's
(``--config.model.hidden_size=...``) is an error naming it. The tokenizer rule: an empty
``data.tokenizer`` means the checkpoint's own tokenizer (its vocabulary is the model's;
``data.vocab_size`` is unused), and ``data.tokenizer`` still wins when set. Encoder, MLM head and
decoder bias carry over (a bare encoder such as this MiniLM gets a fresh head, tied decoder), and
``workdir/hf`` is a Hugging Face directory again, with the checkpoint's tokenizer files.
"""

import ml_collections

from modernbert_jax import config as config_lib

PHASES = ("pretrain", "extend", "decay")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = config_lib.parse_arg(arg, variant="tiny", phase="pretrain")
    variant, phase = args["variant"], args["phase"]
    if phase not in PHASES:
        raise ValueError(f"phase={phase!r} is not one of {PHASES}")
    if variant not in ("demo", "tiny", "base", "large"):
        raise ValueError(f"variant={variant!r} is not one of ('demo', 'tiny', 'base', 'large')")
    small = variant in ("demo", "tiny")

    cfg = ml_collections.ConfigDict()
    cfg.seed = 0
    cfg.variant = variant
    cfg.phase = phase
    model = config_lib.model_config("tiny" if small else variant)
    model.unlock()
    # Phase 1 trains every layer at θ=10k; context extension raises the global layers to 160k.
    model.global_rope_theta = 10_000.0 if phase == "pretrain" else 160_000.0
    if small:
        model.vocab_size = 4096
    model.lock()
    cfg.model = model
    # The model block as this file sets it, before overrides: with a Hugging Face init_from, a model
    # field that differs from it is one the run set, and must agree with the checkpoint (train.loop).
    cfg.model_defaults = ml_collections.ConfigDict(model.to_dict())
    cfg.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1})
    cfg.sharding_rules = config_lib.DEFAULT_SHARDING_RULES

    # Sequence length and batch (global rows). ModernBERT-base: 768 -> 4608 rows at T=1024 over
    # the first 50B tokens, micro-batches of 96; 576 rows at T=8192 afterwards.
    if small:
        cfg.seq_len = 128 if phase == "pretrain" else 256
        cfg.micro_batch_size = 8
        cfg.batch_size = 16 if phase == "pretrain" else 8
        cfg.batch_warmup_start = 8 if phase == "pretrain" else 0
        cfg.batch_warmup_tokens = 20 * 16 * 128 if phase == "pretrain" else 0
    else:
        cfg.seq_len = 1024 if phase == "pretrain" else 8192
        cfg.micro_batch_size = 96 if phase == "pretrain" else 12
        cfg.batch_size = 4608 if phase == "pretrain" else 576
        cfg.batch_warmup_start = 768 if phase == "pretrain" else 0
        cfg.batch_warmup_tokens = 50_000_000_000 if phase == "pretrain" else 0

    steps = {"demo": 300, "tiny": 200, "base": 400_000, "large": 400_000}[variant]
    cfg.total_steps = steps if phase == "pretrain" else steps // 4
    # Warmup/decay lengths follow --config.total_steps overrides (lazy references).
    total_steps = cfg.get_ref("total_steps")

    cfg.optimizer = ml_collections.ConfigDict()
    cfg.optimizer.name = "stable_adamw"  # | adamw (BERT's; see train.loop.make_optimizer)
    cfg.optimizer.peak_lr = {"pretrain": 8e-4, "extend": 3e-4, "decay": 3e-4}[phase]
    cfg.optimizer.b1 = 0.9
    cfg.optimizer.b2 = 0.98
    cfg.optimizer.eps = 1e-6
    cfg.optimizer.weight_decay = 1e-5
    # ModernBERT-base warms up over 3B tokens (~3% of phase 1 at full batch); we warm up in steps.
    cfg.optimizer.warmup_steps = total_steps // 20 if phase == "pretrain" else 0
    cfg.optimizer.decay_steps = total_steps if phase == "decay" else 0
    cfg.optimizer.final_lr_fraction = 0.0
    cfg.optimizer.decay_shape = "sqrt"  # 1-sqrt (ModernBERT) | linear (BERT) | cosine

    cfg.data = ml_collections.ConfigDict()
    cfg.data.dataset = "modernbert_corpus/demo" if small else "modernbert_corpus/full"
    cfg.data.data_dir = ""  # TFDS data_dir; empty = the package default
    cfg.data.files = ""  # comma-separated globs of your .txt/.jsonl files (replaces dataset)
    cfg.data.text_key = "text"
    cfg.data.validation_fraction = 0.01  # for data.files: share of documents held out by content hash
    # A sentencepiece .model path (trained there if missing), or a Hugging Face directory/tokenizer.json;
    # empty = a Hugging Face init_from's own tokenizer, else a sentencepiece model next to the corpus.
    cfg.data.tokenizer = ""
    cfg.data.vocab_size = cfg.model.vocab_size
    cfg.data.mask_rate = 0.30
    cfg.data.packing = True  # False: one sequence per row, padded to seq_len (BERT's batches)
    cfg.data.eval_mask_rate = 0.15

    cfg.eval_batch_size = 16 if small else 256
    cfg.eval_batches = 8 if small else 50
    cfg.eval_every = {"demo": 50, "tiny": 50}.get(variant, 5000)
    cfg.log_every = 10 if small else 100
    cfg.checkpoint_every = {"demo": 100, "tiny": 50}.get(variant, 5000)
    cfg.keep_checkpoints = 3
    # A newest checkpoint that fails verification stops the run naming the intact steps; True resumes
    # from the newest intact one instead (the corrupt step is kept, renamed <step>.corrupt).
    cfg.restore_fallback = False
    # Previous phase's workdir (extend/decay start from its latest weights), or a Hugging Face directory
    # (continued pretraining of a released checkpoint, see the docstring).
    cfg.init_from = ""
    cfg.export_hf = True
    cfg.progress_bar = True
    cfg.peak_flops_per_device = 0.0  # 0 = the datasheet value of a known accelerator (MFU)
    return cfg
