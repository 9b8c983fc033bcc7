"""The CPU thread limit for XLA, set before its backend starts.

Two libraries timed on one machine (ours and a torch reference, which pins its own pool where it
runs: ``setfit_jax.interop``) must not oversubscribe it.
"""

from __future__ import annotations

import os


def limit_threads(threads: int) -> None:
    """Pin XLA (before its backend starts) to ``threads`` CPU threads; 0 leaves the default."""
    if threads <= 0:
        return
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                               f"intra_op_parallelism_threads={threads}").strip()
