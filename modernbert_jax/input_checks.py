"""Checks of the encoder's index inputs that hold eagerly and under ``jax.jit``.

Out-of-range indices do not fail in JAX: a table lookup (``nn.Embed``, ``jnp.take``) returns
NaN rows and ``take_along_axis`` fills, so an out-of-vocabulary id, a position past an
absolute table or a masked position past the row gives NaN hidden states, silently. Each
function here raises a ``ValueError`` naming the tensor, its first bad coordinate, the value
there and the accepted range:

* on a concrete array, at once, on the host (NumPy);
* on a traced one (inside ``jax.jit``, ``jax.grad``, ``jax.vmap``, ``nn.remat``, sharded jit),
  the device computes only a few scalars (whether any element is bad, the flat index of the
  first, its value, how many) and ``jax.debug.callback`` hands them to the same host function,
  which raises; ``jit`` surfaces it as a ``jax.errors.JaxRuntimeError`` whose text contains
  the ``ValueError``'s message. The callback is ``partitioned``: under sharded jit every device
  runs it on the (replicated) scalars and raises at the same point of the program. Run on one
  device only (the default), the raise stops that device while the others wait for it in the
  next collective, and the process aborts after XLA's 40 s rendezvous timeout.

Our own entry points (the pretraining loop, GLiNER, SetFit) hold their batches on the host:
they call `model.check_encoder_inputs` / `model.check_masked_positions` on those NumPy arrays
(the host path, a plain ``ValueError``) and build their jitted model from
`model.checked_on_host` (the same config with ``check_inputs=False``). Their compiled programs
then hold no host callback, which keeps them in JAX's persistent compilation cache (a program
with a callback is never written there) and keeps a device→host round trip out of every
training step.

Why a debug callback: ``jax.experimental.checkify`` would need every caller to wrap their
function in ``checkify.checkify`` (a plain ``jax.jit(model.apply)`` would not see the error), and
clamping with an error output changes every signature. The cost is a host round trip per check;
``model.check_inputs=False`` turns the value checks off (see
``experiments/bench_input_checks.py``). Dtype checks are static, free and always on. A host
callback cannot be serialised by ``jax.export``: export a model with ``check_inputs=False``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def check_integer(name: str, values: Any) -> None:
    """Raise a ValueError naming ``name`` and its dtype unless ``values`` has an integer dtype (bool is not)."""
    dtype = np.dtype(values.dtype if hasattr(values, "dtype") else np.asarray(values).dtype)
    if not np.issubdtype(dtype, np.integer):
        raise ValueError(f"{name} must be an integer array (e.g. int32); got dtype {dtype}")


def _run(report, scalars, values) -> None:
    """``report(*scalars(xp, values))`` now on a concrete array, or from the device when traced."""
    if isinstance(values, jax.core.Tracer):
        jax.debug.callback(report, *scalars(jnp, values), partitioned=True)
    else:
        report(*scalars(np, np.asarray(values)))


def _where(shape: tuple[int, ...], flat: Any) -> list[int]:
    return [int(i) for i in np.unravel_index(int(flat), shape)]


def _index_scalars(xp, values, limit: int):
    bad = ((values < 0) | (values >= limit)).ravel()
    first = xp.argmax(bad)
    return bad.any(), first, values.ravel()[first], bad.sum()


def _report_index(name: str, shape: tuple[int, ...], limit: int, what: str, note: str, any_bad, first, value,
                  count) -> None:
    if bool(any_bad):
        raise ValueError(
            f"{name}{_where(shape, first)} = {int(value)} is outside {what} [0, {limit}) "
            f"({int(count)} such value(s) in {name}){'; ' + note if note else ''}"
        )


def check_index(name: str, values: Any, limit: int, *, what: str, note: str = "") -> None:
    """Raise a ValueError unless every element of the integer array ``values`` is in ``[0, limit)``.

    ``what`` names the range ("the vocabulary"); ``note`` ends the message, e.g. with the config
    field the limit comes from.
    """
    check_integer(name, values)
    _run(functools.partial(_report_index, name, tuple(np.shape(values)), int(limit), what, note),
         functools.partial(_index_scalars, limit=limit), values)


def _segment_scalars(xp, segment_ids):
    zero = xp.zeros_like(segment_ids[:, :1])
    previous = xp.concatenate([zero, segment_ids[:, :-1]], axis=1)
    # The largest id before each token in its row (0 before the first).
    largest_before = xp.concatenate([zero, xp.maximum.accumulate(segment_ids, axis=1)[:, :-1]], axis=1)
    run_start = (segment_ids != 0) & (segment_ids != previous)
    bad = (run_start & (segment_ids <= largest_before)).ravel()
    first = xp.argmax(bad)
    return bad.any(), first, segment_ids.ravel()[first], largest_before.ravel()[first], bad.sum()


def _report_segments(name: str, shape: tuple[int, ...], any_bad, first, value, largest, count) -> None:
    if bool(any_bad):
        where = _where(shape, first)
        raise ValueError(
            f"{name}{where} = {int(value)} starts a run of tokens but is not above {int(largest)}, the largest "
            f"segment id before it in row {where[0]} ({int(count)} such run(s) in {name}): within a row each "
            "non-zero segment id must be one contiguous run and successive runs must have increasing ids "
            "(0 = padding may appear anywhere), as packing produces; the attention backends disagree otherwise"
        )


def check_segments(segment_ids: Any, *, name: str = "segment_ids") -> None:
    """Raise a ValueError unless ``segment_ids [B, T]`` follows the packed-segment contract.

    The contract (`modernbert_jax.attention`): within a row, each non-zero id occupies one
    contiguous run and the ids of successive runs strictly increase; 0 (padding) may appear
    anywhere. Checked in O(B*T): a run start ``t`` (``s[t] != 0`` and ``s[t] != s[t-1]``) needs
    ``s[t] > max(s[:t], 0)``, which also rules out negative ids.
    """
    check_integer(name, segment_ids)
    if np.ndim(segment_ids) != 2:
        raise ValueError(f"{name} must be [batch, length]; got shape {tuple(np.shape(segment_ids))}")
    _run(functools.partial(_report_segments, name, tuple(np.shape(segment_ids))), _segment_scalars, segment_ids)

