"""Version shim for the Pallas Triton backend (JAX 0.10.2 on CPU machines, 0.11.x on GPU).

Every version-sensitive Pallas import lives here so a JAX upgrade touches one file:

* The Triton compiler-params class was ``TritonCompilerParams`` before JAX 0.7 and is
  ``CompilerParams`` since; both take ``num_warps`` and ``num_stages``.
* JAX 0.11 deprecates the Triton backend (still present and working); importing it may
  warn, which would turn into an error under ``-W error``, so the import is done with that
  one warning category silenced.
"""

from __future__ import annotations

import warnings

from jax.experimental import pallas as pl

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from jax.experimental.pallas import triton as pl_triton

__all__ = ["pl", "triton_compiler_params"]


def triton_compiler_params(num_warps: int, num_stages: int):
    """The Triton ``CompilerParams`` dataclass of whichever JAX is installed."""
    params_cls = getattr(pl_triton, "CompilerParams", None) or getattr(pl_triton, "TritonCompilerParams")
    return params_cls(num_warps=num_warps, num_stages=num_stages)
