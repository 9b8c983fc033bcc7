"""The Hugging Face encoder families that are configurations of our modules, one entry each.

For every ``model_type`` — ``modernbert``, ``bert``, ``roberta``, ``xlm-roberta``, ``mpnet``,
``deberta-v2`` (DeBERTa-v2 and v3) — this module holds what differs between them:

* ``config_from_hf`` / ``config_to_hf``: ``config.json`` ↔ our model block. A field we do
  not implement (a DeBERTa ``embedding_size`` ≠ ``hidden_size``, ``conv_groups`` > 1, a
  non-absolute BERT position type, …) is an error naming it, never a silently different model.
* ``tensor_map``: one table naming every tensor in both directions, the task heads' too
  (``modernbert_jax.hf`` loads and saves through it, so the two cannot drift apart).
* ``class_name``, ``encoder_prefix`` and ``tied_decoder``: transformers' class for a head, where a
  task model keeps its encoder, and the tied MLM decoder tensors written for loaders that expect them.

Task heads (``HEADS``) follow each family's ``For{Sequence,Token}Classification``: ModernBERT's
prediction head (dense → GELU → norm) then the classifier; BERT's pooler (``bert.pooler.dense``,
tanh) then ``classifier``; RoBERTa/XLM-R/MPNet the same dense + tanh inside ``classifier.dense``
and ``classifier.out_proj``; DeBERTa's ``pooler.dense`` (``pooler_hidden_act``) then ``classifier``.
Token classification is dropout → ``classifier`` everywhere but ModernBERT, which keeps its head.

The BERT-derived families share BERT's post-norm layers; they differ in position handling
(RoBERTa/XLM-R/MPNet offset positions by ``padding_idx + 1``; MPNet adds a bucketed relative
bias; DeBERTa replaces absolute positions by disentangled relative attention) and in names.
"""

from __future__ import annotations

from typing import Iterator, Optional

import ml_collections

from modernbert_jax import config as config_lib

SUPPORTED = ("modernbert", "bert", "roberta", "xlm-roberta", "mpnet", "deberta-v2")
# The heads a checkpoint can carry, in `modernbert_jax.hf`'s spelling: None is the bare encoder.
HEADS = (None, "mlm", "sequence_classification", "token_classification")
TASK_HEADS = HEADS[2:]
# Our parameters that sit beside the encoder rather than inside it (the heads').
HEAD_PARAMS = ("head", "decoder_bias", "pooler", "classifier")
# transformers' class name stems per family; a head's class is stem + suffix.
_STEMS = {"modernbert": "ModernBert", "bert": "Bert", "roberta": "Roberta", "xlm-roberta": "XLMRoberta",
          "mpnet": "MPNet", "deberta-v2": "DebertaV2"}
_SUFFIXES = dict(zip(HEADS, ("Model", "ForMaskedLM", "ForSequenceClassification", "ForTokenClassification")))
# Sequence classification's pooler dense and final classifier per BERT-derived family ("/": not
# under the encoder prefix; BERT keeps its pooler inside BertModel).
_POOLER_NAMES = {
    "bert": ("pooler.dense", "/classifier"),
    "roberta": ("/classifier.dense", "/classifier.out_proj"),
    "xlm-roberta": ("/classifier.dense", "/classifier.out_proj"),
    "mpnet": ("/classifier.dense", "/classifier.out_proj"),
    "deberta-v2": ("/pooler.dense", "/classifier"),
}
_PREFIX = {"modernbert": "model.", "bert": "bert.", "roberta": "roberta.", "xlm-roberta": "roberta.",
           "mpnet": "mpnet.", "deberta-v2": "deberta."}
# MPNet numbers positions from its hard-coded padding_idx (1) + 1, whatever pad_token_id says.
_MPNET_POSITION_OFFSET = 2
# MPNet's relative_position_bucket has max_distance=128 built in.
_MPNET_MAX_DISTANCE = 128


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


def _refuse(hf: dict, field: str, ok, why: str) -> None:
    """Raise naming ``field`` unless its value (absent: its transformers default) passes ``ok``."""
    if field in hf and not ok(hf[field]):
        raise ValueError(f"config.json {field}={hf[field]!r} is not supported: {why}")


