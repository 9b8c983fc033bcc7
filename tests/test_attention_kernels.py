"""Attention kernels (blocked, Pallas) against the dense reference `xla_attention`.

On CPU the Pallas kernel runs in interpret mode (``attention_impl="pallas_interpret"``); on a
GPU backend the same tests run the compiled Triton kernels, so this file is also the GPU check. Block sizes
are 16 (Pallas; Triton's minimum) and 8 (blocked) so that tiny sequences span several blocks
and the blocked path really computes bands (it falls back to dense when the band would cover
the whole sequence, as for w >= T and global).

Tolerances (max abs error against the reference on unit-normal inputs):
  float32: outputs 2e-5, gradients 1e-4 (reordered float32 sums; GPU dots are IEEE fp32).
  bfloat16 / float16: compared with the float32 reference on the same (rounded) inputs;
  outputs 3e-2, gradients 6e-2 (inputs and probabilities are rounded to 8 / 11 mantissa
  bits before the value products, as in every flash kernel).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from modernbert_jax.attention import dot_product_attention
from modernbert_jax.kernels.blocked import blocked_attention
from modernbert_jax.kernels.pallas_attention import BlockSizes, flash_attention, key_ranges
from modernbert_jax.kernels.reference import attention_mask, xla_attention

ON_GPU = jax.default_backend() == "gpu"
INTERPRET = not ON_GPU
PALLAS_IMPL = "pallas" if ON_GPU else "pallas_interpret"
SMALL_BLOCKS = BlockSizes(16, 16, 16, 16, 16, 16)
TOLERANCE = {  # dtype -> (output atol, gradient atol)
    jnp.float32: (2e-5, 1e-4),
    jnp.bfloat16: (3e-2, 6e-2),
    jnp.float16: (3e-2, 6e-2),
}


@pytest.fixture(autouse=True)
def exact_float32_matmuls():
    """GPUs default float32 matmuls to TF32; the reference and the kernels must both be exact."""
    with jax.default_matmul_precision("highest"):
        yield


def pallas_small_blocks(q, k, v, *, segment_ids, half_window):
    return flash_attention(q, k, v, segment_ids=segment_ids, half_window=half_window, interpret=INTERPRET,
                           block_sizes=SMALL_BLOCKS)


def blocked_small_blocks(q, k, v, *, segment_ids, half_window):
    return blocked_attention(q, k, v, segment_ids=segment_ids, half_window=half_window, block_size=8)


IMPLS = {"pallas": pallas_small_blocks, "blocked": blocked_small_blocks}


def packed_segments(batch: int, length: int, seed: int) -> np.ndarray:
    """Rows of several packed segments then padding; the last row is all padding."""
    rng = np.random.default_rng(seed)
    seg = np.zeros((batch, length), np.int32)
    for row in range(batch - 1):
        cuts = np.sort(rng.choice(np.arange(1, length), size=3, replace=False))
        bounds = [0, *cuts]  # the last cut starts the padding tail
        for sid, (start, end) in enumerate(zip(bounds[:-1], bounds[1:]), start=1):
            seg[row, start:end] = sid
    return seg


def make_inputs(batch, length, heads, head_dim, dtype, seed=0):
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    q, k, v = (jax.random.normal(key, (batch, length, heads, head_dim), jnp.float32).astype(dtype) for key in keys[:3])
    cotangent = jax.random.normal(keys[3], (batch, length, heads, head_dim), jnp.float32)
    return q, k, v, jnp.asarray(packed_segments(batch, length, seed)), cotangent


def value_and_grads(fn, q, k, v, segment_ids, half_window, cotangent):
    def loss(q, k, v):
        out = fn(q, k, v, segment_ids=segment_ids, half_window=half_window)
        return jnp.sum(out.astype(jnp.float32) * cotangent), out

    (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(q, k, v)
    return out, grads


# (length, half_window): w=0, a window inside one block, one spanning blocks, w >= T, global;
# lengths that are not multiples of the block size.
CASES = [(40, 0), (40, 5), (61, 20), (33, 64), (40, None)]


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("length,half_window", CASES)
def test_matches_dense_float32(impl, length, half_window):
    q, k, v, seg, cot = make_inputs(batch=3, length=length, heads=2, head_dim=8, dtype=jnp.float32)
    out, grads = value_and_grads(IMPLS[impl], q, k, v, seg, half_window, cot)
    ref_out, ref_grads = value_and_grads(xla_attention, q, k, v, seg, half_window, cot)
    out_tol, grad_tol = TOLERANCE[jnp.float32]
    np.testing.assert_allclose(out, ref_out, atol=out_tol, rtol=0)
    for name, g, ref in zip("qkv", grads, ref_grads):
        np.testing.assert_allclose(g, ref, atol=grad_tol, rtol=0, err_msg=f"d{name}")
    # The all-padding row (and padding tails) are exact zeros, with zero gradients.
    assert np.all(np.asarray(out)[np.asarray(seg) == 0] == 0)
    for g in grads:
        assert np.all(np.isfinite(g)) and np.all(np.asarray(g)[np.asarray(seg) == 0] == 0)


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("dtype,half_window", [(jnp.bfloat16, 5), (jnp.bfloat16, None), (jnp.float16, 7)])
def test_matches_dense_half_precision(impl, dtype, half_window):
    q, k, v, seg, cot = make_inputs(batch=2, length=40, heads=2, head_dim=16, dtype=dtype, seed=1)
    out, grads = value_and_grads(IMPLS[impl], q, k, v, seg, half_window, cot)
    upcast = [x.astype(jnp.float32) for x in (q, k, v)]
    ref_out, ref_grads = value_and_grads(xla_attention, *upcast, seg, half_window, cot)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    out_tol, grad_tol = TOLERANCE[dtype]
    np.testing.assert_allclose(out.astype(jnp.float32), ref_out, atol=out_tol, rtol=0)
    for name, g, ref in zip("qkv", grads, ref_grads):
        np.testing.assert_allclose(g.astype(jnp.float32), ref, atol=grad_tol, rtol=0, err_msg=f"d{name}")


def test_pallas_default_blocks_head_dim_64():
    """Default block sizes (64) over a few blocks, the released models' head size."""
    q, k, v, seg, cot = make_inputs(batch=1, length=150, heads=1, head_dim=64, dtype=jnp.float32, seed=2)
    fn = lambda *a, **kw: flash_attention(*a, interpret=INTERPRET, **kw)  # noqa: E731
    out, grads = value_and_grads(fn, q, k, v, seg, 64, cot)
    ref_out, ref_grads = value_and_grads(xla_attention, q, k, v, seg, 64, cot)
    out_tol, grad_tol = TOLERANCE[jnp.float32]
    np.testing.assert_allclose(out, ref_out, atol=out_tol, rtol=0)
    for name, g, ref in zip("qkv", grads, ref_grads):
        np.testing.assert_allclose(g, ref, atol=grad_tol, rtol=0, err_msg=f"d{name}")


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_out_of_window_blocks_are_never_read(impl):
    """Values poisoned with NaN in key blocks outside a query block's reach stay out of it.

    Dense attention would turn the whole output NaN (0 * NaN); a kernel that skips blocks
    leaves the first query block finite. This is what makes local attention O(T*w).
    """
    q, k, v, _, _ = make_inputs(batch=1, length=64, heads=1, head_dim=16, dtype=jnp.float32)
    seg = jnp.ones((1, 64), jnp.int32)
    v = v.at[:, 48:].set(jnp.nan)  # rows 0..15 with w=3 reach keys < 19: blocks 0 and 1 only
    out = IMPLS[impl](q, k, v, segment_ids=seg, half_window=3)
    assert np.all(np.isfinite(out[:, :16]))


