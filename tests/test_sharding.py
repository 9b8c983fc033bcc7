"""The encoder on an 8-device CPU mesh (fsdp x tensor) equals the single-device result within 1e-5,
and names an out-of-vocabulary id under sharded jit.

Two configurations of the same modules, on packed inputs: tiny ModernBERT (RoPE, local/global
attention) and a small DeBERTa-v3 (no absolute positions, disentangled relative attention with
log buckets and a shared, normed relative-embedding table, which must shard like the rest).
Forcing 8 host devices must happen before JAX starts, so the sharded run is one subprocess.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from modernbert_jax import config as config_lib
from modernbert_jax import sharding

MODELS = ("modernbert", "deberta-v3")
# A small DeBERTa-v3 block (config_lib.bert_config fields), shared by the subprocess and the tests here.
DEBERTA_V3 = dict(
    architecture="deberta-v2", vocab_size=512, hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128,
    max_position_embeddings=64, position_embedding="none", type_vocab_size=0, relative_attention="disentangled",
    relative_buckets=16, max_relative_positions=64, pos_att_type="c2p|p2c", share_att_key=True, norm_rel_ebd=True,
    norm_eps=1e-7,
)

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_default_matmul_precision", "highest")
    from modernbert_jax import config as config_lib, model, sharding
    assert jax.device_count() == 8, jax.devices()
    deberta = config_lib.bert_config(**DEBERTA_V3)
    config_lib.validate(deberta)
    # Each model: its config and the parameters that must come out split (shard smaller than the whole).
    models = {
        "modernbert": (config_lib.model_config("tiny"), [("encoder", "embeddings", "tok_embeddings", "embedding")]),
        "deberta-v3": (deberta, [("encoder", "embeddings", "tok_embeddings", "embedding"),
                                 ("encoder", "relative", "rel_embeddings")]),
    }
    rng = np.random.default_rng(0)
    seg = jnp.asarray(np.repeat([[1] * 30 + [2] * 20 + [0] * 14], 8, 0), jnp.int32)
    pos = jnp.asarray(np.repeat([list(range(30)) + list(range(20)) + [0] * 14], 8, 0), jnp.int32)
    mesh = sharding.make_mesh({"data": 1, "fsdp": 4, "tensor": 2})
    rules = config_lib.DEFAULT_SHARDING_RULES
    for name, (cfg, split) in models.items():
        module = model.MaskedLM(cfg)
        ids = jnp.asarray(rng.integers(1, cfg.vocab_size, (8, 64)), jnp.int32)
        params = model.init_params(module, jax.random.key(0))
        single = jax.jit(lambda p: module.apply({"params": p}, ids, seg, pos))(params)
        with sharding.activate(mesh, rules):
            p_shard = sharding.param_shardings(module, mesh, rules, ids, seg, pos)
            sharded_params = jax.device_put(params, p_shard)
            for path in split:
                leaf = sharded_params
                for key in path:
                    leaf = leaf[key]
                assert len(leaf.sharding.device_set) == 8, (name, path, leaf.sharding)
                assert leaf.addressable_shards[0].data.shape != leaf.shape, (name, path, leaf.sharding)
            b = sharding.batch_sharding(mesh, rules)
            f = jax.jit(lambda p, i, s, q: module.apply({"params": p}, i, s, q))
            out = f(sharded_params, jax.device_put(ids, b), jax.device_put(seg, b), jax.device_put(pos, b))
        err = float(jnp.abs(out - single).max())
        print("MAXERR", name, err)
        assert err <= 1e-5, (name, err)
        # The index checks' host callback works under sharded jit (modernbert_jax.input_checks).
        with sharding.activate(mesh, rules):
            try:
                jax.block_until_ready(f(sharded_params, jax.device_put(ids.at[6, 9].set(cfg.vocab_size), b),
                                        jax.device_put(seg, b), jax.device_put(pos, b)))
            except jax.errors.JaxRuntimeError as e:
                assert f"input_ids[6, 9] = {cfg.vocab_size} is outside the vocabulary" in str(e), e
                print("CHECKED", name)
    """
).replace("DEBERTA_V3", repr(DEBERTA_V3))


def config_of(name: str):
    """The validated model block ``name`` (one of MODELS) that the subprocess also builds."""
    cfg = config_lib.model_config("tiny") if name == "modernbert" else config_lib.bert_config(**DEBERTA_V3)
    config_lib.validate(cfg)
    return cfg


def test_forward_on_8_device_mesh_matches_single_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in MODELS:
        assert f"MAXERR {name} " in result.stdout, result.stdout
        assert f"CHECKED {name}" in result.stdout, result.stdout


@pytest.mark.parametrize(
    "mesh_cfg, n, message",
    [({"data": -1, "fsdp": -1, "tensor": 1}, 8, "at most one"), ({"data": 3, "fsdp": 1, "tensor": 1}, 8, "needs 3")],
)
def test_bad_mesh_is_named(mesh_cfg, n, message):
    with pytest.raises(ValueError, match=message):
        sharding.mesh_shape(mesh_cfg, n)


@pytest.mark.parametrize("name", MODELS)
def test_every_param_has_logical_axes(name):
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from modernbert_jax import model

    module = model.MaskedLM(config_of(name))
    abstract = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32)))
    leaves = jax.tree_util.tree_leaves(abstract["params"], is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    assert leaves and all(isinstance(leaf, nn.LogicallyPartitioned) for leaf in leaves)
