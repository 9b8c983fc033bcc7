"""GLiNER's span loss: BCE with the reference's focal options, masks and negative sampling.

``focal_loss_with_logits`` follows the reference term by term (label smoothing toward 0.5,
probability margin on negatives, ``eps`` clamping of the logs, ``(1 - p_t)^gamma`` and
``alpha`` weighting). ``span_loss`` masks padded types and invalid spans, optionally drops
negatives at random (``masking`` = "global" | "label" | "span"), and reduces by "sum" or
"mean" (mean over valid spans, as the reference).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

MASKING_MODES = ("none", "global", "label", "span")


def focal_loss_with_logits(
    logits: jax.Array,
    targets: jax.Array,
    *,
    alpha: float = -1.0,
    gamma: float = 0.0,
    prob_margin: float = 0.0,
    label_smoothing: float = 0.0,
    eps: float = 1e-6,
) -> jax.Array:
    """Element-wise loss (no reduction)."""
    if label_smoothing:
        targets = jax.lax.stop_gradient(targets * (1 - label_smoothing) + 0.5 * label_smoothing)
    p = jax.nn.sigmoid(logits)
    pm = jnp.clip(p - prob_margin, 0.0, 1.0)
    loss = -targets * jnp.log(jnp.maximum(p, eps)) - (1.0 - targets) * jnp.log(jnp.maximum(1.0 - pm, eps))
    if gamma > 0:
        p_t = p * targets + (1 - pm) * (1 - targets)
        loss = loss * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


def negative_mask(labels: jax.Array, masking: str, negatives: float, rng: jax.Array | None) -> jax.Array | float:
    """Keep-mask for ``labels [B, S, C]``: negatives kept with probability ``negatives``."""
    if masking not in MASKING_MODES:
        raise ValueError(f"masking={masking!r} is not one of {MASKING_MODES}")
    if masking == "none":
        return 1.0
    if rng is None:
        raise ValueError(f"masking={masking!r} samples negatives and needs an rng")
    if masking == "global":
        negative = labels == 0
    elif masking == "label":  # types with no positive span in the example
        negative = jnp.broadcast_to((labels.sum(axis=1) == 0)[:, None, :], labels.shape)
    else:  # spans with no positive type
        negative = jnp.broadcast_to((labels.sum(axis=2) == 0)[:, :, None], labels.shape)
    keep = jax.random.uniform(rng, labels.shape) < negatives
    return jnp.where(negative, keep.astype(jnp.float32), 1.0)


def span_loss(
    logits: jax.Array,
    labels: jax.Array,
    type_mask: jax.Array,
    span_valid: jax.Array,
    *,
    reduction: str = "sum",
    negatives: float = 1.0,
    masking: str = "none",
    rng: jax.Array | None = None,
    **focal,
) -> jax.Array:
    """Scalar loss for ``logits``/``labels [B, W, K, C]``, ``type_mask [B, C]``, ``span_valid [B, W, K]``.

    ``focal`` holds the options of ``focal_loss_with_logits`` (alpha, gamma, prob_margin, label_smoothing).
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction={reduction!r} must be 'sum' or 'mean'")
    B, W, K, C = logits.shape
    flat_logits = logits.reshape(B, W * K, C)
    flat_labels = labels.reshape(B, W * K, C)
    losses = focal_loss_with_logits(flat_logits, flat_labels, **focal)
    losses = losses * negative_mask(flat_labels, masking, negatives, rng)
    span_mask = span_valid.reshape(B, W * K, 1).astype(losses.dtype)
    losses = losses * type_mask[:, None, :].astype(losses.dtype) * span_mask
    total = losses.sum()
    if reduction == "mean":
        count = span_mask.sum()
        return jnp.where(count > 0, total / jnp.maximum(count, 1.0), 0.0)
    return total
