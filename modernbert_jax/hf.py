"""Hugging Face interop: load and save ModernBERT and BERT checkpoints as our params.

``from_pretrained(path, head=None | "mlm")`` reads ``config.json`` and ``model.safetensors``
(or ``pytorch_model.bin``, which needs torch) and returns ``(module, params)``;
``save_pretrained(path, module, params)`` writes a directory ``transformers`` loads back.
One table (``_tensor_map``) names every tensor in both directions, so loading and saving
cannot drift apart.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from modernbert_jax import config as config_lib
from modernbert_jax import model as model_lib

SUPPORTED = ("modernbert", "bert")
HEADS = (None, "mlm")
# Tensors a checkpoint may hold that our modules have no use for (BERT's pooler, buffers, the
# tied decoder weight, task heads we do not load).
_IGNORED_PREFIXES = ("pooler.", "cls.seq_relationship", "classifier.", "qa_outputs.")
_IGNORED_SUFFIXES = ("position_ids", "decoder.weight")


# ----------------------------------------------------------------------------- config


def _layer_pattern(layer_types: list[str]) -> tuple[str, int]:
    if all(t == "full_attention" for t in layer_types):
        return "global", 3
    if all(t == "sliding_attention" for t in layer_types):
        return "local", 3
    globals_ = [i for i, t in enumerate(layer_types) if t == "full_attention"]
    n = globals_[1] if len(globals_) > 1 else len(layer_types)
    expected = ["full_attention" if i % n == 0 else "sliding_attention" for i in range(len(layer_types))]
    if layer_types != expected:
        raise ValueError(f"config.json layer_types {layer_types} is not an every-n-layers global pattern")
    return "alternating", n


def _activation(name: str, field: str) -> str:
    if name == "gelu":
        return "gelu"
    if name in ("gelu_pytorch_tanh", "gelu_new", "gelu_fast"):
        return "gelu_tanh"
    raise ValueError(f"config.json {field}={name!r} is not supported (gelu or a tanh-approximate gelu)")


def config_from_hf(hf: dict) -> ml_collections.ConfigDict:
    """Our model block from a Hugging Face ``config.json`` dict."""
    model_type = hf.get("model_type")
    if model_type not in SUPPORTED:
        raise ValueError(
            f"config.json model_type={model_type!r} (architectures={hf.get('architectures')}) is not "
            f"supported; expected one of {SUPPORTED}"
        )
    if model_type == "bert":
        if hf.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"config.json position_embedding_type={hf['position_embedding_type']!r}: only 'absolute' is supported")
        cfg = config_lib.bert_config(
            vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"], num_layers=hf["num_hidden_layers"],
            num_heads=hf["num_attention_heads"], intermediate_size=hf["intermediate_size"],
            max_position_embeddings=hf["max_position_embeddings"], type_vocab_size=hf.get("type_vocab_size", 2),
            norm_eps=hf.get("layer_norm_eps", 1e-12),
            hidden_activation=_activation(hf.get("hidden_act", "gelu"), "hidden_act"),
            embedding_dropout=hf.get("hidden_dropout_prob", 0.1), mlp_dropout=hf.get("hidden_dropout_prob", 0.1),
            attention_dropout=hf.get("attention_probs_dropout_prob", 0.1), pad_token_id=hf.get("pad_token_id") or 0,
        )
    else:
        n_layers = hf["num_hidden_layers"]
        every = hf.get("global_attn_every_n_layers", 3)
        layer_types = hf.get("layer_types") or [
            "full_attention" if i % every == 0 else "sliding_attention" for i in range(n_layers)
        ]
        pattern, every = _layer_pattern(layer_types)
        rope = hf.get("rope_parameters") or {}
        global_theta = (rope.get("full_attention") or {}).get("rope_theta", hf.get("global_rope_theta", 160_000.0))
        local_theta = (rope.get("sliding_attention") or {}).get("rope_theta", hf.get("local_rope_theta", 10_000.0))
        cfg = config_lib.modernbert_config(
            vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"], num_layers=n_layers,
            num_heads=hf["num_attention_heads"], intermediate_size=hf["intermediate_size"],
            max_position_embeddings=hf.get("max_position_embeddings", 8192), attention_pattern=pattern,
            global_attn_every_n_layers=every, local_attention=hf.get("local_attention", 128),
            global_rope_theta=float(global_theta), local_rope_theta=float(local_theta),
            hidden_activation=_activation(hf.get("hidden_activation", "gelu"), "hidden_activation"),
            norm_eps=hf.get("norm_eps", 1e-5), norm_bias=hf.get("norm_bias", False),
            attention_bias=hf.get("attention_bias", False), mlp_bias=hf.get("mlp_bias", False),
            head_bias=hf.get("classifier_bias", False), decoder_bias=hf.get("decoder_bias", True),
            embedding_dropout=hf.get("embedding_dropout", 0.0), attention_dropout=hf.get("attention_dropout", 0.0),
            mlp_dropout=hf.get("mlp_dropout", 0.0), pad_token_id=hf.get("pad_token_id", 50283),
            classifier_pooling=hf.get("classifier_pooling", "cls"),
        )
    config_lib.validate(cfg)
    cfg.lock()
    return cfg


def config_to_hf(cfg: ml_collections.ConfigDict, head: Optional[str]) -> dict:
    """A ``config.json`` dict for our model block."""
    if cfg.architecture == "bert":
        return {
            "model_type": "bert", "architectures": ["BertForMaskedLM" if head == "mlm" else "BertModel"],
            "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_layers,
            "num_attention_heads": cfg.num_heads, "intermediate_size": cfg.intermediate_size,
            "max_position_embeddings": cfg.max_position_embeddings, "type_vocab_size": cfg.type_vocab_size,
            "layer_norm_eps": cfg.norm_eps,
            "hidden_act": "gelu" if cfg.hidden_activation == "gelu" else "gelu_new",
            "hidden_dropout_prob": cfg.mlp_dropout, "attention_probs_dropout_prob": cfg.attention_dropout,
            "pad_token_id": cfg.pad_token_id, "position_embedding_type": "absolute",
        }
    layer_types = [
        "full_attention" if config_lib.layer_half_window(cfg, i) is None else "sliding_attention"
        for i in range(cfg.num_layers)
    ]
    return {
        "model_type": "modernbert", "architectures": ["ModernBertForMaskedLM" if head == "mlm" else "ModernBertModel"],
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads, "intermediate_size": cfg.intermediate_size,
        "max_position_embeddings": cfg.max_position_embeddings, "layer_types": layer_types,
        "local_attention": cfg.local_attention,
        "rope_parameters": {
            "full_attention": {"rope_type": "default", "rope_theta": cfg.global_rope_theta},
            "sliding_attention": {"rope_type": "default", "rope_theta": cfg.local_rope_theta},
        },
        "hidden_activation": "gelu" if cfg.hidden_activation == "gelu" else "gelu_pytorch_tanh",
        "classifier_activation": "gelu" if cfg.hidden_activation == "gelu" else "gelu_pytorch_tanh",
        "norm_eps": cfg.norm_eps, "norm_bias": cfg.norm_bias, "attention_bias": cfg.attention_bias,
        "mlp_bias": cfg.mlp_bias, "classifier_bias": cfg.head_bias, "decoder_bias": cfg.decoder_bias,
        "embedding_dropout": cfg.embedding_dropout, "attention_dropout": cfg.attention_dropout,
        "mlp_dropout": cfg.mlp_dropout, "pad_token_id": cfg.pad_token_id,
        "classifier_pooling": cfg.classifier_pooling, "tie_word_embeddings": True,
        # The released tokenizer's [CLS]/[SEP] ids; a smaller vocabulary has its own (unknown here).
        **{f"{name}_token_id": (tid if tid < cfg.vocab_size else None)
           for name, tid in (("bos", 50281), ("cls", 50281), ("eos", 50282), ("sep", 50282))},
    }


# ----------------------------------------------------------------------------- tensors


def _tensor_map(cfg: ml_collections.ConfigDict, head: Optional[str]) -> Iterator[tuple[tuple[str, ...], list[str], str]]:
    """Yield ``(our param path, [HF tensor names], kind)``; kind is "copy" or "linear" (transposed).

    Several HF names are concatenated along the output dimension (BERT's q, k, v → Wqkv).
    Names are relative to the encoder prefix, except head tensors, which start with "/".
    """
    bias = lambda on: ("weight", "bias") if on else ("weight",)  # noqa: E731
    ours = {"weight": "kernel", "bias": "bias"}
    norm = {"weight": "scale", "bias": "bias"}

    def linear(path, names, on):
        for p in bias(on):
            yield path + (ours[p],), [f"{n}.{p}" for n in names], "linear" if p == "weight" else "copy"

    def layernorm(path, name, on):
        for p in bias(on):
            yield path + (norm[p],), [f"{name}.{p}"], "copy"

    if cfg.architecture == "bert":
        yield ("embeddings", "tok_embeddings", "embedding"), ["embeddings.word_embeddings.weight"], "copy"
        yield ("embeddings", "position_embeddings", "embedding"), ["embeddings.position_embeddings.weight"], "copy"
        if cfg.type_vocab_size:
            yield ("embeddings", "token_type_embeddings", "embedding"), ["embeddings.token_type_embeddings.weight"], "copy"
        yield from layernorm(("embeddings", "norm"), "embeddings.LayerNorm", cfg.norm_bias)
        for i in range(cfg.num_layers):
            hf, us = f"encoder.layer.{i}", (f"layers_{i}",)
            qkv = [f"{hf}.attention.self.{n}" for n in ("query", "key", "value")]
            yield from linear(us + ("attn", "Wqkv"), qkv, cfg.attention_bias)
            yield from linear(us + ("attn", "Wo"), [f"{hf}.attention.output.dense"], cfg.attention_bias)
            yield from layernorm(us + ("attn_norm",), f"{hf}.attention.output.LayerNorm", cfg.norm_bias)
            yield from linear(us + ("mlp", "Wi"), [f"{hf}.intermediate.dense"], cfg.mlp_bias)
            yield from linear(us + ("mlp", "Wo"), [f"{hf}.output.dense"], cfg.mlp_bias)
            yield from layernorm(us + ("mlp_norm",), f"{hf}.output.LayerNorm", cfg.norm_bias)
        if head == "mlm":
            yield from linear(("head", "dense"), ["/cls.predictions.transform.dense"], cfg.head_bias)
            yield from layernorm(("head", "norm"), "/cls.predictions.transform.LayerNorm", cfg.norm_bias)
            yield ("decoder_bias",), ["/cls.predictions.bias"], "copy"
        return
    yield ("embeddings", "tok_embeddings", "embedding"), ["embeddings.tok_embeddings.weight"], "copy"
    yield from layernorm(("embeddings", "norm"), "embeddings.norm", cfg.norm_bias)
    for i in range(cfg.num_layers):
        hf, us = f"layers.{i}", (f"layers_{i}",)
        if i > 0 or cfg.first_layer_attn_norm:
            yield from layernorm(us + ("attn_norm",), f"{hf}.attn_norm", cfg.norm_bias)
        yield from linear(us + ("attn", "Wqkv"), [f"{hf}.attn.Wqkv"], cfg.attention_bias)
        yield from linear(us + ("attn", "Wo"), [f"{hf}.attn.Wo"], cfg.attention_bias)
        yield from layernorm(us + ("mlp_norm",), f"{hf}.mlp_norm", cfg.norm_bias)
        yield from linear(us + ("mlp", "Wi"), [f"{hf}.mlp.Wi"], cfg.mlp_bias)
        yield from linear(us + ("mlp", "Wo"), [f"{hf}.mlp.Wo"], cfg.mlp_bias)
    if cfg.final_norm:
        yield from layernorm(("final_norm",), "final_norm", cfg.norm_bias)
    if head == "mlm":
        yield from linear(("head", "dense"), ["/head.dense"], cfg.head_bias)
        yield from layernorm(("head", "norm"), "/head.norm", cfg.norm_bias)
        if cfg.decoder_bias:
            yield ("decoder_bias",), ["/decoder.bias"], "copy"


def _encoder_prefix(cfg: ml_collections.ConfigDict, head: Optional[str]) -> str:
    if head == "mlm":
        return "bert." if cfg.architecture == "bert" else "model."
    return ""


def read_tensors(path: Path) -> dict[str, np.ndarray]:
    """A directory's ``model.safetensors`` (no torch needed) or ``pytorch_model.bin`` (needs torch), as float32 numpy."""
    st = path / "model.safetensors"
    if st.exists():
        from safetensors.numpy import load_file

        return load_file(str(st))
    pt = path / "pytorch_model.bin"
    if pt.exists():
        try:
            import torch  # only for legacy .bin checkpoints
        except ImportError as err:
            raise ImportError(f"{pt} is a PyTorch pickle; install torch to read it, or convert it to safetensors") from err
        state = torch.load(str(pt), map_location="cpu", weights_only=True)
        return {k: v.float().numpy() for k, v in state.items()}
    raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {path}")


def _module_for(cfg: ml_collections.ConfigDict, head: Optional[str]) -> nn.Module:
    return model_lib.MaskedLM(cfg) if head == "mlm" else model_lib.Encoder(cfg)


def _param_shapes(module: nn.Module) -> dict:
    ids = jnp.zeros((1, 8), jnp.int32)
    abstract = jax.eval_shape(lambda: module.init(jax.random.key(0), ids))
    return nn.meta.unbox(abstract["params"])


def _get(tree: dict, path: tuple[str, ...]):
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: dict, path: tuple[str, ...], value) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def from_tensors(
    hf_config: dict, tensors: dict[str, np.ndarray], head: Optional[str] = None, *, where: str = "checkpoint"
) -> tuple[nn.Module, dict]:
    """``(module, params)`` from a ``config.json`` dict and HF-named tensors, in memory.

    ``where`` names the source in errors. Raises a ValueError naming the tensor when names or
    shapes do not match the config.
    """
    if head not in HEADS:
        raise ValueError(f"head={head!r} is not one of {HEADS}")
    cfg = config_from_hf(hf_config)
    module = _module_for(cfg, head)
    shapes = _param_shapes(module)
    enc_path = ("encoder",) if head == "mlm" else ()

    # Encoders saved without a head have no prefix; those saved with one (BertForMaskedLM,
    # ModernBertForMaskedLM) prefix the encoder, so accept either when loading the encoder.
    candidates = [_encoder_prefix(cfg, head)] if head == "mlm" else ["", _encoder_prefix(cfg, "mlm")]
    prefix = next((p for p in candidates if any(k.startswith(p + "embeddings.") for k in tensors)), None)
    if prefix is None:
        raise ValueError(f"{where}: no embedding tensors found under prefixes {candidates}; is this a {cfg.architecture} checkpoint?")

    params: dict = {}
    used = set()
    for our_path, names, kind in _tensor_map(cfg, head):
        full = [n[1:] if n.startswith("/") else prefix + n for n in names]
        for name in full:
            if name not in tensors:
                raise ValueError(f"{where}: tensor {name!r} is missing from the checkpoint")
        arrays = [np.asarray(tensors[n], dtype=np.float32) for n in full]
        value = np.concatenate(arrays, axis=0) if len(arrays) > 1 else arrays[0]
        if kind == "linear":
            value = value.T
        target = our_path if our_path[0] in ("head", "decoder_bias") else enc_path + our_path
        expected = _get(shapes, target).shape
        if value.shape != tuple(expected):
            raise ValueError(
                f"{where}: tensor {' + '.join(full)} has shape {tuple(arrays[0].shape)}"
                f"{' (each)' if len(arrays) > 1 else ''}, which gives {value.shape} for {'/'.join(target)}; "
                f"the config expects {tuple(expected)}"
            )
        _set(params, target, jnp.asarray(value))
        used.update(full)
    unexpected = [
        k for k in tensors
        if k not in used
        and not k.startswith(tuple(prefix + p for p in _IGNORED_PREFIXES) + _IGNORED_PREFIXES)
        and not k.endswith(_IGNORED_SUFFIXES)
        and (head == "mlm" or k.startswith(prefix))
    ]
    if unexpected:
        raise ValueError(f"{where}: unexpected tensor(s) not in a {cfg.architecture} model of this config: {unexpected[:5]}")
    return module, params


