"""Stage-1 losses on sentence embeddings, as sentence-transformers / setfit define them.

* ``cosine_similarity_loss``: MSE between cos(u, v) and the pair target (SetFit's default).
* ``supcon_loss``: supervised contrastive loss (Khosla et al. 2020), one view per sentence,
  temperature 0.07 (``setfit.losses.SupConLoss``).
* ``batch_hard_triplet_loss`` / ``batch_all_triplet_loss``: in-batch triplet losses over cosine
  distance with margin 0.25 (SetFit's defaults for sentence-transformers' triplet losses).

All are pure functions of embeddings and labels so they jit and differentiate as they stand.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

_COS_EPS = 1e-8  # torch.cosine_similarity's clamp on each norm


def cosine_similarity(u: jax.Array, v: jax.Array) -> jax.Array:
    """Row-wise cosine similarity ``[B]`` of ``u, v [B, D]``."""
    nu = jnp.maximum(jnp.linalg.norm(u, axis=-1), _COS_EPS)
    nv = jnp.maximum(jnp.linalg.norm(v, axis=-1), _COS_EPS)
    return jnp.sum(u * v, axis=-1) / (nu * nv)


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    """``torch.nn.functional.normalize(x, p=2, dim=-1)``."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def cosine_similarity_loss(u: jax.Array, v: jax.Array, target: jax.Array, weight: jax.Array | None = None) -> jax.Array:
    """Mean squared error between cos(u_i, v_i) and ``target_i``; ``weight`` masks padded pairs."""
    err = jnp.square(cosine_similarity(u, v) - target)
    if weight is None:
        return err.mean()
    return jnp.sum(err * weight) / jnp.maximum(weight.sum(), 1.0)


def pairwise_cosine_distance(x: jax.Array) -> jax.Array:
    """``1 - cos(x_i, x_j)`` for all pairs, ``[B, B]``."""
    x = l2_normalize(x)
    return 1.0 - x @ x.T


def _label_masks(labels: jax.Array, valid: jax.Array | None):
    b = labels.shape[0]
    valid = jnp.ones((b,), bool) if valid is None else valid.astype(bool)
    both = valid[:, None] & valid[None, :]
    same = (labels[:, None] == labels[None, :]) & both
    not_self = ~jnp.eye(b, dtype=bool)
    return valid, same & not_self, (~same) & both


def supcon_loss(
    features: jax.Array, labels: jax.Array, valid: jax.Array | None = None,
    temperature: float = 0.07, base_temperature: float = 0.07,
) -> jax.Array:
    """Supervised contrastive loss, contrast mode "all", one view.

    Anchors without a positive in the batch give NaN in the reference; here they are left out
    of the mean (the group-by-label batches never produce them).
    """
    f = l2_normalize(features)
    valid, positive, _ = _label_masks(labels, valid)
    logits = (f @ f.T) / temperature
    # Stability shift as the reference (its max includes the anchor itself); masked rows ignored.
    logits = logits - jax.lax.stop_gradient(jnp.max(jnp.where(valid[None, :], logits, -jnp.inf), axis=1, keepdims=True))
    contrast = valid[None, :] & ~jnp.eye(f.shape[0], dtype=bool)
    log_denominator = jnp.log(jnp.sum(jnp.where(contrast, jnp.exp(logits), 0.0), axis=1, keepdims=True))
    log_prob = logits - log_denominator
    n_pos = positive.sum(1)
    mean_log_prob_pos = jnp.sum(jnp.where(positive, log_prob, 0.0), axis=1) / jnp.maximum(n_pos, 1)
    per_anchor = -(temperature / base_temperature) * mean_log_prob_pos
    counted = valid & (n_pos > 0)
    return jnp.sum(jnp.where(counted, per_anchor, 0.0)) / jnp.maximum(counted.sum(), 1)


def batch_hard_triplet_loss(
    features: jax.Array, labels: jax.Array, valid: jax.Array | None = None, margin: float = 0.25,
) -> jax.Array:
    """Hardest positive vs hardest negative per anchor (Hermans et al. 2017), cosine distance."""
    dist = pairwise_cosine_distance(features)
    valid, positive, negative = _label_masks(labels, valid)
    hardest_positive = jnp.max(jnp.where(positive, dist, 0.0), axis=1)
    # As sentence-transformers: non-negatives are pushed up by the row's max distance.
    row_max = jnp.max(jnp.where(valid[None, :], dist, -jnp.inf), axis=1, keepdims=True)
    hardest_negative = jnp.min(jnp.where(valid[None, :], dist + row_max * (~negative), jnp.inf), axis=1)
    per_anchor = jax.nn.relu(hardest_positive - hardest_negative + margin)
    return jnp.sum(jnp.where(valid, per_anchor, 0.0)) / jnp.maximum(valid.sum(), 1)


def batch_all_triplet_loss(
    features: jax.Array, labels: jax.Array, valid: jax.Array | None = None, margin: float = 0.25,
) -> jax.Array:
    """Mean over all valid triplets (a, p, n) with a positive loss, cosine distance."""
    dist = pairwise_cosine_distance(features)
    _, positive, negative = _label_masks(labels, valid)
    triplet = dist[:, :, None] - dist[:, None, :] + margin
    mask = positive[:, :, None] & negative[:, None, :]
    triplet = jax.nn.relu(jnp.where(mask, triplet, 0.0))
    num_positive = jnp.sum(triplet > 1e-16)
    return triplet.sum() / (num_positive + 1e-16)


# Name -> in-batch loss (labels per sentence); the pair loss is handled separately.
IN_BATCH_LOSSES: dict[str, Callable] = {
    "supcon": supcon_loss,
    "batch_hard_triplet": batch_hard_triplet_loss,
    "batch_all_triplet": batch_all_triplet_loss,
}
LOSSES = ("cosine_similarity", *IN_BATCH_LOSSES)