def _classifier_dropout(hf: dict, field: str = "classifier_dropout") -> float:
    """transformers' rule: the classifier's own dropout when set, else ``hidden_dropout_prob``."""
    value = hf.get(field)
    return hf.get("hidden_dropout_prob", 0.1) if value is None else value


def _bert_like(hf: dict, architecture: str, **fields) -> ml_collections.ConfigDict:
    """BERT's recipe with the sizes, norms and dropouts every BERT-derived config.json carries."""
    _refuse(hf, "position_embedding_type", lambda v: v == "absolute", "only 'absolute' positions")
    _refuse(hf, "is_decoder", lambda v: not v, "decoders are not encoders")
    values = dict(
        classifier_dropout=_classifier_dropout(hf),
        vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"], num_layers=hf["num_hidden_layers"],
        num_heads=hf["num_attention_heads"], intermediate_size=hf["intermediate_size"],
        max_position_embeddings=hf["max_position_embeddings"], type_vocab_size=hf.get("type_vocab_size", 2),
        norm_eps=hf.get("layer_norm_eps", 1e-12),
        hidden_activation=_activation(hf.get("hidden_act", "gelu"), "hidden_act"),
        embedding_dropout=hf.get("hidden_dropout_prob", 0.1), mlp_dropout=hf.get("hidden_dropout_prob", 0.1),
        attention_dropout=hf.get("attention_probs_dropout_prob", 0.1), pad_token_id=hf.get("pad_token_id") or 0,
    )
    values.update(fields)
    return config_lib.bert_config(architecture=architecture, **values)


