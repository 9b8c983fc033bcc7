"""bfloat16-input matmuls (``model.matmul_dtype="bfloat16"``): close to float32, and every GEMM of
the forward and backward pass really runs on bfloat16 inputs."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from modernbert_jax import config as config_lib
from modernbert_jax import model, precision


def test_bf16_matmul_value_and_gradients_track_float32():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, 5, 16)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(16, 8)), jnp.float32)
    dy = jnp.asarray(rng.normal(size=(3, 5, 8)), jnp.float32)

    def pullback(f):
        y, vjp = jax.vjp(f, x, w)
        return (y, *vjp(dy))

    ours = pullback(precision.bf16_matmul)
    exact = pullback(lambda a, b: a @ b)
    for got, want, name in zip(ours, exact, ("y", "dx", "dw")):
        assert got.dtype == jnp.float32, name
        # bfloat16 keeps 8 mantissa bits: relative error about 2^-8 per product, averaged over k.
        np.testing.assert_allclose(got, want, rtol=0, atol=0.03 * float(jnp.abs(want).max()), err_msg=name)
        assert not np.allclose(got, want, rtol=0, atol=1e-6), f"{name} is float32 exact: inputs were not cast"


def _dot_input_dtypes(jaxpr) -> list[tuple[str, str]]:
    """Input dtypes of every dot_general in ``jaxpr``, nested calls included."""
    out = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            out.append(tuple(str(v.aval.dtype) for v in eqn.invars))
        for value in eqn.params.values():
            inner = getattr(value, "jaxpr", None)
            if inner is not None and hasattr(inner, "eqns"):
                out += _dot_input_dtypes(inner)
    return out


def test_encoder_gemms_run_in_bfloat16_and_track_float32():
    cfg = config_lib.model_config("tiny")
    with cfg.unlocked():
        cfg.update(num_layers=2, dtype="float32")
    mixed_cfg = ml_collections.ConfigDict(cfg.to_dict())
    mixed_cfg.matmul_dtype = "bfloat16"
    exact, mixed = model.Encoder(cfg), model.Encoder(mixed_cfg)
    params = model.init_params(exact, jax.random.key(0))
    ids = jnp.asarray(np.random.default_rng(1).integers(1, cfg.vocab_size, (2, 24)), jnp.int32)
    # A random linear read-out: after the final norm, a loss like mean(h^2) is nearly constant
    # and its tiny gradients would measure rounding noise, not the matmuls.
    readout = jnp.asarray(np.random.default_rng(3).normal(size=(2, 24, cfg.hidden_size)), jnp.float32)

    def loss(module):
        return lambda p: jnp.sum(module.apply({"params": p}, ids) * readout)

    grads = {name: jax.grad(loss(m))(params) for name, m in (("exact", exact), ("mixed", mixed))}
    for path, g in jax.tree_util.tree_leaves_with_path(grads["mixed"]):
        want = grads["exact"]
        for key in path:
            want = want[key.key]
        rel = float(jnp.linalg.norm(g - want) / (jnp.linalg.norm(want) + 1e-30))
        assert rel < 1e-2, (jax.tree_util.keystr(path), rel)
    dtypes = _dot_input_dtypes(jax.make_jaxpr(jax.grad(loss(mixed)))(params).jaxpr)
    dense = [d for d in dtypes if d == ("bfloat16", "bfloat16")]
    # 4 Dense layers per layer (Wqkv, Wo, Wi, mlp Wo), each with one forward and two backward GEMMs.
    assert len(dense) == 2 * 4 * 3, dtypes


def test_bf16_kernels_store_dense_weights_precast_with_identical_output():
    cfg = config_lib.model_config("tiny")
    with cfg.unlocked():
        cfg.update(num_layers=2, dtype="float32", matmul_dtype="bfloat16")
    encoder = model.Encoder(cfg)
    params = model.init_params(encoder, jax.random.key(0))
    cast = precision.bf16_kernels(params)
    for path, leaf in jax.tree_util.tree_leaves_with_path(cast):
        is_kernel = path[-1].key == "kernel"
        assert leaf.dtype == (jnp.bfloat16 if is_kernel else jnp.float32), jax.tree_util.keystr(path)
    assert sum(path[-1].key == "kernel" for path, _ in jax.tree_util.tree_leaves_with_path(cast)) == 2 * 4
    ids = jnp.asarray(np.random.default_rng(1).integers(1, cfg.vocab_size, (2, 24)), jnp.int32)
    run = jax.jit(lambda p: encoder.apply({"params": p}, ids))
    np.testing.assert_array_equal(run(cast), run(params))
