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



@flax.struct.dataclass
class TrainState:
    step: jax.Array  # optimiser steps taken; also the learning-rate schedule's step
    params: Any
    opt_state: Any  # StableAdamW's, or any optax state (the AdamW ablation)


def state_shardings(module: nn.Module, tx: optax.GradientTransformation, params_sharding: Any, mesh: Mesh,
                    seq_len: int) -> TrainState:
    """Params as the rules place them; in the optimiser state, every subtree shaped like the params
    (Adam's moments, whichever optimiser holds them) laid out like them, the rest (counts) replicated."""
    replicated = NamedSharding(mesh, PartitionSpec())
    opt_shapes = jax.eval_shape(_create_fn(module, tx, seq_len), jax.random.key(0)).opt_state
    params_structure = jax.tree.structure(params_sharding)

    def like_params(subtree) -> bool:
        return jax.tree.structure(subtree) == params_structure

    opt_sharding = jax.tree.map(lambda sub: params_sharding if like_params(sub) else replicated, opt_shapes,
                                is_leaf=like_params)
    return TrainState(step=replicated, params=params_sharding, opt_state=opt_sharding)


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
