"""The jitted MLM train and eval steps.

A batch is a dict of numpy-shaped arrays with a leading micro-batch axis `[K, B, ...]`:
`input_ids, segment_ids, positions [K, B, T]` and the sparse targets
`masked_positions, masked_labels, masked_weights [K, B, M]`. The train step accumulates the
gradient of the summed cross-entropy over the K micro-batches (a `lax.scan`), divides by the
total number of targets, and applies one StableAdamW update — so K micro-batches of B rows are
the same optimisation step as one batch of K·B rows (batch-size warmup changes K only).
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from modernbert_jax.train.state import TrainState

Batch = dict[str, jax.Array]


def mlm_sums(module: nn.Module, params: Any, batch: Batch, dropout_rng: jax.Array | None) -> dict[str, jax.Array]:
    """Summed cross-entropy, correct predictions, targets and real tokens of one micro-batch."""
    logits = module.apply(
        {"params": params},
        batch["input_ids"],
        batch["segment_ids"],
        batch["positions"],
        masked_positions=batch["masked_positions"],
        deterministic=dropout_rng is None,
        rngs=None if dropout_rng is None else {"dropout": dropout_rng},
    )
    weights = batch["masked_weights"].astype(jnp.float32)
    labels = batch["masked_labels"]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    return {
        "loss_sum": jnp.sum(ce * weights),
        "correct": jnp.sum(correct * weights),
        "targets": jnp.sum(weights),
        "tokens": jnp.sum(batch["segment_ids"] != 0).astype(jnp.float32),
    }


def make_train_step(
    module: nn.Module,
    tx: optax.GradientTransformation,
    schedule: Callable[[jax.Array], jax.Array],
    *,
    seed: int,
    use_dropout: bool,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """`(state, batch[K, B, ...]) -> (state, metrics)`; jit it with the state's shardings."""
    base_rng = jax.random.key(seed)

    def micro_step(params, micro, rng):
        def loss(p):
            sums = mlm_sums(module, p, micro, rng if use_dropout else None)
            return sums["loss_sum"], sums

        return jax.grad(loss, has_aux=True)(params)

    def train_step(state: TrainState, batch: Batch):
        num_micro = batch["input_ids"].shape[0]
        step_rng = jax.random.fold_in(base_rng, state.step)
        if num_micro == 1:
            grads, sums = micro_step(state.params, jax.tree.map(lambda x: x[0], batch), step_rng)
        else:
            def body(carry, xs):
                micro, index = xs
                g, s = micro_step(state.params, micro, jax.random.fold_in(step_rng, index))
                return jax.tree.map(jnp.add, carry, (g, s)), None

            zeros = jax.tree.map(jnp.zeros_like, state.params)
            zero_sums = {k: jnp.zeros([], jnp.float32) for k in ("loss_sum", "correct", "targets", "tokens")}
            (grads, sums), _ = jax.lax.scan(body, (zeros, zero_sums), (batch, jnp.arange(num_micro)))
        targets = jnp.maximum(sums["targets"], 1.0)
        grads = jax.tree.map(lambda g: g / targets, grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        grad_norm = optax.tree.norm(grads)
        update_norm = optax.tree.norm(updates)
        metrics = {
            "loss": sums["loss_sum"] / targets,
            "accuracy": sums["correct"] / targets,
            "grad_norm": grad_norm,
            "update_norm": update_norm,
            "learning_rate": schedule(state.step),
            "targets": sums["targets"],
            "tokens": sums["tokens"],
            # Checked on the host before anything is saved: a non-finite step never reaches a checkpoint.
            "finite": jnp.isfinite(sums["loss_sum"]) & jnp.isfinite(grad_norm) & jnp.isfinite(update_norm),
        }
        return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return train_step


def make_eval_step(module: nn.Module) -> Callable[[Any, Batch], dict[str, jax.Array]]:
    """`(params, batch[B, ...]) -> sums` (loss_sum, correct, targets, tokens) for aggregation."""

    def eval_step(params, batch: Batch):
        return mlm_sums(module, params, batch, None)

    return eval_step
