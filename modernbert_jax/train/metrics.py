"""Training metrics: TensorBoard event files + JSONL, and the model-FLOPs utilisation estimate.

Only process 0 writes, so a multi-host run produces one log. Each JSONL line is one record
`{"step": s, "split": "train"|"eval", ...scalars}`; the same scalars go to TensorBoard under
`split/name`.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Mapping

import jax
import numpy as np

from modernbert_jax import config as config_lib

# Dense bf16 peak FLOP/s per device, for the MFU estimate (vendor datasheets, no sparsity).
PEAK_FLOPS_BY_DEVICE_KIND = {
    "NVIDIA H100": 989e12,
    "NVIDIA H200": 989e12,
    "NVIDIA A100-SXM4-80GB": 312e12,
    "NVIDIA A100-SXM4-40GB": 312e12,
}


def peak_flops_per_device(override: float | None = None) -> float | None:
    """The config's value if set, else the datasheet number for this device kind, else None."""
    if override:
        return float(override)
    kind = jax.devices()[0].device_kind
    for name, flops in PEAK_FLOPS_BY_DEVICE_KIND.items():
        if kind.startswith(name):
            return flops
    return None


def train_flops_per_token(params: Any, model_cfg: Any, seq_len: int, masked_fraction: float) -> float:
    """Forward+backward FLOPs per input token (the 6N rule plus attention scores).

    Every matrix except the tied token embedding counts 6 FLOPs per parameter per token; the
    embedding is used as the decoder only at masked positions (sparse prediction), so it counts
    at `masked_fraction` of the tokens (the lookup itself is free). Attention adds
    2 matmuls x 2 FLOPs x 3 (fwd+bwd) x hidden x context per layer, where local layers see at most
    `local_attention` + 1 keys (the window of `config.layer_half_window`).
    """
    matrix_params, embed = 0, 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if leaf.ndim < 2:
            continue
        names = "/".join(str(getattr(k, "key", k)) for k in path)
        if "tok_embeddings" in names:
            embed += leaf.size
        elif "position_embeddings" not in names and "token_type_embeddings" not in names:
            matrix_params += leaf.size
    attention = 0.0
    for layer in range(model_cfg.num_layers):
        half = config_lib.layer_half_window(model_cfg, layer)
        context = seq_len if half is None else min(seq_len, 2 * half + 1)
        attention += 12.0 * model_cfg.hidden_size * context
    return 6.0 * matrix_params + 6.0 * masked_fraction * embed + attention


class MetricsWriter:
    """Append scalars to `workdir/metrics.jsonl` and TensorBoard events in `workdir/tensorboard`."""

    def __init__(self, workdir: str):
        self.enabled = jax.process_index() == 0
        self._jsonl = None
        self._tb = None
        if self.enabled:
            os.makedirs(workdir, exist_ok=True)
            self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a", encoding="utf-8")
            self._tb = _summary_writer_class()(os.path.join(workdir, "tensorboard"))

    def write(self, step: int, split: str, scalars: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": int(step), "split": split}
        for name, value in scalars.items():
            value = float(np.asarray(value))
            record[name] = value
            self._tb.add_scalar(f"{split}/{name}", value, global_step=int(step))
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()

    def close(self) -> None:
        if self.enabled:
            self._jsonl.close()
            self._tb.close()


def _summary_writer_class():
    """tensorboardX's SummaryWriter, imported without torch.

    tensorboardX imports torch (when installed) only to accept torch tensors; we log floats, and
    that import costs seconds at every launch, so torch is hidden for the duration of the import.
    """
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # makes `import torch` raise ImportError, which tensorboardX handles
    try:
        from tensorboardX import SummaryWriter
    finally:
        if hide:
            del sys.modules["torch"]
    return SummaryWriter


def read_jsonl(path: str) -> list[dict]:
    """All records of a metrics.jsonl file."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
