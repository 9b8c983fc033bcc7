r"""One-shot GPU check of the attention kernels: kernel tests compiled for the GPU, then the benchmark.

Run from the repository root on the GPU machine (JAX with CUDA, torch with CUDA; no
ml_collections needed):

  python -m experiments.gpu_attention_check

Writes under $OUT (default experiments/results):
  attention_tests_gpu.log / .xml   pytest of tests/test_attention_kernels.py (compiled kernels on GPU)
  bench_attention_gpu.json / .log  python -m experiments.bench_attention
  gpu_attention_check.json         exit codes, timings and versions of both steps
Each step runs in its own process under a time limit, so the whole check ends in ~5 minutes.
If the GPU machine's Python has no pytest, carry the pure-Python pytest packages of the CPU
venv (see --pytest_site); they are put on the test step's path, nothing else from the venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags

_TEST_TIMEOUT = flags.DEFINE_integer("test_timeout", 150, "Seconds allowed for the kernel tests.")
_BENCH_TIMEOUT = flags.DEFINE_integer("bench_timeout", 180, "Seconds allowed for the benchmark.")
_PYTEST_SITE = flags.DEFINE_string(
    "pytest_site",
    ".venv/lib/python3.11/site-packages",
    "Where to borrow pytest (pure Python) from if the GPU machine's Python lacks it.",
)
# Probing the interpreter (imports only) takes seconds; far longer means it hangs.
_PROBE_TIMEOUT_S = 120
# pytest and its pure-Python dependencies: safe to borrow across Python versions.
_PYTEST_PACKAGES = ("_pytest", "pytest", "py.py", "pluggy", "iniconfig", "packaging", "pygments")


def pytest_path() -> str | None:
    """None if pytest imports here; else a directory linking only pytest's own packages."""
    try:
        if subprocess.run([sys.executable, "-c", "import pytest"], capture_output=True,
                          timeout=_PROBE_TIMEOUT_S).returncode == 0:
            return None
    except subprocess.TimeoutExpired:
        pass  # a hanging import is no usable pytest: borrow one
    borrowed = tempfile.mkdtemp(prefix="pytest_site_")
    for name in _PYTEST_PACKAGES:
        source = os.path.abspath(os.path.join(_PYTEST_SITE.value, name))
        if os.path.exists(source):
            os.symlink(source, os.path.join(borrowed, name))
    print(f"pytest missing: borrowing {sorted(os.listdir(borrowed))} from {_PYTEST_SITE.value}", flush=True)
    return borrowed


def run_step(name: str, command: list[str], timeout: int, log_path: str, extra_path: str | None = None) -> dict:
    """Run one step with its output in a log; a timeout is recorded, not raised."""
    # tests/conftest.py defaults JAX_PLATFORMS to cpu; the point here is the GPU.
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false", JAX_PLATFORMS="cuda")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH"), extra_path]))
    start = time.time()
    with open(log_path, "w") as log:
        try:
            returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            returncode = "timeout"
    seconds = time.time() - start
    with open(log_path) as log:
        tail = log.read()[-3000:]
    print(f"== {name}: rc={returncode} in {seconds:.0f}s\n{tail}", flush=True)
    return {"command": command, "returncode": returncode, "seconds": round(seconds, 1)}


def main(argv: list[str]) -> None:
    del argv
    out = os.environ.get("OUT") or os.path.join("experiments", "results")
    os.makedirs(out, exist_ok=True)
    try:
        versions = subprocess.run(
            [sys.executable, "-c", "import jax; print(jax.__version__, jax.default_backend(), jax.devices())"],
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
        )
        print(versions.stdout, versions.stderr[-2000:], flush=True)
        jax_probe = versions.stdout.strip()
    except subprocess.TimeoutExpired:  # recorded like a failed step, so the summary is still written
        jax_probe = f"probe timed out after {_PROBE_TIMEOUT_S}s"
    summary = {"python": sys.version, "jax": jax_probe}
    summary["tests"] = run_step(
        "kernel tests",
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=10",
         f"--junitxml={os.path.join(out, 'attention_tests_gpu.xml')}", "tests/test_attention_kernels.py"],
        _TEST_TIMEOUT.value,
        os.path.join(out, "attention_tests_gpu.log"),
        extra_path=pytest_path(),
    )
    summary["bench"] = run_step(
        "benchmark",
        [sys.executable, "-m", "experiments.bench_attention", f"--out={os.path.join(out, 'bench_attention_gpu.json')}"],
        _BENCH_TIMEOUT.value,
        os.path.join(out, "bench_attention_gpu.log"),
    )
    with open(os.path.join(out, "gpu_attention_check.json"), "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    app.run(main)
