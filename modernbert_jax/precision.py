"""Mixed-precision matmuls: bfloat16 inputs, float32 accumulation and outputs.

This is what ``torch.autocast(device_type="cpu", dtype=torch.bfloat16)`` does to linear
layers, and what SetFit's ``use_amp`` asks for. On CPUs with AMX or AVX512-BF16 a bfloat16
GEMM runs several times faster than a float32 one, while running every elementwise op in
bfloat16 (``model.dtype="bfloat16"``) is slower on XLA:CPU than float32. So only the matmul
inputs are cast; activations, norms, softmax and the parameters stay float32.

The VJP is written out so the two backward GEMMs (``dx = dy·Wᵀ``, ``dW = xᵀ·dy``) take
bfloat16 inputs as well; autodiff of a cast would run them in float32.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax


@jax.custom_vjp
def bf16_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x[..., k] @ w[k, n]`` with bfloat16 inputs and a float32 result."""
    return _forward(x, w)[0]


def _forward(x, w):
    xb, wb = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    y = lax.dot_general(xb, wb, (((x.ndim - 1,), (0,)), ((), ())), preferred_element_type=jnp.float32)
    # Empty arrays carry the input dtypes (residuals must be arrays): cotangents match them.
    return y, (xb, wb, jnp.zeros((0,), x.dtype), jnp.zeros((0,), w.dtype))


def _backward(res, dy):
    xb, wb, x_like, w_like = res
    dyb = dy.astype(jnp.bfloat16)
    dx = lax.dot_general(dyb, wb, (((dy.ndim - 1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
    lead = tuple(range(xb.ndim - 1))
    dw = lax.dot_general(xb, dyb, ((lead, lead), ((), ())), preferred_element_type=jnp.float32)
    return dx.astype(x_like.dtype), dw.astype(w_like.dtype)


bf16_matmul.defvjp(_forward, _backward)


def bf16_dot_general(lhs: jax.Array, rhs: jax.Array, dimension_numbers: Any, precision: Any = None,
                     preferred_element_type: Any = None) -> jax.Array:
    """A ``dot_general`` for ``nn.Dense``: its contraction (last axis of ``lhs`` with the first
    of a 2-D kernel) through ``bf16_matmul``."""
    del precision, preferred_element_type  # bfloat16 inputs, float32 accumulation by definition
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
    if tuple(lhs_contract) != (lhs.ndim - 1,) or tuple(rhs_contract) != (0,) or rhs.ndim != 2 or lhs_batch or rhs_batch:
        raise ValueError(f"bf16_dot_general handles Dense contractions only, got {dimension_numbers}")
    return bf16_matmul(lhs, rhs)


def bf16_kernels(params: Any) -> Any:
    """``params`` with every ``nn.Dense`` kernel (a 2-D leaf named ``kernel``) stored in bfloat16.

    For inference with bfloat16 matmuls: ``bf16_matmul`` casts its weight on every call, and on
    small batches reading float32 weights to cast them costs about as much as the GEMM itself.
    Kernels stored pre-cast give bit-identical results (the cast is exact either way; Dense's
    upcast and the matmul's downcast cancel).
    """
    def cast(path, x):
        return x.astype(jnp.bfloat16) if getattr(path[-1], "key", None) == "kernel" and x.ndim == 2 else x

    return jax.tree_util.tree_map_with_path(cast, params)
