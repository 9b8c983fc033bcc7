"""AdamW with linear warmup and linear decay, as the Hugging Face trainer under sentence-transformers.

The reference (transformers ``Trainer`` defaults): AdamW (betas 0.9/0.999, eps 1e-8, decoupled
weight decay on every parameter except biases and norm weights), gradient clipping at global
norm 1.0, and ``get_linear_schedule_with_warmup`` with ``ceil(warmup_proportion * total)``
warmup steps -- so the very first update has learning rate 0.
"""

from __future__ import annotations

import math

import jax
import optax

# No decay on biases and norm weights, chosen by parameter path: the pretraining optimiser's mask.
from modernbert_jax.optim import decay_mask


def warmup_linear_schedule(learning_rate: float, total_steps: int, warmup_proportion: float) -> optax.Schedule:
    """``lr * s / w`` for s < w, then ``lr * (total - s) / (total - w)``, never below 0."""
    warmup = math.ceil(total_steps * warmup_proportion)

    def schedule(step):
        up = step / max(1, warmup)
        down = (total_steps - step) / max(1, total_steps - warmup)
        return learning_rate * jax.numpy.where(step < warmup, up, jax.numpy.maximum(0.0, down))

    return schedule


def adamw(learning_rate: float, total_steps: int, *, warmup_proportion: float = 0.1, weight_decay: float = 0.01,
          max_grad_norm: float = 1.0) -> optax.GradientTransformation:
    """The reference's optimiser as one optax chain."""
    schedule = warmup_linear_schedule(learning_rate, total_steps, warmup_proportion)
    parts = [optax.clip_by_global_norm(max_grad_norm)] if max_grad_norm > 0 else []
    parts.append(optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay, mask=decay_mask))
    return optax.chain(*parts)
