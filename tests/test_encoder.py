"""The encoder's contract: packing is exact, bad input is named, configs reject unknown fields."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from modernbert_jax import config as config_lib
from modernbert_jax import model


@pytest.fixture(scope="module")
def tiny():
    cfg = config_lib.model_config("tiny")
    module = model.Encoder(cfg)
    return cfg, module, model.init_params(module, jax.random.key(0))


def test_packed_row_equals_sequences_run_alone(tiny):
    """Unpadding: two sequences packed in one row see nothing of each other."""
    cfg, module, params = tiny
    rng = np.random.default_rng(0)
    a, b = rng.integers(1, cfg.vocab_size, 37), rng.integers(1, cfg.vocab_size, 21)
    T = 64
    ids = np.zeros((1, T), np.int32)
    ids[0, :37], ids[0, 37:58] = a, b
    seg = np.array([[1] * 37 + [2] * 21 + [0] * 6])
    pos = np.array([list(range(37)) + list(range(21)) + [0] * 6])
    apply = jax.jit(module.apply)
    packed = apply({"params": params}, jnp.asarray(ids), jnp.asarray(seg), jnp.asarray(pos))
    alone_a = apply({"params": params}, jnp.asarray(a[None]))
    alone_b = apply({"params": params}, jnp.asarray(b[None]))
    np.testing.assert_allclose(packed[0, :37], alone_a[0], atol=1e-5)
    np.testing.assert_allclose(packed[0, 37:58], alone_b[0], atol=1e-5)


def test_attention_mask_equals_packed_single_segment(tiny):
    cfg, module, params = tiny
    ids = jnp.asarray(np.random.default_rng(1).integers(1, cfg.vocab_size, (2, 24)), jnp.int32)
    mask = jnp.asarray([[1] * 24, [1] * 10 + [0] * 14])
    via_mask = module.apply({"params": params}, ids, attention_mask=mask)
    seg = mask.astype(jnp.int32)
    pos = jnp.broadcast_to(jnp.arange(24), (2, 24))
    via_packed = module.apply({"params": params}, ids, seg, pos)
    np.testing.assert_allclose(via_mask, via_packed, atol=0)


def test_bfloat16_compute_tracks_float32(tiny):
    cfg, _, params = tiny
    bf_cfg = cfg.copy_and_resolve_references()
    bf_cfg.dtype = "bfloat16"
    ids = jnp.asarray(np.random.default_rng(2).integers(1, cfg.vocab_size, (2, 32)), jnp.int32)
    out32 = model.Encoder(cfg).apply({"params": params}, ids)
    out16 = model.Encoder(bf_cfg).apply({"params": params}, ids)
    assert out16.dtype == jnp.bfloat16
    rel = float(jnp.linalg.norm(out16.astype(jnp.float32) - out32) / jnp.linalg.norm(out32))
    assert rel < 3e-2, rel


def test_gradients_are_finite_and_reach_every_param():
    cfg = config_lib.model_config("tiny")
    module = model.MaskedLM(cfg)
    params = model.init_params(module, jax.random.key(1))
    ids = jnp.asarray(np.random.default_rng(3).integers(1, cfg.vocab_size, (2, 40)), jnp.int32)

    def loss(p):
        logits = module.apply({"params": p}, ids, masked_positions=jnp.asarray([[1, 7], [3, 39]]))
        return -jax.nn.log_softmax(logits)[..., 5].mean()

    grads = jax.jit(jax.grad(loss))(params)
    norms = jax.tree_util.tree_map(lambda g: float(jnp.abs(g).max()), grads)
    flat = jax.tree_util.tree_leaves_with_path(norms)
    assert all(np.isfinite(v) for _, v in flat)
    dead = [jax.tree_util.keystr(k) for k, v in flat if v == 0.0]
    assert not dead, f"parameters with zero gradient: {dead}"


def test_out_of_vocabulary_token_is_named(tiny):
    cfg, module, params = tiny
    ids = jnp.ones((2, 8), jnp.int32).at[1, 5].set(cfg.vocab_size + 3)
    with pytest.raises(ValueError, match=r"input_ids\[1, 5\] = 8195 is outside the vocabulary"):
        module.apply({"params": params}, ids)


def test_shape_mismatch_is_named(tiny):
    _, module, params = tiny
    with pytest.raises(ValueError, match="segment_ids shape"):
        module.apply({"params": params}, jnp.ones((2, 8), jnp.int32), jnp.ones((2, 7), jnp.int32), jnp.zeros((2, 8), jnp.int32))


def test_unknown_config_field_is_named():
    cfg = config_lib.load_config("configs/modernbert.py:variant=base")
    with pytest.raises(AttributeError, match="no_such_field"):
        cfg.model.no_such_field = 3
    with pytest.raises(ValueError, match="unknown config arg 'size'"):
        config_lib.load_config("configs/modernbert.py:size=base")


def test_invalid_choice_is_named():
    cfg = config_lib.model_config("tiny")
    cfg.mlp = "swiglu"
    with pytest.raises(ValueError, match=r"model\.mlp='swiglu'"):
        model.Encoder(cfg).init(jax.random.key(0), jnp.ones((1, 4), jnp.int32))


@pytest.mark.parametrize("variant, layers, hidden, heads, inter", [("base", 22, 768, 12, 1152), ("large", 28, 1024, 16, 2624)])
def test_released_sizes(variant, layers, hidden, heads, inter):
    cfg = config_lib.model_config(variant)
    assert (cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.intermediate_size, cfg.vocab_size) == (layers, hidden, heads, inter, 50368)
    half_windows = [config_lib.layer_half_window(cfg, i) for i in range(cfg.num_layers)]
    assert cfg.local_attention == 128 and half_windows[:4] == [None, 64, 64, None]  # HF full window, half-width


@pytest.mark.parametrize("impl", ["blocked", "pallas_interpret"])
def test_every_attention_impl_gives_the_same_encoder(impl):
    """Outputs and parameter gradients of the whole encoder agree with the dense reference.

    Tolerance 1e-4 (float32): the kernels reorder the softmax sums (online softmax).
    Pallas runs in interpret mode (``attention_impl="pallas_interpret"``), as CPU tests must.
    """
    cfg = config_lib.model_config("tiny").copy_and_resolve_references()
    cfg.update(hidden_size=64, num_heads=2, intermediate_size=96, num_layers=3, local_attention=16)
    # T=80 with w=8: long enough that the blocked path really runs banded (not its dense fallback).
    seg = jnp.asarray([[1] * 37 + [2] * 31 + [0] * 12, [1] * 80])
    pos = jnp.asarray([list(range(37)) + list(range(31)) + [0] * 12, list(range(80))])
    ids = jnp.asarray(np.random.default_rng(4).integers(1, cfg.vocab_size, (2, 80)), jnp.int32)
    params = model.init_params(model.Encoder(cfg), jax.random.key(2))

    def run(attention_impl):
        c = cfg.copy_and_resolve_references()
        c.attention_impl = attention_impl
        module = model.Encoder(c)
        weights = (seg != 0)[..., None]

        def loss(p):
            out = module.apply({"params": p}, ids, seg, pos)
            return jnp.sum(jnp.where(weights, out, 0.0) ** 2), out

        (_, out), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
        return jnp.where(weights, out, 0.0), grads

    ref_out, ref_grads = run("xla")
    out, grads = run(impl)
    np.testing.assert_allclose(out, ref_out, atol=1e-4)
    for (path, g), r in zip(jax.tree_util.tree_leaves_with_path(grads), jax.tree_util.tree_leaves(ref_grads)):
        np.testing.assert_allclose(g, r, atol=1e-4, rtol=1e-4, err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_sequence_classifier_ignores_padding(pooling):
    """A padded row classifies exactly as the same sequence alone; pooling follows the config."""
    cfg = config_lib.model_config("tiny").copy_and_resolve_references()
    cfg.classifier_pooling = pooling
    module = model.SequenceClassifier(cfg, num_labels=3)
    params = model.init_params(module, jax.random.key(5))
    seq = jnp.asarray(np.random.default_rng(6).integers(1, cfg.vocab_size, (1, 21)), jnp.int32)
    padded = jnp.concatenate([seq, jnp.zeros((1, 11), jnp.int32)], axis=1)
    mask = jnp.asarray([[1] * 21 + [0] * 11])
    apply = jax.jit(module.apply)
    alone = apply({"params": params}, seq)
    with_padding = apply({"params": params}, padded, attention_mask=mask)
    assert alone.shape == (1, 3)
    np.testing.assert_allclose(with_padding, alone, atol=1e-5)
    if pooling == "mean":  # the padding must be what is excluded, not merely harmless
        unmasked = apply({"params": params}, padded)
        assert float(jnp.abs(unmasked - alone).max()) > 1e-4
