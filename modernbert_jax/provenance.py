"""What made a result: the provenance block every result file carries, and how it is written.

    block = provenance(config, seed=config.seed, data_hash=data_hash(paths_read))
    write_result(workdir / "result.json", {"metrics": metrics, "provenance": block})

The block names the git commit (and whether the tree had uncommitted changes), the exact
command, the full resolved config, the library versions, the devices, the seed, a content hash
of the data the run read, the host and the UTC time, so a table can be traced back to, and
regenerated from, what produced each of its numbers.

A script (``experiments/bench_*``) records its arguments as the config and writes through a
`ResultFile`, claimed when it starts so that a refused path fails before the measurement:

    out = ResultFile(flags_out, overwrite=flags_overwrite)    # at start
    out.write(result, config=command_line_config(), seed=seed, data_paths=paths_read)
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import ml_collections

from modernbert_jax import config as config_lib, safe_io

_GIT_TIMEOUT_S = 10
# Distributions behind every run; `peers` adds those of a reference library run beside ours.
_LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")


def provenance(
    config: ml_collections.ConfigDict | Mapping[str, Any], *, seed: int | None, data_hash: str,
    peers: Sequence[str] = (),
) -> dict[str, Any]:
    """The provenance block of a run of ``config`` (see the module docstring).

    ``config``: an experiment's ConfigDict, or a script's arguments as a plain mapping.
    ``peers``: distributions of reference libraries that ran in the same measurement, e.g.
    ``("torch", "setfit")``; their versions are recorded beside ours.
    """
    import jax  # here, not at import: writing a result must not be what initialises the backend

    devices = jax.devices()
    return {
        "git": _git_state(),
        "command": shlex.join(sys.orig_argv),
        "cwd": os.getcwd(),
        "config": config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config),
        "versions": {"python": platform.python_version(), **_versions((*_LIBRARIES, *peers))},
        "devices": {"platform": devices[0].platform, "kind": devices[0].device_kind, "count": len(devices),
                    "processes": jax.process_count()},
        "seed": seed,
        "data_hash": data_hash,
        "hostname": socket.gethostname(),
        "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _versions(distributions: Iterable[str]) -> dict[str, str | None]:
    out = {}
    for name in distributions:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git(*args: str) -> subprocess.CompletedProcess:
    """git in the code's checkout (whose commit is recorded), wherever the run was launched from."""
    return subprocess.run(["git", "-C", str(config_lib.REPO_ROOT), *args], capture_output=True, text=True,
                          timeout=_GIT_TIMEOUT_S, check=False)


def _git_state() -> dict[str, Any]:
    """Commit and dirtiness of the checkout; outside one (or without git) says so instead of failing."""
    try:
        head = _git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None, "note": f"not a git checkout: {head.stderr.strip()}"}
        # Tracked files only: a sweep writing its results inside the checkout must not turn every
        # later point "dirty". The hash of the diff tells two dirty trees apart.
        status = _git("status", "--porcelain", "--untracked-files=no")
        diff = _git("diff", "HEAD") if status.stdout.strip() else None
    except FileNotFoundError:
        return {"commit": None, "dirty": None, "note": "git is not installed"}
    except subprocess.TimeoutExpired:
        return {"commit": None, "dirty": None, "note": f"git did not answer within {_GIT_TIMEOUT_S}s"}
    state = {"commit": head.stdout.strip(), "dirty": diff is not None}
    if diff is not None:
        state["diff_sha256"] = hashlib.sha256(diff.stdout.encode()).hexdigest()
    return state


def data_hash(paths: Iterable[str | os.PathLike]) -> str:
    """``sha256:<hex>`` over the contents of ``paths`` (files, or directories walked), in sorted path order.

    Each file enters as its name (relative to the directory it was found under) and its bytes,
    so the hash follows the data, not where the cache lives.
    """
    digest = hashlib.sha256()
    for root in sorted(Path(p).resolve() for p in paths):
        if root.is_dir():
            files = sorted(f for f in root.rglob("*") if f.is_file())
            base = root
        elif root.is_file():
            files, base = [root], root.parent
        else:
            raise FileNotFoundError(f"data_hash: {root} does not exist")
        for f in files:
            digest.update(f.relative_to(base).as_posix().encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


def write_result(path: str | os.PathLike, result: dict[str, Any], *, overwrite: bool = False) -> None:
    """Write ``result`` as JSON atomically: readers see the old file or the whole new one, never a part.

    An existing file holding a different result is an error unless ``overwrite``; rewriting the
    same result is a no-op.
    """
    path = Path(path)
    text = json.dumps(result, indent=2, sort_keys=True, allow_nan=True) + "\n"
    if path.exists() and not overwrite:
        if path.read_text(encoding="utf-8") == text:
            return
        raise FileExistsError(f"{path} already holds a different result; pass overwrite=True to replace it")
    safe_io.write_file(path, text)


def command_line_config() -> dict[str, Any]:
    """The running script's own absl flags with their parsed values: a script's resolved arguments.

    absl files the flags of the ``__main__`` module under ``sys.argv[0]``; library flags (absl's
    logging, JAX's) are left out.
    """
    from absl import flags

    return {flag.name: flag.value for flag in flags.FLAGS.get_flags_for_module(sys.argv[0])}


class ResultFile:
    """The JSON result a script writes, with its provenance block, to a path the user named.

    Claimed when the script starts: a file already there may be replaced only if it holds a
    result of the same git commit (a re-measurement; uncommitted changes are not compared, the
    block records them); a result of another
    commit, or one without provenance, is refused unless ``overwrite``, so a committed result is
    never replaced by accident, and the refusal comes before the measurement, not after it.
    """

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False):
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            self._check_same_commit()

    def _check_same_commit(self) -> None:
        try:
            recorded = json.loads(self.path.read_text(encoding="utf-8")).get("provenance", {}).get("git", {})
        except (ValueError, AttributeError):  # not JSON, or not an object: nothing says what made it
            recorded = {}
        commit, now = recorded.get("commit"), _git_state().get("commit")
        if commit is None or commit != now:
            made_by = f"commit {commit}" if commit else "an unknown commit (no provenance)"
            raise FileExistsError(f"{self.path} holds a result of {made_by}, this checkout is at "
                                  f"{now or 'no known commit'}: pass --overwrite to replace it, or another --out")

    def write(self, result: Mapping[str, Any], *, config: ml_collections.ConfigDict | Mapping[str, Any],
              seed: int | None, data_paths: Iterable[str | os.PathLike] = (), peers: Sequence[str] = ()
              ) -> dict[str, Any]:
        """Write ``result`` plus ``provenance`` (``data_paths``: what the script read, hashed) atomically;
        may be called again as results accumulate. Returns what was written."""
        block = provenance(config, seed=seed, data_hash=data_hash(data_paths), peers=peers)
        full = {**result, "provenance": block}
        write_result(self.path, full, overwrite=True)
        return full