def resolve_dir(path: str | os.PathLike) -> Path:
    """The Hugging Face directory at ``path``: ``path`` itself, or the ``hf/`` export that a
    finished pretraining run (``python -m experiments.pretrain --workdir=path``) leaves in its workdir."""
    path = Path(path)
    # A pretraining workdir first: run as a sweep point, it holds a config.json of its own (the
    # experiment's config), which is no model config.
    if (path / "checkpoints").is_dir() and (path / "hf" / "config.json").exists():
        return path / "hf"
    if (path / "config.json").exists():
        return path
    if (path / "hf" / "config.json").exists():
        return path / "hf"
    if (path / "checkpoints").is_dir():
        raise FileNotFoundError(
            f"{path} is a pretraining workdir without an hf/ export: the run has not finished "
            "(the export is written at the end; rerun the same command to resume and finish)")
    raise FileNotFoundError(f"no config.json in {path} (nor in {path / 'hf'}, a pretraining workdir's export)")


def from_pretrained(path: str | os.PathLike, head: Optional[str] = None) -> tuple[nn.Module, dict]:
    """Load a Hugging Face ModernBERT or BERT directory (or a pretraining workdir's export, see
    ``resolve_dir``) as ``(module, params)``.

    ``head=None`` gives an ``Encoder`` (last hidden states); ``head="mlm"`` a ``MaskedLM``.
    """
    if head not in HEADS:
        raise ValueError(f"head={head!r} is not one of {HEADS}")
    path = resolve_dir(path)
    config_file = path / "config.json"
    hf_config = json.loads(config_file.read_text())
    config_from_hf(hf_config)  # an unsupported architecture is named before any weights are read
    return from_tensors(hf_config, read_tensors(path), head, where=str(path))


