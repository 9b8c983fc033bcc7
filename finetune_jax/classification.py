"""The fine-tuning "kind" for sequence classification (single-label, multi-label, regression) and
token classification (BIO tagging): ``build``, ``batches``, ``loss``, ``evaluate``, ``export``.

The models are ``modernbert_jax``'s Hugging Face task heads (``hf.from_pretrained(head=
"sequence_classification" | "token_classification")``): a task checkpoint loads whole, a bare
encoder gets a fresh head. Training and evaluation batches are packed (``finetune_jax.data``):
a sequence head pools each slot (one example) and returns ``[S, C]`` logits, a token head
returns ``[R, T, C]``. Losses are averaged as transformers' ``*ForSequenceClassification`` /
``*ForTokenClassification`` do: cross-entropy over the batch's examples, BCE-with-logits over
every (example, class) element, MSE over the examples, token cross-entropy over the tokens that
carry a label (first sub-tokens). ``export`` writes a transformers directory (``id2label``,
``problem_type``, the tokenizer's ``tokenizer.json``) that ``AutoModelFor...`` loads.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tokenizers

from finetune_jax import data, metrics, tasks
from modernbert_jax import hf, safe_io, sharding
from modernbert_jax.data import packing
from modernbert_jax import model as model_lib

SEQUENCE_KINDS = ("classification", "multi_label", "regression")
KINDS = (*SEQUENCE_KINDS, "token_classification")
PROBLEM_TYPES = {"classification": "single_label_classification", "multi_label": "multi_label_classification",
                 "regression": "regression"}
# The batch key of each sequence kind's targets; the loss picks its form by which one is present.
TARGET_KEYS = {"classification": "label", "multi_label": "label_set", "regression": "value"}


def num_labels(task: tasks.Task) -> int:
    """Outputs of the head: one per class or tag, a single one for regression."""
    if task.kind == "regression":
        return 1
    if not task.label_names:
        raise ValueError(f"task {task.name!r} ({task.kind}) has no label names")
    return len(task.label_names)


def build(config: ml_collections.ConfigDict, task: tasks.Task, rng: jax.Array) -> tuple[nn.Module, Any]:
    """The backbone with the task's head (fresh from ``rng`` unless the checkpoint has one); the
    module's in-model checks are off because ``batches`` checks every batch on the host."""
    from finetune_jax import loop  # loop dispatches to this module

    head = "token_classification" if task.kind == "token_classification" else "sequence_classification"
    module, params = hf.from_pretrained(loop.backbone_dir(config), head=head, num_labels=num_labels(task), rng=rng)
    return module.clone(config=model_lib.checked_on_host(module.config)), params


def _row_multiple(config: ml_collections.ConfigDict) -> int:
    """The devices a batch's rows are split over (the mesh's data and fsdp axes)."""
    data_axis, fsdp, _ = sharding.mesh_shape(config.mesh, jax.device_count())
    return data_axis * fsdp


def _encoded(examples: list[dict], tokenizer: tokenizers.Tokenizer, config: ml_collections.ConfigDict,
             task: tasks.Task) -> tuple[list[list[int]], Any]:
    """Token ids and labels (targets per example, or token labels per example) of ``examples``."""
    if task.kind not in KINDS:
        raise ValueError(f"task {task.name!r} is of kind {task.kind!r}, not one of {KINDS}")
    if not examples:
        raise ValueError(f"task {task.name!r}: a split holds no examples")
    if task.kind == "token_classification":
        return data.encode_words(examples, tokenizer, config.data.max_length, task.label_names)
    targets = data.sequence_targets(examples, task.kind, num_labels(task))  # before tokenising: cheap errors first
    return data.encode_texts(examples, tokenizer, config.data.max_length), targets


def _batch(ids: list[list[int]], labels: Any, group: np.ndarray, kind: str, module: nn.Module,
           config: ml_collections.ConfigDict, num_slots: int, rows: int | None = None) -> dict[str, np.ndarray]:
    cfg = module.config
    common = dict(row_len=config.data.max_length, num_slots=num_slots, pad_id=int(cfg.pad_token_id),
                  row_multiple=_row_multiple(config), rows=rows)
    if kind == "token_classification":
        arrays = data.pack_batch([ids[i] for i in group], token_labels=[labels[i] for i in group], **common)
    else:
        arrays = data.pack_batch([ids[i] for i in group], **common)
        targets = np.zeros((num_slots, *labels.shape[1:]), labels.dtype)
        targets[: len(group)] = labels[group]
        arrays[TARGET_KEYS[kind]] = targets
    model_lib.check_encoder_inputs(cfg, arrays["input_ids"], arrays["segment_ids"], arrays["positions"])
    return arrays


