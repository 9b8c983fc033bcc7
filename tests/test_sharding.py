"""The encoder on an 8-device CPU mesh (fsdp x tensor) equals the single-device result within 1e-5.

Forcing 8 host devices must happen before JAX starts, so the sharded run is a subprocess.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from modernbert_jax import config as config_lib
from modernbert_jax import sharding

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_default_matmul_precision", "highest")
    from modernbert_jax import config as config_lib, model, sharding
    assert jax.device_count() == 8, jax.devices()
    cfg = config_lib.model_config("tiny")
    module = model.MaskedLM(cfg)
    rng = np.random.default_rng(0)
    ids = jnp.asarray(rng.integers(1, cfg.vocab_size, (8, 64)), jnp.int32)
    seg = jnp.asarray(np.repeat([[1] * 30 + [2] * 20 + [0] * 14], 8, 0), jnp.int32)
    pos = jnp.asarray(np.repeat([list(range(30)) + list(range(20)) + [0] * 14], 8, 0), jnp.int32)
    params = model.init_params(module, jax.random.key(0))
    single = jax.jit(lambda p: module.apply({"params": p}, ids, seg, pos))(params)

    mesh = sharding.make_mesh({"data": 1, "fsdp": 4, "tensor": 2})
    rules = config_lib.DEFAULT_SHARDING_RULES
    with sharding.activate(mesh, rules):
        p_shard = sharding.param_shardings(module, mesh, rules, ids, seg, pos)
        sharded_params = jax.device_put(params, p_shard)
        emb = sharded_params["encoder"]["embeddings"]["tok_embeddings"]["embedding"]
        assert len(emb.sharding.device_set) == 8 and emb.addressable_shards[0].data.shape != emb.shape, emb.sharding
        b = sharding.batch_sharding(mesh, rules)
        f = jax.jit(lambda p, i, s, q: module.apply({"params": p}, i, s, q))
        out = f(sharded_params, jax.device_put(ids, b), jax.device_put(seg, b), jax.device_put(pos, b))
    err = float(jnp.abs(out - single).max())
    print("MAXERR", err)
    assert err <= 1e-5, err
    """
)


def test_forward_on_8_device_mesh_matches_single_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MAXERR" in result.stdout


@pytest.mark.parametrize(
    "mesh_cfg, n, message",
    [({"data": -1, "fsdp": -1, "tensor": 1}, 8, "at most one"), ({"data": 3, "fsdp": 1, "tensor": 1}, 8, "needs 3")],
)
def test_bad_mesh_is_named(mesh_cfg, n, message):
    with pytest.raises(ValueError, match=message):
        sharding.mesh_shape(mesh_cfg, n)


def test_every_param_has_logical_axes():
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from modernbert_jax import model

    module = model.MaskedLM(config_lib.model_config("tiny"))
    abstract = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32)))
    leaves = jax.tree_util.tree_leaves(abstract["params"], is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    assert leaves and all(isinstance(leaf, nn.LogicallyPartitioned) for leaf in leaves)
