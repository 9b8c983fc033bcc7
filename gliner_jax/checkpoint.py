"""Read and write GLiNER directories in the reference library's layout.

A directory holds ``gliner_config.json`` (head options plus ``encoder_config``, the
backbone's Hugging Face config), ``model.safetensors`` (or the reference's default
``pytorch_model.bin``) with PyTorch parameter names, and ``tokenizer.json`` with the
special tokens added. We write the same layout, so the reference library and we read
each other's checkpoints. The backbone's tensors go through ``modernbert_jax.hf``; this
module maps only the GLiNER head.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from modernbert_jax import hf

ENCODER_PREFIX = "token_rep_layer.bert_layer.model."
SUPPORTED_BACKBONES = hf.SUPPORTED


def check_backbone(encoder_config: dict[str, Any] | None, where: str) -> None:
    """Raise a ValueError naming the architecture unless it is BERT or ModernBERT."""
    if not encoder_config:
        raise ValueError(f"{where}: gliner_config.json has no encoder_config, so the backbone is unknown")
    model_type = encoder_config.get("model_type")
    if model_type not in SUPPORTED_BACKBONES:
        arch = ", ".join(encoder_config.get("architectures") or []) or "unknown architecture"
        raise ValueError(
            f"{where}: backbone model_type={model_type!r} ({arch}) is not supported; "
            f"gliner_jax runs GLiNER on {' and '.join(SUPPORTED_BACKBONES)} backbones only"
        )


def load_encoder(encoder_config: dict[str, Any], tensors: dict[str, np.ndarray]):
    """Backbone ``(module, params)`` from the prefixed tensors, through ``modernbert_jax.hf``."""
    from safetensors.numpy import save_file

    encoder = {k[len(ENCODER_PREFIX):]: v for k, v in tensors.items() if k.startswith(ENCODER_PREFIX)}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(encoder_config))
        save_file({k: np.ascontiguousarray(v) for k, v in encoder.items()}, str(Path(tmp) / "model.safetensors"))
        return hf.from_pretrained(tmp)


def encoder_tensors(module, params) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The backbone as (HF config dict, prefixed tensors)."""
    from safetensors.numpy import load_file

    with tempfile.TemporaryDirectory() as tmp:
        out = hf.save_pretrained(Path(tmp) / "enc", module, params)
        config = json.loads((out / "config.json").read_text())
        tensors = {ENCODER_PREFIX + k: v for k, v in load_file(str(out / "model.safetensors")).items()}
    return config, tensors


def _ffn_pairs(ours: str, theirs: str):
    yield (ours, "dense_in"), f"{theirs}.0"
    yield (ours, "dense_out"), f"{theirs}.3"


def head_from_torch(tensors: dict[str, np.ndarray], num_rnn_layers: int, has_projection: bool) -> dict:
    """GLiNER head params (our tree) from reference parameter names."""

    def get(name: str) -> np.ndarray:
        if name not in tensors:
            raise ValueError(f"tensor {name!r} is missing from the GLiNER checkpoint")
        return np.asarray(tensors[name], np.float32)

    def dense(name: str) -> dict:
        return {"kernel": get(f"{name}.weight").T, "bias": get(f"{name}.bias")}

    params: dict = {}
    if has_projection:
        params["projection"] = dense("token_rep_layer.projection")
    if num_rnn_layers:
        rnn = {}
        for layer in range(num_rnn_layers):
            rnn[f"l{layer}"] = {}
            for ours, suffix in (("forward", ""), ("backward", "_reverse")):
                t = f"rnn.lstm.{{}}_l{layer}{suffix}"
                rnn[f"l{layer}"][f"{ours}_w_ih"] = get(t.format("weight_ih")).T
                rnn[f"l{layer}"][f"{ours}_w_hh"] = get(t.format("weight_hh")).T
                rnn[f"l{layer}"][f"{ours}_bias"] = get(t.format("bias_ih")) + get(t.format("bias_hh"))
        params["rnn"] = rnn
    span = {}
    for part in ("project_start", "project_end"):
        span[part] = {k[1]: dense(v) for k, v in _ffn_pairs(part, f"span_rep_layer.span_rep_layer.{part}")}
    out = "span_rep_layer.span_rep_layer.out_project"
    span["out_dense_in_kernel"] = get(f"{out}.0.weight").T
    span["out_dense_in_bias"] = get(f"{out}.0.bias")
    span["out_dense_out_kernel"] = get(f"{out}.3.weight").T
    span["out_dense_out_bias"] = get(f"{out}.3.bias")
    params["span_rep"] = span
    params["prompt_rep"] = {k[1]: dense(v) for k, v in _ffn_pairs("prompt_rep", "prompt_rep_layer")}
    return params


def head_to_torch(params: dict) -> dict[str, np.ndarray]:
    """Inverse of ``head_from_torch`` (the LSTM bias is written as ``bias_ih``, ``bias_hh = 0``)."""
    out: dict[str, np.ndarray] = {}

    def dense(tree: dict, name: str) -> None:
        out[f"{name}.weight"] = np.asarray(tree["kernel"]).T
        out[f"{name}.bias"] = np.asarray(tree["bias"])

    if "projection" in params:
        dense(params["projection"], "token_rep_layer.projection")
    for key, tree in params.get("rnn", {}).items():
        layer = key[1:]
        for direction, suffix in (("forward", ""), ("backward", "_reverse")):
            bias = np.asarray(tree[f"{direction}_bias"])
            out[f"rnn.lstm.weight_ih_l{layer}{suffix}"] = np.asarray(tree[f"{direction}_w_ih"]).T
            out[f"rnn.lstm.weight_hh_l{layer}{suffix}"] = np.asarray(tree[f"{direction}_w_hh"]).T
            out[f"rnn.lstm.bias_ih_l{layer}{suffix}"] = bias
            out[f"rnn.lstm.bias_hh_l{layer}{suffix}"] = np.zeros_like(bias)
    span = params["span_rep"]
    for part in ("project_start", "project_end"):
        for (_, sub), name in _ffn_pairs(part, f"span_rep_layer.span_rep_layer.{part}"):
            dense(span[part][sub], name)
    o = "span_rep_layer.span_rep_layer.out_project"
    out[f"{o}.0.weight"] = np.asarray(span["out_dense_in_kernel"]).T
    out[f"{o}.0.bias"] = np.asarray(span["out_dense_in_bias"])
    out[f"{o}.3.weight"] = np.asarray(span["out_dense_out_kernel"]).T
    out[f"{o}.3.bias"] = np.asarray(span["out_dense_out_bias"])
    for (_, sub), name in _ffn_pairs("prompt_rep", "prompt_rep_layer"):
        dense(params["prompt_rep"][sub], name)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}
