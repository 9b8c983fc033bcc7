"""The shared model block of every config: ModernBERT sizes, and classic BERT as a variant.

Every architectural choice is a field so ablations flip it from the command line
(``--config.model.mlp=gelu``). ``model_config(variant)`` returns a locked ``ConfigDict``:
setting a field that does not exist raises an error naming it.

Config files (``configs/*.py``) are loaded by path with their arg, big_vision style:
``load_config("configs/pretrain.py:variant=tiny")``, whose ``get_config(arg)`` reads the arg
with ``parse_arg``.

Checks: ``validate`` (the model block: every choice and number in its range) and
``validate_pretraining`` (a whole pretraining config, where a run starts) raise naming the field;
``check_number`` is the one range check the packages use for their public numeric arguments.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import ml_collections
import numpy as np


VARIANTS = ("tiny", "base", "large", "bert")
# The Hugging Face families whose encoders are configurations of our modules (`modernbert_jax.hf`).
ARCHITECTURES = ("modernbert", "bert", "roberta", "xlm-roberta", "mpnet", "deberta-v2")

# The repository root, against which relative config paths resolve when the working
# directory is elsewhere (a test, a notebook).
REPO_ROOT = Path(__file__).resolve().parents[1]

# Logical-axis rules: parameter axes (embed, mlp, heads, kv, vocab) and activation axes
# (act_*) mapped onto the mesh axes (data, fsdp, tensor). Separate activation names let the
# batch dimension take fsdp while parameters' embed dimension takes it too (MaxText's idea).
DEFAULT_SHARDING_RULES = (
    ("act_batch", ("data", "fsdp")),
    ("act_length", None),
    ("act_embed", None),
    ("act_heads", "tensor"),
    ("act_kv", None),
    ("act_mlp", "tensor"),
    ("act_vocab", "tensor"),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv", None),
    ("vocab", "tensor"),
    ("norm", None),
)


def modernbert_config(**sizes) -> ml_collections.ConfigDict:
    """ModernBERT-base (the released model) with ``sizes`` overriding any field."""
    cfg = ml_collections.ConfigDict()
    cfg.architecture = "modernbert"
    cfg.vocab_size = 50368
    cfg.hidden_size = 768
    cfg.num_layers = 22
    cfg.num_heads = 12
    cfg.intermediate_size = 1152
    cfg.max_position_embeddings = 8192
    # Positions: "rope" (NeoX-style rotary), "absolute" (learned table, BERT) or "none" (only
    # relative attention carries position, DeBERTa-v3's position_biased_input=False).
    cfg.position_embedding = "rope"
    # Absolute table row of position p is p + position_offset: RoBERTa, XLM-R and MPNet number
    # positions from padding_idx + 1 (so their usable length is max_position_embeddings - offset).
    cfg.position_offset = 0
    # Relative attention: "none"; "disentangled" (DeBERTa-v2/v3: content->position and
    # position->content scores over log-bucketed relative positions, `pos_att_type`); "buckets"
    # (MPNet: a learned per-head bias over T5-style buckets, shared by all layers).
    cfg.relative_attention = "none"
    cfg.relative_buckets = 0  # DeBERTa position_buckets (0: none) / MPNet relative_attention_num_buckets
    cfg.max_relative_positions = 0  # DeBERTa max_relative_positions / MPNet's max_distance (128)
    cfg.pos_att_type = "c2p|p2c"  # DeBERTa: which disentangled terms ("c2p", "p2c", "c2p|p2c")
    cfg.share_att_key = True  # DeBERTa: position keys/queries reuse the content projections
    cfg.norm_rel_ebd = False  # DeBERTa: LayerNorm on the relative embedding table
    cfg.conv_kernel_size = 0  # DeBERTa-v2: a convolution beside layer 0 (0: none)
    cfg.conv_act = "tanh"
    cfg.type_vocab_size = 0
    # Attention pattern: "alternating" (layer i global iff i % global_attn_every_n_layers == 0),
    # "global" (every layer) or "local" (every layer).
    cfg.attention_pattern = "alternating"
    cfg.global_attn_every_n_layers = 3
    # The FULL local window in tokens (HF's `local_attention`); attention code takes the
    # half-width, `layer_half_window(cfg, layer)` = local_attention // 2 = 64.
    cfg.local_attention = 128
    cfg.global_rope_theta = 160_000.0
    cfg.local_rope_theta = 10_000.0
    cfg.mlp = "geglu"  # "geglu": Wo(act(x1) * x2); "gelu": Wo(act(Wi x))
    cfg.hidden_activation = "gelu"  # exact (erf) GELU; "gelu_tanh" for the approximation
    cfg.norm_placement = "pre"  # "pre" (ModernBERT) or "post" (BERT)
    cfg.norm_eps = 1e-5
    cfg.norm_bias = False
    cfg.attention_bias = False
    cfg.mlp_bias = False
    cfg.head_bias = False  # MLM prediction head dense (HF: classifier_bias)
    cfg.decoder_bias = True
    cfg.first_layer_attn_norm = False  # ModernBERT: layer 0 has no attention pre-norm
    cfg.final_norm = True
    cfg.embedding_dropout = 0.0
    cfg.attention_dropout = 0.0
    cfg.mlp_dropout = 0.0
    cfg.pad_token_id = 50283
    cfg.initializer_range = 0.02
    cfg.initializer_cutoff_factor = 2.0
    cfg.classifier_pooling = "cls"  # "cls" or "mean"
    # Task heads (model.SequenceClassifier / TokenClassifier), as each Hugging Face family builds
    # them: "prediction" (ModernBERT) puts the MLM head's transform (dense -> GELU -> norm) on the
    # pooled vector and on every token; "pooler" (BERT and its descendants) puts a dense ->
    # `pooler_activation` on the pooled vector only.
    cfg.classifier_head = "prediction"
    cfg.pooler_activation = "tanh"  # "tanh" (BERT, RoBERTa, MPNet) or "gelu" (DeBERTa's pooler_hidden_act)
    cfg.pooler_dropout = 0.0  # before the pooler's dense (RoBERTa, MPNet and DeBERTa have one)
    cfg.classifier_dropout = 0.0  # before the final classifier
    # Compute dtype; parameters stay float32. "auto": bfloat16 on GPU/TPU, float32 on CPU.
    cfg.dtype = "auto"
    # Dense-layer matmuls: "auto" runs them in `dtype`; "bfloat16" casts their inputs to
    # bfloat16 and accumulates in float32 (torch.autocast on CPU; fast with AMX/AVX512-BF16).
    cfg.matmul_dtype = "auto"
    # xla | blocked | pallas | pallas_interpret | auto (pallas on GPU; blocked local / xla
    # global elsewhere); see `modernbert_jax.attention`.
    cfg.attention_impl = "auto"
    cfg.remat = False  # rematerialise each layer in the backward pass
    # Check index inputs (ids, positions, token types, segments, masked positions) in every forward,
    # also under jit (`modernbert_jax.input_checks`); off only for speed once inputs are trusted, or
    # for jax.export (which cannot serialise the host callback).
    cfg.check_inputs = True
    cfg.update(sizes)
    return cfg


def model_config(variant: str = "tiny") -> ml_collections.ConfigDict:
    """The model block for ``variant`` in tiny | base | large | bert (all-MiniLM-L6-v2 sizes)."""
    if variant == "base":
        cfg = modernbert_config()
    elif variant == "large":
        cfg = modernbert_config(hidden_size=1024, num_layers=28, num_heads=16, intermediate_size=2624)
    elif variant == "tiny":
        # CPU-sized for tests and demos; keeps the alternating pattern and a window shorter
        # than typical sequences so local attention is exercised.
        cfg = modernbert_config(
            vocab_size=8192, hidden_size=128, num_layers=4, num_heads=4, intermediate_size=256,
            max_position_embeddings=1024, local_attention=32, pad_token_id=0,
        )
    elif variant == "bert":
        cfg = bert_config()
    else:
        raise ValueError(f"unknown model variant {variant!r}; expected one of {VARIANTS}")
    cfg.lock()
    return cfg


# What makes a model classic BERT rather than ModernBERT, whatever its sizes (the ablation sweep
# applies it to ModernBERT's sizes).
BERT_RECIPE = dict(
    architecture="bert", position_embedding="absolute", type_vocab_size=2, attention_pattern="global",
    mlp="gelu", norm_placement="post", norm_eps=1e-12, norm_bias=True, attention_bias=True, mlp_bias=True,
    head_bias=True, first_layer_attn_norm=True, final_norm=False, embedding_dropout=0.1,
    attention_dropout=0.1, mlp_dropout=0.1, classifier_head="pooler", classifier_dropout=0.1,
)


def bert_config(**sizes) -> ml_collections.ConfigDict:
    """Classic BERT as a configuration of the same modules (defaults: all-MiniLM-L6-v2)."""
    cfg = modernbert_config(
        vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12, intermediate_size=1536,
        max_position_embeddings=512, pad_token_id=0, **BERT_RECIPE,
    )
    cfg.update(sizes)
    return cfg


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _typed(key: str, value: str, default):
    """``value`` as the type of ``default`` (bool, int, float or str)."""
    if isinstance(default, bool):  # before int: bool is an int subclass
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ValueError(f"config arg {key}={value!r} does not parse as bool (one of {_TRUE + _FALSE}, any case)")
    for kind in (int, float):
        if isinstance(default, kind):
            try:
                return kind(value)
            except ValueError:
                raise ValueError(f"config arg {key}={value!r} does not parse as {kind.__name__}") from None
    return value


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
    """big_vision-style ``"a=1,b=x"`` → ConfigDict, each value typed like its default.

    ``demo=true``, ``demo=1`` and ``demo=True`` all mean True when the default is a bool;
    ``shots=8`` is an int when the default is an int. Keys not given keep their default.
    """
    for key, default in defaults.items():
        if not isinstance(default, (bool, int, float, str)):
            raise TypeError(f"default of config arg {key!r} is a {type(default).__name__}; "
                            "parse_arg types values from bool, int, float or str defaults")
    out = dict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"config arg {item!r} is not of the form key=value")
        if key not in defaults:
            raise ValueError(f"unknown config arg {key!r}; expected one of {sorted(defaults)}")
        out[key] = _typed(key, value, defaults[key])
    return ml_collections.ConfigDict(out)


def load_config(spec: str) -> ml_collections.ConfigDict:
    """The config of ``"path/to/file.py[:arg]"``: the file's ``get_config(arg)``.

    A relative path is looked up in the working directory, then in the repository root.
    """
    path_str, sep, arg = spec.partition(":")
    path = Path(path_str)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, REPO_ROOT / path]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise FileNotFoundError(f"config file {path_str!r} not found (looked at {', '.join(map(str, candidates))})")
    module_spec = importlib.util.spec_from_file_location(f"config_file_{found.stem}", found)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    get_config = getattr(module, "get_config", None)
    if not callable(get_config):
        raise ValueError(f"config file {found} defines no get_config(arg) function")
    # As ml_collections' config_flags: without ":arg" the function is called with no argument.
    return get_config(arg) if sep else get_config()


def layer_half_window(cfg: ml_collections.ConfigDict, layer: int) -> int | None:
    """Half-width of layer ``layer``'s local window (``local_attention // 2``), or None when the layer is global."""
    if cfg.attention_pattern == "global":
        return None
    if cfg.attention_pattern == "alternating" and layer % cfg.global_attn_every_n_layers == 0:
        return None
    return cfg.local_attention // 2


