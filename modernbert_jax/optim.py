"""ModernBERT's optimiser recipe as optax pieces: StableAdamW and its schedules.

* `stable_adamw` — AdamW with Adafactor-style per-tensor update clipping (Wortsman et al. 2023),
  written to match `optimi.StableAdamW(decouple_lr=True)`, which is what ModernBERT's
  `decoupled_stableadamw` builds:

      m, v      moving averages with the bias correction folded into the betas
                (beta_hat_t = beta (1 - beta^(t-1)) / (1 - beta^t)), so m and v are the debiased
                estimates themselves
      rms       sqrt(mean(g^2 / max(v, eps^2)))            one scalar per tensor
      lr_t      lr / max(1, rms)
      p         p * (1 - lr_t / max_lr * wd)               "fully decoupled" weight decay
      p         p - lr_t * m / (sqrt(v) + eps)

  Weight decay skips norms and biases, chosen by parameter path (`decay_mask`).
* `warmup_stable_decay` — the one warmup-then-decay schedule: linear warmup, constant, then a
  1-sqrt (pretraining), linear or cosine (Hugging Face's, for GLiNER and SetFit) decay.
* `batch_size_warmup` — the global batch grows linearly with tokens seen (768 -> 4608 over 50B
  tokens for ModernBERT-base), in whole micro-batches so shapes stay static.
* `layer_lr_multipliers` / `scale_per_parameter` — layer-wise learning-rate decay for fine-tuning
  (ELECTRA, Clark et al. 2020; BEiT, Bao et al. 2021), in BEiT's convention: with L encoder layers
  and decay d, the head (everything outside the encoder's embeddings and layers) gets 1, layer i
  (0-based) d^(L - i), the embeddings d^(L + 1).
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from modernbert_jax.config import check_number

Schedule = Callable[[jax.Array | int], jax.Array]


class StableAdamWState(NamedTuple):
    """Step count and the debiased first and second moments."""

    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates


def _debiased_beta(beta: float, step: jax.Array) -> jax.Array:
    # beta (1 - beta^(t-1)) / (1 - beta^t): 0 at t=1, so the first moments equal g and g^2.
    beta_t = jnp.power(jnp.float32(beta), step.astype(jnp.float32))
    return (beta_t - beta) / (beta_t - 1.0)


def stable_adamw(
    learning_rate: float | Schedule,
    b1: float = 0.9,
    b2: float = 0.98,
    eps: float = 1e-6,
    weight_decay: float = 1e-5,
    max_lr: float | None = None,
    mask: Any | Callable[[optax.Params], Any] | None = None,
) -> optax.GradientTransformation:
    """StableAdamW as an optax transformation (updates are added to params by `optax.apply_updates`).

    Args:
      learning_rate: a constant or a schedule of the optimiser step (0-based, like optax).
      b1, b2, eps: Adam moments and denominator epsilon (ModernBERT: 0.9, 0.98, 1e-6).
      weight_decay: decoupled weight decay, scaled by lr_t / max_lr (ModernBERT: 1e-5).
      max_lr: the schedule's peak; defaults to `learning_rate` when that is a constant.
      mask: pytree of bools (or a function of params returning one) marking leaves that decay.
    """
    if not 0.0 <= b1 < 1.0 or not 0.0 <= b2 < 1.0:
        raise ValueError(f"stable_adamw: betas must lie in [0, 1), got b1={b1}, b2={b2}")
    if eps < 0.0:
        raise ValueError(f"stable_adamw: eps must be >= 0, got {eps}")
    check_number("stable_adamw: weight_decay", weight_decay, low=0)
    if max_lr is None:
        if callable(learning_rate):
            raise ValueError("stable_adamw: max_lr is required when learning_rate is a schedule")
        check_number("stable_adamw: learning_rate", learning_rate, low=0, low_open=True)
        max_lr = float(learning_rate)
    check_number("stable_adamw: max_lr", max_lr, low=0, low_open=True)
    lr_fn = learning_rate if callable(learning_rate) else (lambda _: jnp.float32(learning_rate))

    def init_fn(params: optax.Params) -> StableAdamWState:
        zeros = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=jnp.float32), params)
        return StableAdamWState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=jax.tree.map(jnp.copy, zeros))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("stable_adamw needs params (for weight decay): call update(grads, state, params)")
        decay = mask(params) if callable(mask) else mask
        if decay is None:
            decay = jax.tree.map(lambda _: True, params)
        count = state.count + 1
        beta1_hat = _debiased_beta(b1, count)
        beta2_hat = _debiased_beta(b2, count)
        lr = jnp.asarray(lr_fn(state.count), jnp.float32)

        def per_tensor(g, m, v, p, do_decay):
            g = g.astype(jnp.float32)
            m = beta1_hat * m + (1.0 - beta1_hat) * g
            v = beta2_hat * v + (1.0 - beta2_hat) * g * g
            rms = jnp.sqrt(jnp.mean(g * g / jnp.maximum(v, eps * eps)))
            lr_t = lr / jnp.maximum(1.0, rms)
            step = -lr_t * m / (jnp.sqrt(v) + eps)
            if do_decay and weight_decay != 0.0:
                step = step - (lr_t / max_lr) * weight_decay * p.astype(jnp.float32)
            return step.astype(p.dtype), m, v

        out = jax.tree.map(per_tensor, updates, state.mu, state.nu, params, decay)
        treedef = jax.tree.structure(updates)
        leaves = treedef.flatten_up_to(out)
        new_updates = treedef.unflatten([leaf[0] for leaf in leaves])
        mu = treedef.unflatten([leaf[1] for leaf in leaves])
        nu = treedef.unflatten([leaf[2] for leaf in leaves])
        return new_updates, StableAdamWState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


def _path_names(path: tuple) -> list[str]:
    return [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]


def decay_mask(params: optax.Params) -> Any:
    """True for leaves that take weight decay: everything but norms and biases (by path).

    A leaf is a norm parameter when a path component mentions "norm" or the leaf is a norm's
    `scale`; a bias when its name ends with "bias" (covers the MLM `decoder_bias`).
    """

    def is_decayed(path, _):
        names = [n.lower() for n in _path_names(path)]
        leaf = names[-1] if names else ""
        is_norm = any("norm" in n for n in names) or leaf == "scale"
        return not (is_norm or leaf.endswith("bias"))

    return jax.tree_util.tree_map_with_path(is_decayed, params)


_LAYER = re.compile(r"layers_(\d+)")


def layer_lr_multipliers(params: optax.Params, num_layers: int, decay: float) -> Any:
    """Each leaf's learning-rate multiplier under layer-wise decay, by parameter path (BEiT's rule).

    A leaf under an ``embeddings`` module gets ``decay ** (num_layers + 1)``, one under
    ``layers_<i>`` gets ``decay ** (num_layers - i)``, every other leaf 1: the task head, the
    pooler, and what sits above or beside the layers (the final norm, shared relative-position
    tables), as BEiT gives its final norm and shared relative bias the head's rate. ``decay=1`` is
    no decay.
    """
    check_number("layer_lr_multipliers: num_layers", num_layers, low=1, integer=True)
    check_number("layer_lr_multipliers: decay", decay, low=0, high=1, low_open=True)

    def multiplier(path, _) -> float:
        names = _path_names(path)
        if "embeddings" in names:
            return decay ** (num_layers + 1)
        layers = [int(m.group(1)) for n in names if (m := _LAYER.fullmatch(n))]
        if layers:
            if layers[0] >= num_layers:
                raise ValueError(f"layer_lr_multipliers: parameter {'/'.join(names)} belongs to layer {layers[0]}, "
                                 f"the model has num_layers={num_layers}")
            return decay ** (num_layers - layers[0])
        return 1.0

    return jax.tree_util.tree_map_with_path(multiplier, params)


def scale_per_parameter(multipliers: Any) -> optax.GradientTransformation:
    """Scale each leaf's update by its multiplier: chained after an optimiser that applies the
    learning rate (and weight decay, as optax's AdamW), this is a per-parameter learning rate, as
    torch parameter groups give each group its own ``lr``."""

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(lambda u, m: u * jnp.asarray(m, u.dtype), updates, multipliers), state

    return optax.GradientTransformation(lambda _: optax.EmptyState(), update_fn)


DECAY_SHAPES = ("sqrt", "linear", "cosine")


def warmup_steps_for(total_steps: int, warmup_ratio: float) -> int:
    """Warmup length from a ratio, rounded up as Hugging Face ``TrainingArguments.get_warmup_steps``."""
    check_number("warmup ratio", warmup_ratio, low=0, high=1)
    check_number("total_steps", total_steps, low=0, integer=True)
    return math.ceil(total_steps * warmup_ratio)


def hf_warmup_decay(peak_lr: float, total_steps: int, warmup_ratio: float, shape: str) -> Schedule:
    """Hugging Face's ``get_{linear,cosine}_schedule_with_warmup`` as the fine-tuning libraries call
    it (GLiNER, SetFit): warmup from 0 over ``ceil(ratio * total)`` steps, then decay to 0."""
    warmup = warmup_steps_for(total_steps, warmup_ratio)
    return warmup_stable_decay(peak_lr, total_steps, warmup, total_steps - warmup, shape=shape, warmup_from_zero=True)


def warmup_stable_decay(
    peak_lr: float,
    total_steps: int,
    warmup_steps: int = 0,
    decay_steps: int = 0,
    final_lr_fraction: float = 0.0,
    *,
    shape: str = "sqrt",
    warmup_from_zero: bool = False,
) -> Schedule:
    """Linear warmup, constant at `peak_lr`, then decay over the last `decay_steps` steps.

    In the decay window lr = peak * (f + (1 - f) d(x)) with x the fraction of the window elapsed,
    f = `final_lr_fraction` and d the `shape`: "sqrt" 1 - sqrt(x) (the trapezoid of Hägele et al.
    2024 that ModernBERT uses), "linear" 1 - x, "cosine" (1 + cos(pi x)) / 2. With
    `decay_steps = total_steps - warmup_steps` and `warmup_from_zero=True` the "linear" and
    "cosine" shapes are Hugging Face's `get_linear_schedule_with_warmup` and
    `get_cosine_schedule_with_warmup`, which is what GLiNER and SetFit train with.
    ModernBERT's phases: pretrain = warmup + stable (no decay), context extension = stable,
    decay phase = decay over the whole phase.

    `warmup_from_zero`: Hugging Face's warmup is step / warmup (the first update has lr 0);
    pretraining's is (step + 1) / warmup (the first update already moves, peak at the last
    warmup step).
    """
    if shape not in DECAY_SHAPES:
        raise ValueError(f"warmup_stable_decay: shape={shape!r} must be one of {DECAY_SHAPES}")
    check_number("warmup_stable_decay: peak_lr", peak_lr, low=0, low_open=True)
    check_number("warmup_stable_decay: total_steps", total_steps, low=1, integer=True)
    check_number("warmup_stable_decay: final_lr_fraction", final_lr_fraction, low=0, high=1)
    if warmup_steps < 0 or decay_steps < 0 or warmup_steps + decay_steps > total_steps:
        raise ValueError(
            f"warmup_stable_decay: need 0 <= warmup_steps ({warmup_steps}) + decay_steps ({decay_steps})"
            f" <= total_steps ({total_steps})"
        )
    decay_start = total_steps - decay_steps
    warmup_offset = 0.0 if warmup_from_zero else 1.0
    decay_shape = {
        "sqrt": lambda x: 1.0 - jnp.sqrt(x),
        "linear": lambda x: 1.0 - x,
        "cosine": lambda x: 0.5 * (1.0 + jnp.cos(jnp.pi * x)),
    }[shape]

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        warm = jnp.minimum(1.0, (step + warmup_offset) / warmup_steps) if warmup_steps else jnp.float32(1.0)
        x = jnp.clip((step - decay_start) / max(decay_steps, 1), 0.0, 1.0)
        decay = final_lr_fraction + (1.0 - final_lr_fraction) * decay_shape(x)
        factor = jnp.where(step < decay_start, warm, decay) if decay_steps else warm
        return peak_lr * factor

    return schedule


def batch_size_warmup(
    start_rows: int, end_rows: int, warmup_tokens: int, micro_batch_rows: int
) -> Callable[[int], int]:
    """Global batch rows as a function of tokens seen: linear from start to end over warmup_tokens.

    Rounded down to whole micro-batches (never below one) so every step is a stack of equally
    shaped micro-batches and nothing recompiles beyond one program per distinct micro-batch count.
    """
    check_number("batch_size_warmup: micro_batch_rows", micro_batch_rows, low=1, integer=True)
    check_number("batch_size_warmup: warmup_tokens", warmup_tokens, low=0, integer=True)
    for name, value in (("start_rows", start_rows), ("end_rows", end_rows)):
        if value <= 0 or value % micro_batch_rows:
            raise ValueError(f"batch_size_warmup: {name}={value} must be a positive multiple of micro_batch_rows={micro_batch_rows}")
    if end_rows < start_rows:
        raise ValueError(f"batch_size_warmup: end_rows={end_rows} < start_rows={start_rows}")

    def rows_at(tokens_seen: int) -> int:
        if warmup_tokens <= 0 or tokens_seen >= warmup_tokens:
            return end_rows
        rows = start_rows + (end_rows - start_rows) * tokens_seen / warmup_tokens
        return max(start_rows, int(math.floor(rows / micro_batch_rows)) * micro_batch_rows)

    return rows_at