def to_tensors(module: nn.Module, params: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """``(config.json dict, HF-named float32 tensors)`` for an ``Encoder`` or ``MaskedLM``, in memory."""
    if isinstance(module, model_lib.MaskedLM):
        head, enc = "mlm", params["encoder"]
    elif isinstance(module, model_lib.Encoder):
        head, enc = None, params
    else:
        raise TypeError(f"expected an Encoder or MaskedLM, not {type(module).__name__}")
    cfg = module.config
    prefix = _encoder_prefix(cfg, head)
    tensors: dict[str, np.ndarray] = {}
    for our_path, names, kind in _tensor_map(cfg, head):
        value = np.asarray(_get(params if our_path[0] in ("head", "decoder_bias") else enc, our_path), np.float32)
        if kind == "linear":
            value = value.T
        parts = np.split(value, len(names), axis=0) if len(names) > 1 else [value]
        for name, part in zip(names, parts):
            tensors[name[1:] if name.startswith("/") else prefix + name] = np.ascontiguousarray(part)
    if head == "mlm":  # the tied decoder, written out so loaders that expect it find it
        decoder = "cls.predictions.decoder.weight" if cfg.architecture == "bert" else "decoder.weight"
        tensors[decoder] = tensors[prefix + ("embeddings.word_embeddings.weight" if cfg.architecture == "bert" else "embeddings.tok_embeddings.weight")]
        if cfg.architecture == "bert":
            tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
    return config_to_hf(cfg, head), tensors


def save_pretrained(path: str | os.PathLike, module: nn.Module, params: dict, *, overwrite: bool = False) -> Path:
    """Write ``config.json`` + ``model.safetensors`` that ``transformers`` loads back.

    Refuses to replace an existing checkpoint unless ``overwrite=True``; writes to a
    temporary directory first so an interrupted save never leaves a half-written one.
    """
    from safetensors.numpy import save_file

    path = Path(path)
    hf_config, tensors = to_tensors(module, params)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path} exists and is not empty; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp"))
    try:
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(hf_config, indent=2))
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


def load_tokenizer(path: str | os.PathLike, special_tokens: tuple[str, ...] = ()) -> "tokenizers.Tokenizer":
    """The checkpoint's own ``tokenizer.json`` through ``tokenizers``, truncation and padding off.

    ``path`` is a directory holding ``tokenizer.json`` (a Hugging Face or GLiNER checkpoint) or a
    pretraining workdir (see ``resolve_dir``). Truncation and padding are switched off because a
    Hugging Face file may ship e.g. a 128-token limit that would silently cut texts: each caller
    sets its own (SetFit truncates to ``max_seq_length``, GLiNER windows long texts).
    ``special_tokens`` that the vocabulary lacks are added, in order (GLiNER's prompt markers).
    """
    from tokenizers import Tokenizer

    path = Path(path)
    file = path / "tokenizer.json"
    if not file.exists():
        file = resolve_dir(path) / "tokenizer.json"
    if not file.exists():
        raise FileNotFoundError(f"no tokenizer.json in {path}")
    tok = Tokenizer.from_file(str(file))
    tok.no_truncation()
    tok.no_padding()
    missing = [t for t in special_tokens if tok.token_to_id(t) is None]
    if missing:
        tok.add_special_tokens(missing)
    return tok