def max_length(cfg: ml_collections.ConfigDict) -> int:
    """The longest sequence the model block takes: its absolute table's rows past the offset."""
    if cfg.position_embedding == "absolute":
        return cfg.max_position_embeddings - cfg.position_offset
    return cfg.max_position_embeddings


def replaced(cfg: ml_collections.ConfigDict, **fields) -> ml_collections.ConfigDict:
    """A validated, locked copy of the model block ``cfg`` with ``fields`` replaced."""
    out = ml_collections.ConfigDict(cfg.to_dict())
    out.update(fields)
    validate(out)
    out.lock()
    return out


def check_number(name: str, value, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, integer: bool = False) -> None:
    """Raise naming ``name`` unless ``value`` is a finite number in the range (an integer with ``integer``).

    ``low``/``high`` are inclusive bounds, exclusive with ``low_open``/``high_open``; ``None`` is
    unbounded. A bool is not a number here (``True`` would pass as 1). TypeError for a wrong type,
    ValueError for a value out of range, both with the accepted range.
    """
    kind = "an integer" if integer else "a number"
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high}")
    if low is not None and high is not None:
        accepted = f"{kind} in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    else:
        accepted = " ".join([kind, *bounds])
    types = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, types):
        raise TypeError(f"{name}={value!r} ({type(value).__name__}) must be {accepted}")
    # Written so that NaN fails every comparison; infinity is no learning rate or size either.
    ok = math.isfinite(value)
    ok = ok and (low is None or (value > low if low_open else value >= low))
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
        raise ValueError(f"{name}={value!r} must be {accepted}")


