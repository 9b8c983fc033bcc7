"""GLiNER training pieces: batches with the reference's type sampling, optimiser, train step.

Type sampling follows the reference ``batch_generate_class_mappings``: each example is
prompted with its own entity types plus in-batch negative types (``max_neg_type_ratio``
negatives per positive type, the ratio drawn per example), shuffled and capped at
``max_types``. ``negative_pool`` replaces the in-batch negatives by a fixed list (e.g. every
training type), as the reference collator's ``ner_negatives`` argument does (ours is
reshuffled every batch); on a corpus with few types a batch holds only a handful of them.
On top, the paper's regulariser: with probability ``drop_types_prob`` a random subset of the prompted types is dropped, so the model learns that types absent
from the prompt are not to be tagged. The optimiser is the reference's: AdamW with
separate learning rates and weight decay for the encoder and the head (decay skips biases and
norms, as the reference), Hugging Face's warmup then linear or cosine decay
(``ceil(warmup_ratio * num_steps)`` warmup steps, as the reference's ``get_warmup_steps``), and
global-norm clipping.
``train.bf16`` (Hugging Face ``TrainingArguments``' name) runs the step's matmuls on bfloat16
inputs with float32 accumulation; parameters and optimiser state stay float32.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gliner_jax import loss as loss_lib
from gliner_jax import processor
from gliner_jax.model import GLiNERModel
from modernbert_jax import config as config_lib
from modernbert_jax import optim


def sample_types(examples: Sequence[dict], rng: np.random.Generator, *, max_types: int,
                 max_neg_type_ratio: int, drop_types_prob: float,
                 negative_pool: Sequence[str] | None = None) -> list[list[str]]:
    """Prompted types per example (positives, negatives from the batch or from ``negative_pool``,
    shuffled, capped, dropped)."""
    pool = sorted(negative_pool) if negative_pool is not None else sorted({e[2] for ex in examples for e in ex["ner"]})
    negatives = list(rng.permutation(pool))[:100]
    out = []
    for ex in examples:
        ratio = int(rng.integers(0, max_neg_type_ratio + 1)) if max_neg_type_ratio else 0
        negs = negatives[: len(ex["ner"]) * ratio]
        types = sorted(set([e[2] for e in ex["ner"]] + negs))
        types = [types[i] for i in rng.permutation(len(types))][:max_types]
        if len(types) > 1 and rng.random() < drop_types_prob:
            keep = int(rng.integers(1, len(types)))
            types = types[:keep]
        out.append(types or ["entity"])  # an example with no annotations still needs one prompt
    return out


def make_batch(examples: Sequence[dict], tok, cfg, rng: np.random.Generator, *, batch_size: int,
               max_words: int, max_tokens: int, negative_pool: Sequence[str] | None = None,
               pad_id: int = 0) -> dict[str, np.ndarray]:
    """Arrays for one training step, always ``[batch_size, max_tokens]`` tokens, ``max_words`` words
    and ``cfg.max_types`` types, so the step compiles once. Longer examples are cut at the end.
    Types are sampled with the head config ``cfg``'s knobs (max_types, max_neg_type_ratio, drop_types_prob);
    ``pad_id`` is the encoder's ``pad_token_id`` (1 for RoBERTa, XLM-R and MPNet)."""
    types = sample_types(examples, rng, max_types=cfg.max_types, max_neg_type_ratio=cfg.max_neg_type_ratio,
                         drop_types_prob=cfg.drop_types_prob, negative_pool=negative_pool)

    def encode(words, labels):
        return processor.encode_batch(tok, words, labels, ent_token=cfg.ent_token, sep_token=cfg.sep_token,
                                      embed_ent_token=cfg.embed_ent_token)

    words = [ex["tokenized_text"][:max_words] for ex in examples]
    encoded = encode(words, types)
    for i, e in enumerate(encoded):
        while len(e.input_ids) > max_tokens and words[i]:  # dense sub-word text: drop words from the end
            fits = sum(1 for p in e.word_pos if 0 <= p < max_tokens - 1)
            words[i] = words[i][: min(fits, len(words[i]) - 1)]
            e = encode([words[i]], [types[i]])[0]
        if len(e.input_ids) > max_tokens:
            raise ValueError(f"the prompt of {len(types[i])} types alone exceeds train.max_tokens={max_tokens}")
        encoded[i] = e
    batch = processor.collate(encoded, pad_id=pad_id, batch_size=batch_size, num_tokens=max_tokens,
                              num_words=max_words, num_types=cfg.max_types)
    type_index = [{t: j for j, t in enumerate(ts)} for ts in types]
    spans = [[(a, b, type_index[i][label]) for a, b, label in ex["ner"] if label in type_index[i] and b < len(words[i])]
             for i, ex in enumerate(examples)]
    spans += [[] for _ in range(batch_size - len(spans))]
    batch["labels"] = processor.span_labels(spans, max_words, cfg.max_width, cfg.max_types)
    return batch


