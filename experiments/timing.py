"""Benchmark timing shared by every ``bench_*``: warm-up, timed repeats, median, load average.

`measure` runs each function ``warmup`` times untimed (compilation, caches, torch's first
calls), then ``repeats`` timed rounds (more until ``min_time`` seconds are spent), alternating
the functions inside each round so that all of them see the same machine load. The median is
the headline; the minimum and every time are kept, and so is the 1/5/15-minute load average
before and after: on a shared machine a load above ``os.cpu_count()`` means other jobs ran
too, and a claim about speed must say so.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from typing import Any, Callable, Mapping, Optional


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall and process-CPU seconds of each timed call, and the load around the measurement."""

    wall_s: tuple[float, ...]
    cpu_s: tuple[float, ...]
    warmup: int
    load_average_before: tuple[float, float, float]
    load_average_after: tuple[float, float, float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.wall_s)

    @property
    def min_s(self) -> float:
        return min(self.wall_s)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(self.cpu_s)

    def to_dict(self) -> dict[str, Any]:
        return {"median_s": self.median_s, "min_s": self.min_s, "times_s": list(self.wall_s),
                "median_cpu_s": self.median_cpu_s, "warmup": self.warmup,
                "load_average_before": list(self.load_average_before),
                "load_average_after": list(self.load_average_after)}


def measure(fns: Mapping[str, Callable[[], Any]], *, repeats: int, warmup: int = 1, min_time: float = 0.0,
            sync: Optional[Callable[[Any], Any]] = None) -> dict[str, Timing]:
    """Time each of ``fns`` (interleaved); ``sync(result)`` waits for asynchronous work (e.g.
    `jax.block_until_ready`) inside the timed region."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"measure needs repeats >= 1 and warmup >= 0; got repeats={repeats}, warmup={warmup}")
    if not fns:
        raise ValueError("measure needs at least one function to time")
    sync = sync or (lambda result: result)
    load_before = os.getloadavg()
    for _ in range(warmup):
        for fn in fns.values():
            sync(fn())
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    while len(next(iter(wall.values()))) < repeats or min(sum(t) for t in wall.values()) < min_time:
        for name, fn in fns.items():
            t_wall, t_cpu = time.perf_counter(), time.process_time()
            sync(fn())
            wall[name].append(time.perf_counter() - t_wall)
            cpu[name].append(time.process_time() - t_cpu)
    load_after = os.getloadavg()
    return {name: Timing(tuple(wall[name]), tuple(cpu[name]), warmup, load_before, load_after) for name in fns}