def test_out_of_segment_blocks_are_never_read():
    """Global attention over two packed halves: each half never reads the other's blocks."""
    q, k, v, _, _ = make_inputs(batch=1, length=64, heads=1, head_dim=16, dtype=jnp.float32)
    seg = jnp.asarray(np.repeat([1, 2], 32)[None], jnp.int32)
    v = v.at[:, 32:].set(jnp.nan)
    out = pallas_small_blocks(q, k, v, segment_ids=seg, half_window=None)
    assert np.all(np.isfinite(out[:, :32]))


@pytest.mark.parametrize("half_window", [0, 3, None])
def test_key_ranges_cover_exactly_the_visible_keys(half_window):
    seg = jnp.asarray(packed_segments(3, 37, seed=3))
    lo, hi = key_ranges(seg, half_window)
    mask = np.asarray(attention_mask(seg, half_window))[:, 0]
    j = np.arange(seg.shape[1])
    in_range = (j[None, None, :] >= np.asarray(lo)[:, :, None]) & (j[None, None, :] < np.asarray(hi)[:, :, None])
    np.testing.assert_array_equal(in_range, mask)


@pytest.mark.parametrize(
    "dtype,head_dim,half_window",
    [(jnp.bfloat16, 64, 64), (jnp.bfloat16, 64, None), (jnp.bfloat16, 128, 64), (jnp.float16, 64, 64), (jnp.float32, 64, 64), (jnp.float32, 128, None)],
)
def test_pallas_lowers_for_cuda(dtype, head_dim, half_window):
    """Lower forward and backward through Pallas -> Triton for CUDA, without a GPU.

    Interpret mode cannot see Triton lowering rules (unsupported ops, block shapes); export
    runs them. The Triton custom call is marked safe because it is what we mean to emit.
    """
    shapes = [jax.ShapeDtypeStruct((2, 300, 2, head_dim), dtype)] * 3 + [jax.ShapeDtypeStruct((2, 300), jnp.int32)]

    def forward(q, k, v, seg):
        return flash_attention(q, k, v, segment_ids=seg, half_window=half_window)

    def forward_backward(q, k, v, seg):
        return jax.grad(lambda *qkv: forward(*qkv, seg).astype(jnp.float32).sum(), argnums=(0, 1, 2))(q, k, v)

    for fn, kernels in ((forward, 1), (forward_backward, 3)):
        exported = jax.export.export(
            jax.jit(fn),
            platforms=["cuda"],
            disabled_checks=[jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")],
        )(*shapes)
        assert exported.mlir_module().count("__gpu$xla.gpu.triton") == kernels


def test_dispatch_runs_each_impl():
    q, k, v, seg, _ = make_inputs(batch=2, length=40, heads=2, head_dim=8, dtype=jnp.float32)
    ref = xla_attention(q, k, v, segment_ids=seg, half_window=5)
    for impl in ("blocked", PALLAS_IMPL, "auto"):
        out = dot_product_attention(q, k, v, segment_ids=seg, half_window=5, impl=impl)
        np.testing.assert_allclose(out, ref, atol=TOLERANCE[jnp.float32][0], rtol=0, err_msg=impl)


def test_rejects_mixed_dtypes():
    q, k, v, seg, _ = make_inputs(batch=1, length=16, heads=1, head_dim=8, dtype=jnp.float32)
    with pytest.raises(ValueError, match="share a dtype"):
        flash_attention(q, k.astype(jnp.bfloat16), v, segment_ids=seg, half_window=None, interpret=True)


def test_rejects_bad_block_size():
    q, k, v, seg, _ = make_inputs(batch=1, length=16, heads=1, head_dim=8, dtype=jnp.float32)
    with pytest.raises(ValueError, match="block_k"):
        flash_attention(q, k, v, segment_ids=seg, half_window=None, interpret=True, block_sizes=BlockSizes(block_k=24))


def test_dispatch_rejects_unknown_impl():
    q, k, v, seg, _ = make_inputs(batch=1, length=16, heads=1, head_dim=8, dtype=jnp.float32)
    with pytest.raises(ValueError, match="unknown attention impl 'flash'"):
        dot_product_attention(q, k, v, segment_ids=seg, half_window=2, impl="flash")

