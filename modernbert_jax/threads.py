"""CPU thread limits for XLA and torch, set before either starts.

Two libraries timed on one machine (ours and a torch reference) must not oversubscribe it: on a
shared machine torch's OpenMP pool slows down 5-10x when every process takes every core.
"""

from __future__ import annotations

import os


def limit_threads(threads: int) -> None:
    """Pin XLA (before its backend starts) and torch to ``threads`` CPU threads; 0 leaves defaults."""
    if threads <= 0:
        return
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                               f"intra_op_parallelism_threads={threads}").strip()
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)
