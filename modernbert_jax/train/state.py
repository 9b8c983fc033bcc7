"""The train state and where its arrays live on the mesh.

`TrainState` is a pytree (step, params, optimiser state). Its shardings come from the logical
axis names the encoder puts on every parameter, mapped onto the mesh by the config's rules, so
the same code runs on one CPU, eight devices, or many hosts; the optimiser moments are laid out
like the parameters they track.
"""

from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from modernbert_jax import optim


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # optimiser steps taken; also the learning-rate schedule's step
    params: Any
    opt_state: optim.StableAdamWState


def state_shardings(params_sharding: Any, mesh: Mesh) -> TrainState:
    replicated = NamedSharding(mesh, PartitionSpec())
    return TrainState(
        step=replicated,
        params=params_sharding,
        opt_state=optim.StableAdamWState(count=replicated, mu=params_sharding, nu=params_sharding),
    )


def _create_fn(module: nn.Module, tx: optax.GradientTransformation, seq_len: int):
    ids = jnp.zeros((1, seq_len), jnp.int32)

    def create(key):
        params = nn.meta.unbox(module.init(key, ids)["params"])
        return TrainState(step=jnp.zeros([], jnp.int32), params=params, opt_state=tx.init(params))

    return create


def init_state(
    module: nn.Module, tx: optax.GradientTransformation, rng: jax.Array, shardings: TrainState, seq_len: int
) -> TrainState:
    """Initialise params and optimiser state directly into their shardings (no host copy)."""
    return jax.jit(_create_fn(module, tx, seq_len), out_shardings=shardings)(rng)


def abstract_state(module: nn.Module, tx: optax.GradientTransformation, shardings: TrainState, seq_len: int) -> TrainState:
    """Shapes, dtypes and target shardings of a state: what a checkpoint restores onto."""
    shapes = jax.eval_shape(_create_fn(module, tx, seq_len), jax.random.key(0))
    return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, shardings)