def _deberta(hf: dict) -> ml_collections.ConfigDict:
    _refuse(hf, "embedding_size", lambda v: v in (None, hf["hidden_size"]), "embedding_size must equal hidden_size "
            "(no embed_proj)")
    _refuse(hf, "attention_head_size", lambda v: v in (None, hf["hidden_size"] // hf["num_attention_heads"]),
            "attention_head_size must be hidden_size // num_attention_heads")
    _refuse(hf, "conv_groups", lambda v: v == 1, "only conv_groups=1 (a dense convolution)")
    _refuse(hf, "conv_act", lambda v: v in ("tanh", "gelu"), "conv_act must be 'tanh' or 'gelu'")
    _refuse(hf, "legacy", lambda v: v, "only the legacy MLM head (cls.predictions.*, transformers' default)")
    _refuse(hf, "z_steps", lambda v: not v, "enhanced mask decoding (z_steps) is not implemented")
    _refuse(hf, "pooler_hidden_size", lambda v: v == hf["hidden_size"], "pooler_hidden_size must equal hidden_size")
    _refuse(hf, "pooler_hidden_act", lambda v: v in ("gelu", "tanh"), "pooler_hidden_act must be 'gelu' or 'tanh'")
    fields: dict = dict(
        pooler_activation=hf.get("pooler_hidden_act", "gelu"), pooler_dropout=hf.get("pooler_dropout", 0.0),
        classifier_dropout=_classifier_dropout(hf, "cls_dropout"),
        type_vocab_size=hf.get("type_vocab_size", 0), norm_eps=hf.get("layer_norm_eps", 1e-7),
        position_embedding="absolute" if hf.get("position_biased_input", True) else "none",
        conv_kernel_size=hf.get("conv_kernel_size", 0), conv_act=hf.get("conv_act", "tanh"),
    )
    if hf.get("relative_attention", False):
        types = hf.get("pos_att_type") or []
        types = [t.strip() for t in types.lower().split("|")] if isinstance(types, str) else list(types)
        if not types or set(types) - {"c2p", "p2c"}:
            raise ValueError(f"config.json pos_att_type={hf.get('pos_att_type')!r} is not supported: "
                             "a non-empty combination of 'c2p' and 'p2c'")
        max_relative = hf.get("max_relative_positions", -1)
        fields.update(
            relative_attention="disentangled", pos_att_type="|".join(sorted(set(types))),
            relative_buckets=max(hf.get("position_buckets", -1), 0),
            max_relative_positions=max_relative if max_relative >= 1 else hf["max_position_embeddings"],
            share_att_key=hf.get("share_att_key", False),
            norm_rel_ebd="layer_norm" in [x.strip() for x in hf.get("norm_rel_ebd", "none").lower().split("|")],
        )
    return _bert_like(hf, "deberta-v2", **fields)


def _modernbert(hf: dict) -> ml_collections.ConfigDict:
    n_layers = hf["num_hidden_layers"]
    every = hf.get("global_attn_every_n_layers", 3)
    layer_types = hf.get("layer_types") or [
        "full_attention" if i % every == 0 else "sliding_attention" for i in range(n_layers)
    ]
    pattern, every = _layer_pattern(layer_types)
    hidden_activation = _activation(hf.get("hidden_activation", "gelu"), "hidden_activation")
    # One GELU serves the encoder and the prediction head here.
    _refuse(hf, "classifier_activation", lambda v: _activation(v, "classifier_activation") == hidden_activation,
            f"the head's activation must be the encoder's (hidden_activation={hf.get('hidden_activation', 'gelu')!r})")
    rope = hf.get("rope_parameters") or {}
    global_theta = (rope.get("full_attention") or {}).get("rope_theta", hf.get("global_rope_theta", 160_000.0))
    local_theta = (rope.get("sliding_attention") or {}).get("rope_theta", hf.get("local_rope_theta", 10_000.0))
    return config_lib.modernbert_config(
        vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"], num_layers=n_layers,
        num_heads=hf["num_attention_heads"], intermediate_size=hf["intermediate_size"],
        max_position_embeddings=hf.get("max_position_embeddings", 8192), attention_pattern=pattern,
        global_attn_every_n_layers=every, local_attention=hf.get("local_attention", 128),
        global_rope_theta=float(global_theta), local_rope_theta=float(local_theta),
        hidden_activation=hidden_activation, norm_eps=hf.get("norm_eps", 1e-5), norm_bias=hf.get("norm_bias", False),
        attention_bias=hf.get("attention_bias", False), mlp_bias=hf.get("mlp_bias", False),
        head_bias=hf.get("classifier_bias", False), decoder_bias=hf.get("decoder_bias", True),
        embedding_dropout=hf.get("embedding_dropout", 0.0), attention_dropout=hf.get("attention_dropout", 0.0),
        mlp_dropout=hf.get("mlp_dropout", 0.0), pad_token_id=hf.get("pad_token_id", 50283),
        classifier_pooling=hf.get("classifier_pooling", "cls"), classifier_dropout=hf.get("classifier_dropout", 0.0),
    )


def config_from_hf(hf: dict) -> ml_collections.ConfigDict:
    """Our validated, locked model block from a Hugging Face ``config.json`` dict."""
    model_type = hf.get("model_type")
    if model_type not in SUPPORTED:
        raise ValueError(
            f"config.json model_type={model_type!r} (architectures={hf.get('architectures')}) is not "
            f"supported; expected one of {SUPPORTED}"
        )
    if model_type == "modernbert":
        cfg = _modernbert(hf)
    elif model_type == "bert":
        cfg = _bert_like(hf, "bert")
    elif model_type in ("roberta", "xlm-roberta"):
        pad = hf.get("pad_token_id", 1)
        cfg = _bert_like(hf, model_type, type_vocab_size=hf.get("type_vocab_size", 1), pad_token_id=pad,
                         position_offset=pad + 1, pooler_dropout=_classifier_dropout(hf))
    elif model_type == "mpnet":
        # MPNet's classifier takes hidden_dropout_prob whatever classifier_dropout says.
        dropout = hf.get("hidden_dropout_prob", 0.1)
        cfg = _bert_like(
            hf, "mpnet", type_vocab_size=0, pad_token_id=hf.get("pad_token_id", 1),
            pooler_dropout=dropout, classifier_dropout=dropout,
            position_offset=_MPNET_POSITION_OFFSET, relative_attention="buckets",
            relative_buckets=hf.get("relative_attention_num_buckets", 32), max_relative_positions=_MPNET_MAX_DISTANCE,
        )
    else:
        cfg = _deberta(hf)
    config_lib.validate(cfg)
    cfg.lock()
    return cfg


def _bert_like_to_hf(cfg: ml_collections.ConfigDict) -> dict:
    return {
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads, "intermediate_size": cfg.intermediate_size,
        "max_position_embeddings": cfg.max_position_embeddings, "type_vocab_size": cfg.type_vocab_size,
        "layer_norm_eps": cfg.norm_eps, "hidden_act": "gelu" if cfg.hidden_activation == "gelu" else "gelu_new",
        "hidden_dropout_prob": cfg.mlp_dropout, "attention_probs_dropout_prob": cfg.attention_dropout,
        "pad_token_id": cfg.pad_token_id,
    }


def class_name(cfg: ml_collections.ConfigDict, head: Optional[str]) -> str:
    """transformers' class for our model block with ``head`` (e.g. ``BertForSequenceClassification``)."""
    return _STEMS[cfg.architecture] + _SUFFIXES[head]


def task_class_names(cfg: ml_collections.ConfigDict) -> dict[str, str]:
    """``{class name: head}`` for the family's task heads, to recognise what a checkpoint holds."""
    return {class_name(cfg, head): head for head in TASK_HEADS}


def _check_classifier_head(cfg: ml_collections.ConfigDict) -> None:
    """Raise naming the field when ``classifier_head`` is not the one the family's classes have."""
    expected = "prediction" if cfg.architecture == "modernbert" else "pooler"
    if cfg.classifier_head != expected:
        raise ValueError(f"model.classifier_head={cfg.classifier_head!r}: a {cfg.architecture} task head is "
                         f"{expected!r} in transformers; no checkpoint of that family has another")


def _check_head_fields(cfg: ml_collections.ConfigDict) -> None:
    """Raise naming the field when a head field has a value the family's ``config.json`` cannot express."""
    arch = cfg.architecture
    if arch == "modernbert":
        return
    # What each family's classes can express; anything else would load as a different model.
    fixed = {"bert": dict(pooler_activation="tanh", pooler_dropout=0.0),
             "roberta": dict(pooler_activation="tanh", pooler_dropout=cfg.classifier_dropout),
             "xlm-roberta": dict(pooler_activation="tanh", pooler_dropout=cfg.classifier_dropout),
             "mpnet": dict(pooler_activation="tanh", pooler_dropout=cfg.mlp_dropout,
                           classifier_dropout=cfg.mlp_dropout),
             "deberta-v2": {}}[arch]
    for field, value in fixed.items():
        if cfg[field] != value:
            raise ValueError(f"model.{field}={cfg[field]!r} has no {arch} config.json field; "
                             f"transformers' {arch} task heads use {value!r}")


def config_to_hf(cfg: ml_collections.ConfigDict, head: Optional[str]) -> dict:
    """A ``config.json`` dict for our model block with ``head`` (one of ``HEADS``), labels aside."""
    arch = cfg.architecture
    if head in TASK_HEADS:
        _check_classifier_head(cfg)
        _check_head_fields(cfg)
    out = {"model_type": arch, "architectures": [class_name(cfg, head)]}
    if arch == "modernbert":
        return {**out, **_modernbert_to_hf(cfg)}
    out.update(_bert_like_to_hf(cfg))
    if arch in ("bert", "roberta", "xlm-roberta"):
        out.update(position_embedding_type="absolute", classifier_dropout=cfg.classifier_dropout)
    elif arch == "mpnet":
        del out["type_vocab_size"]
        out["relative_attention_num_buckets"] = cfg.relative_buckets
    else:
        out.update(position_biased_input=cfg.position_embedding == "absolute",
                   relative_attention=cfg.relative_attention == "disentangled",
                   pooler_hidden_size=cfg.hidden_size, pooler_hidden_act=cfg.pooler_activation,
                   pooler_dropout=cfg.pooler_dropout, cls_dropout=cfg.classifier_dropout)
        if cfg.relative_attention == "disentangled":
            out.update(pos_att_type=cfg.pos_att_type.split("|"), position_buckets=cfg.relative_buckets or -1,
                       max_relative_positions=cfg.max_relative_positions, share_att_key=cfg.share_att_key,
                       norm_rel_ebd="layer_norm" if cfg.norm_rel_ebd else "none")
        if cfg.conv_kernel_size:
            out.update(conv_kernel_size=cfg.conv_kernel_size, conv_act=cfg.conv_act)
    return out


def _modernbert_to_hf(cfg: ml_collections.ConfigDict) -> dict:
    layer_types = [
        "full_attention" if config_lib.layer_half_window(cfg, i) is None else "sliding_attention"
        for i in range(cfg.num_layers)
    ]
    return {
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
        "classifier_pooling": cfg.classifier_pooling, "classifier_dropout": cfg.classifier_dropout,
        "tie_word_embeddings": True,
        # The released tokenizer's [CLS]/[SEP] ids; a smaller vocabulary has its own (unknown here).
        **{f"{name}_token_id": (tid if tid < cfg.vocab_size else None)
           for name, tid in (("bos", 50281), ("cls", 50281), ("eos", 50282), ("sep", 50282))},
    }


# ----------------------------------------------------------------------------- tensors


def encoder_prefix(cfg: ml_collections.ConfigDict, head: Optional[str]) -> str:
    """Where a model with a head (any but None) keeps its encoder's tensors; "" for a bare encoder."""
    return _PREFIX[cfg.architecture] if head is not None else ""


def tied_decoder(cfg: ml_collections.ConfigDict) -> dict[str, str]:
    """The tied MLM decoder tensors, each named to the tensor it copies (prefixed names)."""
    prefix = _PREFIX[cfg.architecture]
    if cfg.architecture == "modernbert":
        return {"decoder.weight": prefix + "embeddings.tok_embeddings.weight"}
    words = prefix + "embeddings.word_embeddings.weight"
    if cfg.architecture in ("bert", "deberta-v2"):
        return {"cls.predictions.decoder.weight": words, "cls.predictions.decoder.bias": "cls.predictions.bias"}
    return {"lm_head.decoder.weight": words, "lm_head.decoder.bias": "lm_head.bias"}


def tensor_map(cfg: ml_collections.ConfigDict, head: Optional[str]) -> Iterator[tuple[tuple[str, ...], list[str], str]]:
    """Yield ``(our param path, [HF tensor names], kind)``; kind is "copy", "linear" (transposed)
    or "conv" (torch's ``[out, in, K]`` against our ``[K, in, out]``).

    Several HF names are concatenated along the output dimension (BERT's q, k, v → Wqkv).
    Names are relative to the encoder prefix, except head tensors, which start with "/".
    Paths whose first key is in ``HEAD_PARAMS`` sit beside the encoder's params, the rest in them.
    """
    if cfg.architecture == "modernbert":
        yield from _modernbert_map(cfg, head)
    else:
        yield from _bert_like_map(cfg, head)
    if head in TASK_HEADS:
        yield from _task_head_map(cfg, head)


def _task_head_map(cfg: ml_collections.ConfigDict, head: str):
    _check_classifier_head(cfg)
    out = "/classifier"
    if cfg.classifier_head == "prediction":
        yield from _linear(("head", "dense"), ["/head.dense"], cfg.head_bias)
        yield from _layernorm(("head", "norm"), "/head.norm", cfg.norm_bias)
    elif head == "sequence_classification":
        pooler, out = _POOLER_NAMES[cfg.architecture]
        yield from _linear(("pooler", "dense"), [pooler], True)
    yield from _linear(("classifier",), [out], True)


def _bias(on: bool) -> tuple[str, ...]:
    return ("weight", "bias") if on else ("weight",)


def _linear(path: tuple, names: list[str], on: bool):
    for p in _bias(on):
        yield path + ({"weight": "kernel", "bias": "bias"}[p],), [f"{n}.{p}" for n in names], "linear" if p == "weight" else "copy"


def _layernorm(path: tuple, name: str, on: bool):
    for p in _bias(on):
        yield path + ({"weight": "scale", "bias": "bias"}[p],), [f"{name}.{p}"], "copy"


def _bert_like_map(cfg: ml_collections.ConfigDict, head: Optional[str]):
    arch = cfg.architecture
    yield ("embeddings", "tok_embeddings", "embedding"), ["embeddings.word_embeddings.weight"], "copy"
    if cfg.position_embedding == "absolute":
        yield ("embeddings", "position_embeddings", "embedding"), ["embeddings.position_embeddings.weight"], "copy"
    if cfg.type_vocab_size:
        yield ("embeddings", "token_type_embeddings", "embedding"), ["embeddings.token_type_embeddings.weight"], "copy"
    yield from _layernorm(("embeddings", "norm"), "embeddings.LayerNorm", cfg.norm_bias)
    if cfg.relative_attention == "buckets":
        yield ("relative", "relative_attention_bias"), ["encoder.relative_attention_bias.weight"], "copy"
    if cfg.relative_attention == "disentangled":
        yield ("relative", "rel_embeddings"), ["encoder.rel_embeddings.weight"], "copy"
        if cfg.norm_rel_ebd:
            yield from _layernorm(("relative", "norm"), "encoder.LayerNorm", cfg.norm_bias)
    if cfg.conv_kernel_size:
        yield ("conv", "kernel"), ["encoder.conv.conv.weight"], "conv"
        yield ("conv", "bias"), ["encoder.conv.conv.bias"], "copy"
        yield from _layernorm(("conv", "norm"), "encoder.conv.LayerNorm", cfg.norm_bias)
    for i in range(cfg.num_layers):
        hf, us = f"encoder.layer.{i}", (f"layers_{i}",)
        if arch == "mpnet":
            qkv = [f"{hf}.attention.attn.{n}" for n in "qkv"]
            out, attn_norm = f"{hf}.attention.attn.o", f"{hf}.attention.LayerNorm"
        else:
            names = ("query_proj", "key_proj", "value_proj") if arch == "deberta-v2" else ("query", "key", "value")
            qkv = [f"{hf}.attention.self.{n}" for n in names]
            out, attn_norm = f"{hf}.attention.output.dense", f"{hf}.attention.output.LayerNorm"
        yield from _linear(us + ("attn", "Wqkv"), qkv, cfg.attention_bias)
        if cfg.relative_attention == "disentangled" and not cfg.share_att_key:
            for term, name in (("c2p", "pos_key_proj"), ("p2c", "pos_query_proj")):
                if term in cfg.pos_att_type:
                    yield from _linear(us + ("attn", name), [f"{hf}.attention.self.{name}"], True)
        yield from _linear(us + ("attn", "Wo"), [out], cfg.attention_bias)
        yield from _layernorm(us + ("attn_norm",), attn_norm, cfg.norm_bias)
        yield from _linear(us + ("mlp", "Wi"), [f"{hf}.intermediate.dense"], cfg.mlp_bias)
        yield from _linear(us + ("mlp", "Wo"), [f"{hf}.output.dense"], cfg.mlp_bias)
        yield from _layernorm(us + ("mlp_norm",), f"{hf}.output.LayerNorm", cfg.norm_bias)
    if head == "mlm":
        if arch in ("bert", "deberta-v2"):
            dense, norm, bias = "/cls.predictions.transform.dense", "/cls.predictions.transform.LayerNorm", "/cls.predictions.bias"
        else:
            dense, norm, bias = "/lm_head.dense", "/lm_head.layer_norm", "/lm_head.bias"
        yield from _linear(("head", "dense"), [dense], cfg.head_bias)
        yield from _layernorm(("head", "norm"), norm, cfg.norm_bias)
        yield ("decoder_bias",), [bias], "copy"


def _modernbert_map(cfg: ml_collections.ConfigDict, head: Optional[str]):
    yield ("embeddings", "tok_embeddings", "embedding"), ["embeddings.tok_embeddings.weight"], "copy"
    yield from _layernorm(("embeddings", "norm"), "embeddings.norm", cfg.norm_bias)
    for i in range(cfg.num_layers):
        hf, us = f"layers.{i}", (f"layers_{i}",)
        if i > 0 or cfg.first_layer_attn_norm:
            yield from _layernorm(us + ("attn_norm",), f"{hf}.attn_norm", cfg.norm_bias)
        yield from _linear(us + ("attn", "Wqkv"), [f"{hf}.attn.Wqkv"], cfg.attention_bias)
        yield from _linear(us + ("attn", "Wo"), [f"{hf}.attn.Wo"], cfg.attention_bias)
        yield from _layernorm(us + ("mlp_norm",), f"{hf}.mlp_norm", cfg.norm_bias)
        yield from _linear(us + ("mlp", "Wi"), [f"{hf}.mlp.Wi"], cfg.mlp_bias)
        yield from _linear(us + ("mlp", "Wo"), [f"{hf}.mlp.Wo"], cfg.mlp_bias)
    if cfg.final_norm:
        yield from _layernorm(("final_norm",), "final_norm", cfg.norm_bias)
    if head == "mlm":
        yield from _linear(("head", "dense"), ["/head.dense"], cfg.head_bias)
        yield from _layernorm(("head", "norm"), "/head.norm", cfg.norm_bias)
        if cfg.decoder_bias:
            yield ("decoder_bias",), ["/decoder.bias"], "copy"
