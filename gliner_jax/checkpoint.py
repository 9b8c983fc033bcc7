"""Read and write GLiNER directories in the reference library's layout.

A directory holds ``gliner_config.json`` (head options plus ``encoder_config``, the
backbone's Hugging Face config), ``model.safetensors`` (or the reference's default
``pytorch_model.bin``) with PyTorch parameter names, and ``tokenizer.json`` with the
special tokens added. We write the same layout, so the reference library and we read
each other's checkpoints. The backbone's tensors go through ``modernbert_jax.hf``; this
module maps only the GLiNER head.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modernbert_jax import hf

ENCODER_PREFIX = "token_rep_layer.bert_layer.model."


def check_backbone(encoder_config: dict[str, Any] | None, where: str) -> None:
    """Raise a ValueError naming the architecture unless its ``model_type`` is in ``hf.SUPPORTED``."""
    if not encoder_config:
        raise ValueError(f"{where}: gliner_config.json has no encoder_config, so the backbone is unknown")
    model_type = encoder_config.get("model_type")
    if model_type not in hf.SUPPORTED:
        arch = ", ".join(encoder_config.get("architectures") or []) or "unknown architecture"
        raise ValueError(
            f"{where}: backbone model_type={model_type!r} ({arch}) is not supported; "
            f"gliner_jax runs GLiNER on these backbone model_types only: {', '.join(hf.SUPPORTED)}"
        )


def load_encoder(encoder_config: dict[str, Any], tensors: dict[str, np.ndarray]):
    """Backbone ``(module, params)`` from the prefixed tensors, through ``modernbert_jax.hf``."""
    encoder = {k[len(ENCODER_PREFIX):]: v for k, v in tensors.items() if k.startswith(ENCODER_PREFIX)}
    return hf.from_tensors(encoder_config, encoder, where="GLiNER checkpoint backbone")


def encoder_tensors(module, params) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The backbone as (HF config dict, prefixed tensors)."""
    config, tensors = hf.to_tensors(module, params)
    return config, {ENCODER_PREFIX + k: v for k, v in tensors.items()}


_LSTM_DIRECTIONS = (("forward", ""), ("backward", "_reverse"))


def _head_map(num_rnn_layers: int, has_projection: bool):
    """``(our param path, reference tensor name, transposed)`` for every head tensor but the LSTM
    biases (one of ours, two of theirs). One table serves loading and saving, so they cannot drift."""

    def dense(path: tuple, name: str):
        yield path + ("kernel",), f"{name}.weight", True
        yield path + ("bias",), f"{name}.bias", False

    def ffn(path: tuple, name: str):  # Linear, ReLU, Dropout, Linear: indices 0 and 3
        yield from dense(path + ("dense_in",), f"{name}.0")
        yield from dense(path + ("dense_out",), f"{name}.3")

    if has_projection:
        yield from dense(("projection",), "token_rep_layer.projection")
    for layer in range(num_rnn_layers):
        for ours, suffix in _LSTM_DIRECTIONS:
            for w in ("ih", "hh"):
                yield ("rnn", f"l{layer}", f"{ours}_w_{w}"), f"rnn.lstm.weight_{w}_l{layer}{suffix}", True
    span = "span_rep_layer.span_rep_layer"
    for part in ("project_start", "project_end"):
        yield from ffn(("span_rep", part), f"{span}.{part}")
    for ours, index in (("in", 0), ("out", 3)):
        yield ("span_rep", f"out_dense_{ours}_kernel"), f"{span}.out_project.{index}.weight", True
        yield ("span_rep", f"out_dense_{ours}_bias"), f"{span}.out_project.{index}.bias", False
    yield from ffn(("prompt_rep",), "prompt_rep_layer")


def _set(tree: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def head_from_torch(tensors: dict[str, np.ndarray], num_rnn_layers: int, has_projection: bool) -> dict:
    """GLiNER head params (our tree) from reference parameter names."""

    def get(name: str) -> np.ndarray:
        if name not in tensors:
            raise ValueError(f"tensor {name!r} is missing from the GLiNER checkpoint")
        return np.asarray(tensors[name], np.float32)

    params: dict = {}
    for path, name, transposed in _head_map(num_rnn_layers, has_projection):
        _set(params, path, get(name).T if transposed else get(name))
    for layer in range(num_rnn_layers):
        for ours, suffix in _LSTM_DIRECTIONS:
            bias = get(f"rnn.lstm.bias_ih_l{layer}{suffix}") + get(f"rnn.lstm.bias_hh_l{layer}{suffix}")
            _set(params, ("rnn", f"l{layer}", f"{ours}_bias"), bias)
    return params


def head_to_torch(params: dict) -> dict[str, np.ndarray]:
    """Inverse of ``head_from_torch`` (the LSTM bias is written as ``bias_ih``, ``bias_hh = 0``)."""
    num_rnn_layers = len(params.get("rnn", {}))
    out: dict[str, np.ndarray] = {}
    for path, name, transposed in _head_map(num_rnn_layers, "projection" in params):
        value = params
        for key in path:
            value = value[key]
        out[name] = np.asarray(value).T if transposed else np.asarray(value)
    for layer in range(num_rnn_layers):
        for ours, suffix in _LSTM_DIRECTIONS:
            bias = np.asarray(params["rnn"][f"l{layer}"][f"{ours}_bias"])
            out[f"rnn.lstm.bias_ih_l{layer}{suffix}"] = bias
            out[f"rnn.lstm.bias_hh_l{layer}{suffix}"] = np.zeros_like(bias)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}
