"""AdamW with linear warmup and linear decay, as the Hugging Face trainer under sentence-transformers.

The reference (transformers ``Trainer`` defaults): AdamW (betas 0.9/0.999, eps 1e-8, decoupled
weight decay on every parameter except biases and norm weights), gradient clipping at global
norm 1.0, and ``get_linear_schedule_with_warmup`` with ``ceil(warmup_proportion * total)``
warmup steps -- so the very first update has learning rate 0.
"""

from __future__ import annotations

import optax

from modernbert_jax import optim


def adamw(learning_rate: float, total_steps: int, *, warmup_proportion: float = 0.1, weight_decay: float = 0.01,
          max_grad_norm: float = 1.0) -> optax.GradientTransformation:
    """The reference's optimiser as one optax chain."""
    schedule = optim.hf_warmup_decay(learning_rate, total_steps, warmup_proportion, "linear")
    parts = [optax.clip_by_global_norm(max_grad_norm)] if max_grad_norm > 0 else []
    # No decay on biases and norm weights, chosen by parameter path: the pretraining optimiser's mask.
    parts.append(optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay, mask=optim.decay_mask))
    return optax.chain(*parts)