def batches(examples: list[dict], tokenizer: tokenizers.Tokenizer, module: nn.Module,
            config: ml_collections.ConfigDict, *, seed: int, epoch: int) -> list[dict[str, np.ndarray]]:
    """One epoch of packed training batches of ``train.batch_size`` examples (shuffled by ``(seed, epoch)``),
    all with the rows the fullest of them needs: one shape, so the training step compiles once."""
    task = tasks.for_config(config)
    ids, labels = _encoded(examples, tokenizer, config, task)
    size = config.train.batch_size
    groups = data.epoch_groups(len(ids), size, seed=seed, epoch=epoch)
    # Exactly the rows the fullest batch needs (no power-of-two rounding: one shape per epoch already
    # bounds the compilations, and rounding up would pad a packed batch back to a padded one's size).
    needed = max(packing.rows_needed([len(ids[i]) for i in group], config.data.max_length) for group in groups)
    rows = -(-needed // _row_multiple(config)) * _row_multiple(config)
    return [_batch(ids, labels, group, task.kind, module, config, size, rows) for group in groups]


def _logits(module: nn.Module, params: Any, batch: dict[str, jax.Array], *, rng: jax.Array | None = None,
            deterministic: bool = True) -> jax.Array:
    rngs = None if deterministic else {"dropout": rng}
    inputs = (batch["input_ids"], batch["segment_ids"], batch["positions"])
    if "token_labels" in batch:
        return module.apply({"params": params}, *inputs, deterministic=deterministic, rngs=rngs)
    return module.apply({"params": params}, *inputs, token_slot=batch["token_slot"], slot_first=batch["slot_first"],
                        deterministic=deterministic, rngs=rngs)


def _masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    mask = mask.astype(jnp.float32)
    return (values * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def loss(module: nn.Module, params: Any, batch: dict[str, jax.Array], *, rng: jax.Array,
         deterministic: bool) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The batch's mean loss (transformers' averaging, see the module docstring) and its label count."""
    logits = _logits(module, params, batch, rng=rng, deterministic=deterministic).astype(jnp.float32)
    if "token_labels" in batch:
        labels = batch["token_labels"]
        labelled = labels != data.IGNORE_INDEX
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.where(labelled, labels, 0))
        return _masked_mean(ce, labelled), {"labels": labelled.sum()}
    valid = batch["slot_valid"]
    if "label" in batch:
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
        value = _masked_mean(ce, valid)
    elif "label_set" in batch:
        bce = optax.sigmoid_binary_cross_entropy(logits, batch["label_set"])
        value = _masked_mean(bce, jnp.broadcast_to(valid[:, None], bce.shape))
    else:
        value = _masked_mean((logits[:, 0] - batch["value"]) ** 2, valid)
    return value, {"labels": valid.sum()}


# The jitted forward of each module evaluated so far (keyed by identity: a module holding a ConfigDict
# is not hashable), so evaluating after every epoch compiles each batch shape once per run.
_FORWARDS: dict[int, tuple[nn.Module, Any]] = {}


def _forward(module: nn.Module):
    if id(module) not in _FORWARDS:
        _FORWARDS[id(module)] = (module, jax.jit(functools.partial(_logits, module)))
    return _FORWARDS[id(module)][1]


def evaluate(module: nn.Module, params: Any, examples: list[dict], tokenizer: tokenizers.Tokenizer,
             config: ml_collections.ConfigDict, task: tasks.Task) -> dict[str, float]:
    """Predict every example (packed blocks of ``eval.batch_size``) and score the split with
    ``finetune_jax.metrics``; token classification is scored on the words that fit ``data.max_length``
    (their tags, as transformers' ``run_ner`` compares only labelled positions)."""
    ids, labels = _encoded(examples, tokenizer, config, task)
    forward = _forward(module)
    size = config.eval.batch_size
    predicted, gold = [], []
    for group in data.epoch_groups(len(ids), size, seed=None):
        batch = _batch(ids, labels, group, task.kind, module, config, size)
        logits = np.asarray(forward(params, batch), np.float32)
        if task.kind == "token_classification":
            flat_logits, flat_labels = logits.reshape(-1, logits.shape[-1]), batch["token_labels"].reshape(-1)
            for j, i in enumerate(group):
                span = slice(int(batch["slot_first"][j]), int(batch["slot_first"][j]) + len(ids[i]))
                labelled = flat_labels[span] != data.IGNORE_INDEX
                predicted.append([task.label_names[t] for t in flat_logits[span][labelled].argmax(-1)])
                gold.append([task.label_names[t] for t in flat_labels[span][labelled]])
        else:
            predicted.append(logits[: len(group)])
    if task.kind == "token_classification":
        return metrics.token_classification(predicted, gold)
    logits = np.concatenate(predicted)
    if task.kind == "classification":
        return metrics.classification(logits.argmax(-1), labels, task.label_names)
    if task.kind == "multi_label":
        return metrics.multi_label(logits > 0, labels)  # sigmoid > 0.5
    return metrics.regression(logits[:, 0], labels)


def export(path: str | Path, module: nn.Module, params: Any, tokenizer: tokenizers.Tokenizer, task: tasks.Task) -> None:
    """A transformers directory: weights and config (``id2label``, ``problem_type``) and ``tokenizer.json``."""
    hf.save_pretrained(path, module, params, overwrite=True, labels=task.label_names,
                       problem_type=PROBLEM_TYPES.get(task.kind))
    safe_io.write_file(Path(path) / "tokenizer.json", tokenizer.to_str())
