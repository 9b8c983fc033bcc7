r"""One-shot GPU check of the attention kernels: kernel tests compiled for the GPU, then the benchmark.

Run from the repository root on the GPU machine (JAX with CUDA, torch with CUDA):

  python -m experiments.gpu_attention_check [--overwrite]

Writes under $OUT (default experiments/results):
  attention_tests_gpu.log / .xml   pytest of tests/test_attention_kernels.py (compiled kernels on GPU)
  bench_attention_gpu.json / .log  python -m experiments.bench_attention
  gpu_attention_check.json         exit codes, timings and versions of both steps, and provenance
Each step runs in its own process under a time limit, so the whole check ends in ~5 minutes.
Both JSONs carry the provenance block; one there holding a result of another commit is refused
unless ``--overwrite`` (passed on to the benchmark). The provenance block needs ml_collections:
install its wheel first (``pip install --no-deps ml_collections-*.whl``, see the device notes).
If the GPU machine's Python lacks pytest, its pure-Python packages are borrowed from the CPU venv
(see --venv_site) and put on the test step's path, nothing else from the venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from modernbert_jax import provenance

_TEST_TIMEOUT = flags.DEFINE_integer("test_timeout", 150, "Seconds allowed for the kernel tests.", lower_bound=1)
_BENCH_TIMEOUT = flags.DEFINE_integer("bench_timeout", 180, "Seconds allowed for the benchmark.", lower_bound=1)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace results of another commit under $OUT.")
_VENV_SITE = flags.DEFINE_string(
    "venv_site",
    ".venv/lib/python3.11/site-packages",
    "Where to borrow pytest (pure Python) from if the GPU machine's Python lacks it.",
)
# Probing the interpreter (imports only) takes seconds; far longer means it hangs.
_PROBE_TIMEOUT_S = 120
# Each borrowable module with its pure-Python packages: safe to borrow across Python versions
# (PyYAML's C extension fails to load on another Python and PyYAML falls back to pure Python).
_BORROWABLE = {
    "pytest": ("_pytest", "pytest", "py.py", "pluggy", "iniconfig", "packaging", "pygments"),
}


def borrowed_path(module: str) -> str | None:
    """None if ``module`` imports here; else a directory linking only its packages from the venv."""
    try:
        if subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                          timeout=_PROBE_TIMEOUT_S).returncode == 0:
            return None
    except subprocess.TimeoutExpired:
        pass  # a hanging import is no usable module: borrow one
    borrowed = tempfile.mkdtemp(prefix=f"{module}_site_")
    for name in _BORROWABLE[module]:
        source = os.path.abspath(os.path.join(_VENV_SITE.value, name))
        if os.path.exists(source):
            os.symlink(source, os.path.join(borrowed, name))
    print(f"{module} missing: borrowing {sorted(os.listdir(borrowed))} from {_VENV_SITE.value}", flush=True)
    return borrowed


def run_step(name: str, command: list[str], timeout: int, log_path: str,
             extra_paths: tuple[str | None, ...] = ()) -> dict:
    """Run one step with its output in a log; a timeout is recorded, not raised."""
    # tests/conftest.py defaults JAX_PLATFORMS to cpu; the point here is the GPU.
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false", JAX_PLATFORMS="cuda")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH"), *extra_paths]))
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
    summary_file = provenance.ResultFile(os.path.join(out, "gpu_attention_check.json"), overwrite=_OVERWRITE.value)
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
        extra_paths=(borrowed_path("pytest"),),
    )
    summary["bench"] = run_step(
        "benchmark",
        [sys.executable, "-m", "experiments.bench_attention", f"--out={os.path.join(out, 'bench_attention_gpu.json')}",
         f"--overwrite={str(_OVERWRITE.value).lower()}"],
        _BENCH_TIMEOUT.value,
        os.path.join(out, "bench_attention_gpu.log"),
        extra_paths=(collections_path,),
    )
    summary_file.write(summary, config=provenance.command_line_config(), seed=None)


if __name__ == "__main__":
    app.run(main)
