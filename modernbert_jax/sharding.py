"""Device mesh and logical-axis sharding: one rules table maps parameter and activation names to mesh axes.

Mesh axes are ``data`` (pure data parallelism), ``fsdp`` (data parallelism with parameters and
optimizer state sharded) and ``tensor`` (Megatron-style model parallelism). Parameters carry
logical names (``embed``, ``mlp``, ``heads``, ``vocab``…), activations logical constraints
(``act_batch``…); ``DEFAULT_SHARDING_RULES`` in ``modernbert_jax.config`` maps them.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Optional, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")


def mesh_shape(mesh_cfg: Any, num_devices: int) -> tuple[int, int, int]:
    """Sizes for (data, fsdp, tensor); at most one may be -1, meaning "the remaining devices"."""
    sizes = [int(mesh_cfg[a]) for a in MESH_AXES]
    if sizes.count(-1) > 1:
        raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))}: at most one axis may be -1")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if num_devices % known:
            raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} does not divide {num_devices} devices")
        sizes[sizes.index(-1)] = num_devices // known
    if math.prod(sizes) != num_devices:
        raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices; {num_devices} are available")
    return tuple(sizes)


def make_mesh(mesh_cfg: Any, devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """A ``Mesh`` over ``devices`` (default: all, across hosts) with axes data, fsdp, tensor."""
    devices = list(jax.devices() if devices is None else devices)
    shape = mesh_shape(mesh_cfg, len(devices))
    return Mesh(np.asarray(devices).reshape(shape), MESH_AXES)


@contextlib.contextmanager
def activate(mesh: Mesh, rules: Sequence) -> Iterator[None]:
    """Make ``mesh`` and the logical rules ambient, so activation constraints take effect."""
    with jax.set_mesh(mesh), nn.logical_axis_rules(tuple(rules)):
        yield


def logical_shardings(boxed_tree: Any, mesh: Mesh, rules: Sequence) -> Any:
    """``NamedSharding`` per leaf of a (possibly abstract) tree of logically-annotated params."""
    specs = nn.get_partition_spec(boxed_tree)
    return nn.logical_to_mesh_sharding(specs, mesh, tuple(rules))


def param_shardings(module: nn.Module, mesh: Mesh, rules: Sequence, *example_args, **example_kwargs) -> Any:
    """Shardings for ``module``'s params, traced abstractly (no memory is allocated)."""
    abstract = jax.eval_shape(lambda: module.init(jax.random.key(0), *example_args, **example_kwargs))
    return logical_shardings(abstract["params"], mesh, rules)


def batch_sharding(mesh: Mesh, rules: Sequence, ndim: int = 2) -> NamedSharding:
    """Sharding of a ``[B, T, ...]`` input batch: batch over the mesh axes ``act_batch`` maps to."""
    spec = nn.logical_to_mesh_axes(("act_batch",) + (None,) * (ndim - 1), tuple(rules))
    return NamedSharding(mesh, PartitionSpec(*spec))