# Numeric fields of the model block: (low, high, low_open, high_open, integer).
_MODEL_NUMBERS = {
    "vocab_size": (1, None, False, False, True),
    "hidden_size": (1, None, False, False, True),
    "num_layers": (1, None, False, False, True),
    "num_heads": (1, None, False, False, True),
    "intermediate_size": (1, None, False, False, True),
    "max_position_embeddings": (1, None, False, False, True),
    "type_vocab_size": (0, None, False, False, True),  # 0: no token-type table
    "position_offset": (0, None, False, False, True),
    "relative_buckets": (0, None, False, False, True),
    "max_relative_positions": (0, None, False, False, True),
    "conv_kernel_size": (0, None, False, False, True),
    "global_attn_every_n_layers": (1, None, False, False, True),
    "local_attention": (0, None, False, False, True),
    "global_rope_theta": (0, None, True, False, False),
    "local_rope_theta": (0, None, True, False, False),
    "norm_eps": (0, None, True, False, False),
    "embedding_dropout": (0, 1, False, True, False),
    "attention_dropout": (0, 1, False, True, False),
    "mlp_dropout": (0, 1, False, True, False),
    "pooler_dropout": (0, 1, False, True, False),
    "classifier_dropout": (0, 1, False, True, False),
    "pad_token_id": (0, None, False, False, True),
    "initializer_range": (0, None, True, False, False),
    "initializer_cutoff_factor": (0, None, True, False, False),
}


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Raise a ValueError naming the field when the model block is inconsistent."""
    # Imported here: the backends' list lives with the dispatch point, and reading a config
    # file must not load JAX and the kernels.
    from modernbert_jax.attention import IMPLS

    choices = {
        "architecture": ARCHITECTURES,
        "position_embedding": ("rope", "absolute", "none"),
        "relative_attention": ("none", "disentangled", "buckets"),
        "pos_att_type": ("c2p", "p2c", "c2p|p2c"),
        "conv_act": ("tanh", "gelu"),
        "attention_pattern": ("alternating", "global", "local"),
        "mlp": ("geglu", "gelu"),
        "hidden_activation": ("gelu", "gelu_tanh"),
        "norm_placement": ("pre", "post"),
        "classifier_pooling": ("cls", "mean"),
        "classifier_head": ("prediction", "pooler"),
        "pooler_activation": ("tanh", "gelu"),
        "dtype": ("auto", "float32", "bfloat16", "float16"),
        "matmul_dtype": ("auto", "bfloat16"),
        "attention_impl": IMPLS,
        "check_inputs": (True, False),
    }
    for field, allowed in choices.items():
        if cfg[field] not in allowed:
            raise ValueError(f"model.{field}={cfg[field]!r} is not one of {allowed}")
    for field, (low, high, low_open, high_open, integer) in _MODEL_NUMBERS.items():
        check_number(f"model.{field}", cfg[field], low=low, high=high, low_open=low_open, high_open=high_open,
                     integer=integer)
    if cfg.pad_token_id >= cfg.vocab_size:
        raise ValueError(f"model.pad_token_id={cfg.pad_token_id} must be in [0, model.vocab_size={cfg.vocab_size})")
    if cfg.hidden_size % cfg.num_heads:
        raise ValueError(
            f"model.hidden_size={cfg.hidden_size} is not divisible by model.num_heads={cfg.num_heads}"
        )
    if cfg.position_embedding == "rope" and (cfg.hidden_size // cfg.num_heads) % 2:
        raise ValueError("RoPE needs an even head dimension (model.hidden_size // model.num_heads)")
    if cfg.relative_attention != "none":
        # The fused kernels take no additive score bias; the dense path does ("auto" picks it).
        if cfg.attention_impl not in ("xla", "auto"):
            raise ValueError(
                f"model.relative_attention={cfg.relative_attention!r} runs on the dense attention path only; "
                f"model.attention_impl={cfg.attention_impl!r} must be 'xla' or 'auto'"
            )
        if cfg.relative_buckets < 0 or cfg.max_relative_positions < 1:
            raise ValueError(
                f"model.relative_buckets={cfg.relative_buckets} must be >= 0 and "
                f"model.max_relative_positions={cfg.max_relative_positions} >= 1 with relative attention"
            )
        if cfg.relative_attention == "buckets" and cfg.relative_buckets < 4:
            raise ValueError(f"model.relative_buckets={cfg.relative_buckets}: bucketed relative attention needs >= 4")
    if cfg.position_offset < 0 or (cfg.position_embedding == "absolute" and cfg.position_offset >= cfg.max_position_embeddings):
        raise ValueError(
            f"model.position_offset={cfg.position_offset} must be in [0, model.max_position_embeddings="
            f"{cfg.max_position_embeddings})"
        )
    if cfg.conv_kernel_size < 0 or (cfg.conv_kernel_size and cfg.conv_kernel_size % 2 == 0):
        raise ValueError(f"model.conv_kernel_size={cfg.conv_kernel_size} must be 0 or odd")
    if cfg.local_attention < 0 or cfg.local_attention % 2:
        raise ValueError(f"model.local_attention={cfg.local_attention} must be a non-negative even (full) window")


# Numeric fields of a pretraining config (configs/pretrain.py): dotted name -> check_number's
# (low, high, low_open, high_open, integer).
_PRETRAIN_NUMBERS = {
    "seed": (0, None, False, False, True),
    "seq_len": (1, None, False, False, True),
    "micro_batch_size": (1, None, False, False, True),
    "batch_size": (1, None, False, False, True),
    "batch_warmup_start": (0, None, False, False, True),  # 0: no batch-size warmup
    "batch_warmup_tokens": (0, None, False, False, True),
    "total_steps": (1, None, False, False, True),
    "optimizer.peak_lr": (0, None, True, False, False),
    "optimizer.b1": (0, 1, False, True, False),
    "optimizer.b2": (0, 1, False, True, False),
    "optimizer.eps": (0, None, False, False, False),
    "optimizer.weight_decay": (0, None, False, False, False),
    "optimizer.warmup_steps": (0, None, False, False, True),
    "optimizer.decay_steps": (0, None, False, False, True),
    "optimizer.final_lr_fraction": (0, 1, False, False, False),
    "data.vocab_size": (1, None, False, False, True),
    "data.mask_rate": (0, 1, True, True, False),
    "data.eval_mask_rate": (0, 1, True, True, False),
    "data.validation_fraction": (0, 1, True, True, False),
    "eval_batch_size": (1, None, False, False, True),
    "eval_batches": (1, None, False, False, True),
    "eval_every": (0, None, False, False, True),  # 0: no evaluation
    "log_every": (1, None, False, False, True),
    "checkpoint_every": (1, None, False, False, True),
    "keep_checkpoints": (1, None, False, False, True),
    "peak_flops_per_device": (0, None, False, False, False),  # 0: the datasheet value
}


def dotted(cfg: ml_collections.ConfigDict, field: str):
    """``cfg["a"]["b"]`` for ``field="a.b"``."""
    for part in field.split("."):
        cfg = cfg[part]
    return cfg


def check_fields(cfg: ml_collections.ConfigDict, ranges: dict[str, tuple], prefix: str = "config.") -> None:
    """`check_number` on each dotted field of ``cfg`` in ``ranges`` (``field: (low, high, low_open,
    high_open, integer)``), named ``<prefix><field>`` (``config.<field>``, as on the command line)."""
    for field, (low, high, low_open, high_open, integer) in ranges.items():
        check_number(f"{prefix}{field}", dotted(cfg, field), low=low, high=high, low_open=low_open, high_open=high_open,
                     integer=integer)


def validate_pretraining(cfg: ml_collections.ConfigDict) -> None:
    """Raise naming the field when a pretraining config (``configs/pretrain.py``) cannot run as asked.

    Called once where the run starts (``train.loop.train``), before any data is built, so a bad
    override fails in a second rather than after the tokenizer and corpus are prepared.
    """
    validate(cfg.model)
    check_fields(cfg, _PRETRAIN_NUMBERS)
    if cfg.seq_len > max_length(cfg.model):
        raise ValueError(f"config.seq_len={cfg.seq_len} exceeds the model's {max_length(cfg.model)} positions "
                         "(model.max_position_embeddings, less model.position_offset)")
    for field in ("batch_size", "batch_warmup_start"):
        if cfg[field] % cfg.micro_batch_size:
            raise ValueError(f"config.{field}={cfg[field]} must be a multiple of "
                             f"config.micro_batch_size={cfg.micro_batch_size}")
    if cfg.batch_warmup_start > cfg.batch_size:
        raise ValueError(f"config.batch_warmup_start={cfg.batch_warmup_start} must be <= "
                         f"config.batch_size={cfg.batch_size}")
    o = cfg.optimizer
    if o.warmup_steps + o.decay_steps > cfg.total_steps:
        raise ValueError(f"config.optimizer.warmup_steps={o.warmup_steps} + config.optimizer.decay_steps="
                         f"{o.decay_steps} must be <= config.total_steps={cfg.total_steps}")
    if cfg.data.vocab_size > cfg.model.vocab_size:
        raise ValueError(f"config.data.vocab_size={cfg.data.vocab_size} (the tokenizer's pieces) must be <= "
                         f"config.model.vocab_size={cfg.model.vocab_size}")