# The train-block fields the optimiser reads, name -> (low, high, low_open, high_open, integer), as
# `config_lib.check_fields` takes them (bounds inclusive unless open, None unbounded).
OPTIMIZER_NUMBERS = {
    "num_steps": (0, None, False, False, True),  # 0: only evaluate
    "learning_rate": (0, None, True, False, False),
    "others_lr": (0, None, True, False, False),
    "weight_decay": (0, None, False, False, False),
    "others_weight_decay": (0, None, False, False, False),
    "warmup_ratio": (0, 1, False, False, False),
    "max_grad_norm": (0, None, True, False, False),
}


def schedules(train: ml_collections.ConfigDict) -> dict[str, optim.Schedule]:
    """The learning-rate schedules of the encoder (``learning_rate``) and the head (``others_lr``)."""
    config_lib.check_fields(train, OPTIMIZER_NUMBERS, prefix="config.train.")
    if train.lr_scheduler_type not in ("linear", "cosine"):
        raise ValueError(f"train.lr_scheduler_type={train.lr_scheduler_type!r} must be 'linear' or 'cosine'")
    return {name: optim.hf_warmup_decay(lr, train.num_steps, train.warmup_ratio, train.lr_scheduler_type)
            for name, lr in (("encoder", train.learning_rate), ("head", train.others_lr))}


def optimizer(train: ml_collections.ConfigDict, params: dict) -> optax.GradientTransformation:
    """AdamW with one learning rate for the encoder and another (``others_lr``) for the head."""
    lr = schedules(train)
    labels = {k: ("encoder" if k == "encoder" else "head") for k in params}
    return optax.chain(
        optax.clip_by_global_norm(train.max_grad_norm),
        optax.multi_transform({"encoder": optax.adamw(lr["encoder"], weight_decay=train.weight_decay,
                                                      mask=optim.decay_mask),
                               "head": optax.adamw(lr["head"], weight_decay=train.others_weight_decay,
                                                   mask=optim.decay_mask)}, labels),
    )


def make_train_step(module: GLiNERModel, tx: optax.GradientTransformation, train: ml_collections.ConfigDict):
    """``(params, opt_state, batch, rng) → (params, opt_state, metrics)``, jitted."""
    if train.bf16:
        module = module.clone(encoder_config=config_lib.replaced(module.encoder_config, matmul_dtype="bfloat16"))

    def loss_fn(params, batch, rng):
        dropout_rng, mask_rng = jax.random.split(rng)
        logits, valid = module.apply({"params": params}, batch, deterministic=False, rngs={"dropout": dropout_rng})
        total = loss_lib.span_loss(
            logits, batch["labels"], batch["type_mask"], valid, alpha=train.focal_loss_alpha,
            gamma=train.focal_loss_gamma, prob_margin=train.focal_loss_prob_margin,
            label_smoothing=train.label_smoothing, reduction=train.loss_reduction, negatives=train.negatives,
            masking=train.masking, rng=mask_rng)
        return total, valid.sum()

    @jax.jit
    def step(params, opt_state, batch, rng) -> tuple[Any, Any, dict]:
        (loss, spans), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch, rng)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        grad_norm = optax.tree.norm(grads)
        # One flag the host fetches every step: a NaN/Inf loss or gradient poisons the params.
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        return params, opt_state, {"loss": loss, "grad_norm": grad_norm, "spans": spans, "finite": finite}

    return step
