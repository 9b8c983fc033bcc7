"""Sweeps: many runs of one experiment config, each point its own resumable process, one table.

A sweep file (``configs/sweeps/<name>.py``) has ``get_config(arg)`` returning a ConfigDict:

* ``base``: the experiment config spec every point starts from, ``"configs/pretrain.py:variant=tiny"``;
* ``entry``: the library function that runs a point, a key of ``ENTRIES`` (``pretrain``, ``gliner``,
  ``setfit``, ``efficiency``, ``finetune``);
* ``fixed``: (optional) nested overrides every point shares, ``{"model": {"num_layers": 2}}``;
* ``points``: a list of ``{"dotted.field": value}`` override dicts, built with ``sweep``,
  ``product``, ``zip_`` and ``seeds`` (big_vision's ``h.product([h.sweep("config.lr", ...)])``);
  a point's optional ``"label"`` names its row in the table and figure;
* ``metrics``: the result metrics the table shows (``"eval.loss"``, ``"train.tokens_per_sec"``);
* ``figure``: (optional) ``{"kind": "bar", "metric": m}`` (error bars over seeds) or
  ``{"kind": "curve", "metric": m, "x": "dotted.field"}`` (the metric against a swept value).

``load_sweep`` validates every point against the base config before anything runs; ``run_sweep``
runs each pending point as ``python -m experiments.run_point`` in ``workdir/<point name>/`` (``workers`` at
once; a point with a ``result.json`` is done and skipped, an interrupted one resumes from its own
checkpoints), then aggregates every finished point into ``table.md``, ``table.csv`` and the figure.
"""

from __future__ import annotations

import concurrent.futures
import copy
import csv
import dataclasses
import hashlib
import importlib
import io
import itertools
import json
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence, TextIO

import ml_collections

from modernbert_jax import config as config_lib
from modernbert_jax import provenance as provenance_lib
from modernbert_jax import safe_io

RESULT = "result.json"
CONFIG = "config.json"  # the resolved config a point directory belongs to, written before it first runs
LOG = "log.txt"
SEED = "seed"  # the field `seeds` sweeps; points differing only in it are averaged in the table
LABEL = "label"  # a point's optional row name in the table and figure (not a config field)
POINT_MODULE = "experiments.run_point"
_SCALARS = (bool, int, float, str)
_SWEEP_FIELDS = {"base", "entry", "fixed", "points", "metrics", "figure"}


class Entry(NamedTuple):
    """An entry point a sweep can run, as ``"module:function"`` names imported only when a point runs
    (so the encoder package never imports the packages built on it when they join this table)."""

    run: str  # (config, workdir) -> summary dict of metrics, resuming from workdir's checkpoints
    inputs: str  # (config) -> paths of the data the run reads, built (and cached) on the way
    peers: tuple[str, ...] = ()  # reference libraries that run beside ours (their versions are recorded)


ENTRIES = {
    "pretrain": Entry("modernbert_jax.train.loop:train", "modernbert_jax.train.inputs:pretraining_inputs"),
    "gliner": Entry("gliner_jax.experiment:train", "gliner_jax.experiment:inputs"),
    "setfit": Entry("setfit_jax.fewshot:run_protocol", "setfit_jax.fewshot:protocol_inputs",
                    peers=("setfit", "sentence-transformers", "torch", "transformers")),
    "efficiency": Entry("experiments.efficiency:run", "experiments.efficiency:inputs"),
    "finetune": Entry("finetune_jax.loop:train", "finetune_jax.loop:inputs"),
}


def _resolve(target: str) -> Callable:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


# ---- building points (the sweep file's helpers) ----

def sweep(field: str, values: Sequence[Any]) -> list[dict[str, Any]]:
    """One axis: ``field`` set to each of ``values``."""
    if not values:
        raise ValueError(f"sweep({field!r}, ...) has no values: the sweep would have no points")
    return [{field: v} for v in values]


def product(*axes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every combination of one point from each axis (later axes vary fastest)."""
    empty = [i for i, axis in enumerate(axes) if not axis]
    if empty:
        raise ValueError(f"product: axis {empty[0]} has no points, so the product would have none")
    return [_merged(combo) for combo in itertools.product(*axes)]


def zip_(*axes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The i-th points of equally long axes merged: ``zip_(sweep("a", [1, 2]), sweep("b", [3, 4]))``."""
    lengths = {len(axis) for axis in axes}
    if len(lengths) > 1:
        raise ValueError(f"zip_: axes have different lengths {[len(a) for a in axes]}")
    return [_merged(combo) for combo in zip(*axes)]


def seeds(points: Sequence[dict[str, Any]], values: Sequence[int]) -> list[dict[str, Any]]:
    """Each point once per seed."""
    return product(points, sweep(SEED, values))


def _merged(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        clash = set(out) & set(part)
        if clash:
            raise ValueError(f"the same field is set twice in one point: {sorted(clash)}")
        out.update(part)
    return out


# ---- loading and validating a sweep ----

class SweepError(ValueError):
    """A sweep file or one of its points is invalid; raised before any point runs."""


@dataclasses.dataclass(frozen=True)
class Point:
    name: str  # its directory under the sweep's workdir, derived from `overrides`
    overrides: dict[str, Any]  # this point's own fields (the table's columns)
    config: ml_collections.ConfigDict  # base + fixed + overrides, resolved
    label: str | None = None  # the row's name where the sweep file gives one


@dataclasses.dataclass(frozen=True)
class Sweep:
    spec: str  # the sweep file[:arg] as given
    base: str  # the base spec, its path made absolute (points run from the repository root)
    entry: str
    fixed: dict[str, Any]
    points: list[Point]
    metrics: tuple[str, ...]
    figure: dict[str, Any] | None


def load_sweep(spec: str) -> Sweep:
    """The sweep of ``"configs/sweeps/x.py[:arg]"`` with every point validated (or a SweepError naming it)."""
    cfg = config_lib.load_config(spec)
    unknown = set(cfg.keys()) - _SWEEP_FIELDS
    if unknown:
        raise SweepError(f"sweep {spec}: unknown fields {sorted(unknown)}; expected {sorted(_SWEEP_FIELDS)}")
    for field in ("base", "entry", "points"):
        if field not in cfg:
            raise SweepError(f"sweep {spec}: no `{field}` field")
    if cfg.entry not in ENTRIES:
        raise SweepError(f"sweep {spec}: entry={cfg.entry!r} is not one of {sorted(ENTRIES)}")
    points = list(cfg.points)
    if not points or not all(isinstance(p, dict) for p in points):
        raise SweepError(f"sweep {spec}: `points` must be a non-empty list of {{'dotted.field': value}} dicts")
    labels = [p.get(LABEL) for p in points]
    if not all(label is None or isinstance(label, str) for label in labels):
        raise SweepError(f"sweep {spec}: a point's `{LABEL}` must be a string")
    points = [{k: v for k, v in p.items() if k != LABEL} for p in points]
    metrics = tuple(cfg.get("metrics", ()))
    figure = cfg.figure.to_dict() if cfg.get("figure") else None
    if figure is not None:
        _check_figure(spec, figure, metrics, points)

    base = _absolute_spec(cfg.base)
    base_config = config_lib.load_config(base)
    fixed = _flatten(cfg.fixed.to_dict()) if cfg.get("fixed") else {}
    names = point_names(points)
    resolved = []
    for name, overrides, label in zip(names, points, labels):
        config = copy.deepcopy(base_config)  # deep: lazy references (warmup <- total_steps) stay per point
        for field, value in {**fixed, **overrides}.items():
            try:
                _override(config, field, value)
            except (KeyError, TypeError) as e:
                raise SweepError(f"sweep {spec}, point {name!r}: {e.args[0]}") from None
        if "model" in config:
            try:
                config_lib.validate(config.model)
            except ValueError as e:
                raise SweepError(f"sweep {spec}, point {name!r}: {e}") from None
        resolved.append(Point(name, dict(overrides), config, label))
    return Sweep(spec, base, cfg.entry, fixed, resolved, metrics, figure)


def _absolute_spec(spec: str) -> str:
    """``spec`` with its file found as `load_config` finds it (working directory, then repository root)."""
    path, sep, arg = spec.partition(":")
    for candidate in (Path(path), config_lib.REPO_ROOT / path):
        if candidate.is_file():
            return str(candidate.resolve()) + sep + arg
    raise SweepError(f"base config {path!r} not found in {os.getcwd()} or {config_lib.REPO_ROOT}")


def _figure_metrics(figure: dict) -> list[str]:
    metric = figure.get("metric")
    return list(metric) if isinstance(metric, (list, tuple)) else [metric]


def _check_figure(spec: str, figure: dict, metrics: tuple[str, ...], points: list[dict]) -> None:
    kind = figure.get("kind")
    if kind not in ("bar", "curve"):
        raise SweepError(f"sweep {spec}: figure.kind={kind!r} is not 'bar' or 'curve'")
    for field in ("metric", "error"):
        for m in _figure_metrics({"metric": figure[field]}) if field in figure else []:
            if m not in metrics:
                raise SweepError(f"sweep {spec}: figure.{field} {m!r} is not one of metrics {metrics}")
    if "error" in figure and len(_figure_metrics({"metric": figure["error"]})) != len(_figure_metrics(figure)):
        raise SweepError(f"sweep {spec}: figure.error needs one metric per figure.metric")
    if kind == "curve" and not any(figure.get("x") in p for p in points):
        raise SweepError(f"sweep {spec}: figure.x={figure.get('x')!r} is not a swept field")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _override(config: ml_collections.ConfigDict, field: str, value: Any) -> None:
    """Set dotted ``field``; KeyError for an unknown one, TypeError for a value of the wrong type.

    Stricter than ConfigDict (which lets ``True`` into an int field): a point's value must be
    what the command line parses back to the same value, of the field's own type.
    """
    *parents, leaf = field.split(".")
    node = config
    for i, part in enumerate(parents):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            raise KeyError(f"unknown field {'.'.join(parents[:i + 1])!r} (in {field!r})")
        node = node[part]
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
        raise KeyError(f"unknown field {field!r}")
    current = node[leaf]
    if isinstance(current, ml_collections.ConfigDict):
        raise TypeError(f"field {field!r} is a config block; set its fields one by one")
    if not isinstance(value, _SCALARS):
        raise TypeError(f"field {field!r}: a sweep sets bool, int, float or str values, got {type(value).__name__}")
    if current is not None:
        expected = type(current)
        if expected is bool:
            ok = isinstance(value, bool)
        else:  # bool is an int subclass, but True is no step count
            ok = not isinstance(value, bool) and isinstance(value, (int, float) if expected is float else expected)
        if not ok:
            raise TypeError(f"field {field!r} is of type {expected.__name__} ({current!r}); "
                            f"got {value!r} ({type(value).__name__})")
    node[leaf] = value


def point_names(points: Sequence[dict[str, Any]]) -> list[str]:
    """A readable, filesystem-safe, unique directory name for each point: ``model.mlp=gelu,seed=1``."""
    keys = [json.dumps(sorted(p.items()), default=str) for p in points]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise SweepError(f"point {i} repeats point {keys.index(key)}: {points[i]}")
    names = []
    for point in points:
        rest = {k: v for k, v in point.items() if k != SEED}
        name = ",".join(f"{k}={_value_text(v)}" for k, v in rest.items())
        if len(name) > 100:  # directory names stay short; the hash keeps them unique
            name = name[:80] + "~" + hashlib.sha256(name.encode()).hexdigest()[:8]
        # The seed last and never cut off: a row's seeds sit side by side.
        name = ",".join(filter(None, [name, f"{SEED}={point[SEED]}" if SEED in point else ""])) or "base"
        names.append(re.sub(r"[^A-Za-z0-9._=,+~-]", "_", name))
    # Different values can read the same once made safe ("a/b" and "a_b"): tell them apart.
    clashes = {n for n in names if names.count(n) > 1}
    return [f"{n}~{hashlib.sha256(key.encode()).hexdigest()[:8]}" if n in clashes else n
            for n, key in zip(names, keys)]


def _value_text(value: Any) -> str:
    """How a value is written on the command line, where the point's process parses it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


# ---- running ----

def point_command(sw: Sweep, point: Point, workdir: str | os.PathLike) -> list[str]:
    """The command that runs ``point`` (from the repository root) in ``workdir/<point name>``."""
    flags = [f"--config.{k}={_value_text(v)}" for k, v in {**sw.fixed, **point.overrides}.items()]
    return [sys.executable, "-m", POINT_MODULE, f"--entry={sw.entry}", f"--config={sw.base}", *flags,
            f"--workdir={Path(workdir).resolve() / point.name}"]


def shell_command(sw: Sweep, point: Point, workdir: str | os.PathLike) -> str:
    """``point_command`` as one shell line a scheduler can run anywhere the checkout is."""
    return f"cd {shlex.quote(str(config_lib.REPO_ROOT))} && {shlex.join(point_command(sw, point, workdir))}"


def is_finished(point_dir: str | os.PathLike) -> bool:
    return (Path(point_dir) / RESULT).is_file()


def _as_json(config: ml_collections.ConfigDict) -> Any:
    return json.loads(json.dumps(config.to_dict(), sort_keys=True))


def claim_point_dir(point_dir: str | os.PathLike, config: ml_collections.ConfigDict) -> None:
    """Tie ``point_dir`` to ``config``: a directory left by a run of another config (another base,
    ``fixed`` block or arg: the point's name holds only its own overrides) is an error, never a
    result to skip to or a checkpoint to resume from."""
    path = Path(point_dir) / CONFIG
    if path.is_file():
        recorded, wanted = json.loads(path.read_text(encoding="utf-8")), _as_json(config)
        if recorded != wanted:
            recorded, wanted = _flatten(recorded), _flatten(wanted)
            differ = sorted(k for k in recorded.keys() | wanted.keys() if recorded.get(k) != wanted.get(k))
            raise SweepError(f"{point_dir} holds a run of another config (fields {differ}); "
                             "use a fresh workdir or remove that point's directory")
        return
    provenance_lib.write_result(path, _as_json(config))


def run_point(entry: str, config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> dict[str, Any]:
    """Run (or resume) one point and write its ``result.json`` (metrics and provenance) once it finished.

    A point whose result exists is not run again; its result is returned.
    """
    claim_point_dir(workdir, config)
    path = Path(workdir) / RESULT
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    spec = ENTRIES[entry]
    digest = provenance_lib.data_hash(_resolve(spec.inputs)(config))
    # Taken before the run: the commit whose code this process loaded, even if the checkout moves on.
    block = provenance_lib.provenance(config, seed=config.get(SEED), data_hash=digest, peers=spec.peers)
    summary = _resolve(spec.run)(config, str(workdir))
    metrics = _flatten(summary)
    metrics.update(_peak_memory_mb())
    result = {"metrics": metrics, "provenance": block}
    provenance_lib.write_result(path, result)
    return result


def _peak_memory_mb() -> dict[str, float]:
    import jax

    # ru_maxrss is in KiB on Linux: the whole process's high-water mark, host side.
    out = {"peak_host_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    stats = jax.local_devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:  # accelerators report it; the CPU backend does not
        out["peak_device_memory_mb"] = stats["peak_bytes_in_use"] / 2**20
    return out


class Outcome(NamedTuple):
    point: Point
    status: str  # "skipped" (finished before), "finished", "failed"
    returncode: int | None
    log: Path | None
    seconds: float


def run_sweep(sw: Sweep, workdir: str | os.PathLike, *, workers: int = 1, timeout_s: float | None = None,
              out: TextIO = sys.stdout) -> list[Outcome]:
    """Run every pending point (``workers`` at once), then write the table and figure; one Outcome a point."""
    if workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for point in sw.points:  # before anything runs: a workdir of another sweep fails the whole sweep
        claim_point_dir(workdir / point.name, point.config)
    pending = [p for p in sw.points if not is_finished(workdir / p.name)]
    outcomes = [Outcome(p, "skipped", None, None, 0.0) for p in sw.points if is_finished(workdir / p.name)]
    for o in outcomes:
        print(f"{o.point.name}: finished before, skipped", file=out, flush=True)
    # Build each point's data here, one at a time, so parallel points never build the same cache at once.
    inputs = _resolve(ENTRIES[sw.entry].inputs)
    for point in pending:
        inputs(point.config)

    def launch(point: Point) -> Outcome:
        point_dir = workdir / point.name
        point_dir.mkdir(exist_ok=True)
        log = point_dir / LOG
        start = time.monotonic()
        with open(log, "ab") as f:  # appended: an interrupted and resumed point keeps both logs
            f.write(f"$ {shell_command(sw, point, workdir)}\n".encode())
            f.flush()
            try:
                rc = subprocess.run(point_command(sw, point, workdir), cwd=config_lib.REPO_ROOT, stdout=f,
                                    stderr=subprocess.STDOUT, timeout=timeout_s, check=False).returncode
            except subprocess.TimeoutExpired:
                f.write(f"\n[sweep] killed after the {timeout_s}s time limit\n".encode())
                rc = -9
        ok = rc == 0 and is_finished(point_dir)
        outcome = Outcome(point, "finished" if ok else "failed", rc, log, time.monotonic() - start)
        status = f"finished in {outcome.seconds:.0f}s" if ok else f"FAILED (exit {rc}), log: {log}"
        print(f"{point.name}: {status}", file=out, flush=True)
        return outcome

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes += list(pool.map(launch, pending))
    write_tables(sw, workdir)
    return outcomes


# ---- aggregating ----

class Row(NamedTuple):
    overrides: dict[str, Any]  # the point's fields other than the seed
    seeds: list[Any]
    metrics: dict[str, list[float]]  # one value per finished seed
    label: str | None = None


def aggregate(sw: Sweep, workdir: str | os.PathLike) -> list[Row]:
    """Finished points grouped by their overrides other than the seed, in sweep order."""
    rows: dict[str, Row] = {}
    for point in sw.points:
        path = Path(workdir) / point.name / RESULT
        if not path.is_file():
            continue
        metrics = json.loads(path.read_text(encoding="utf-8"))["metrics"]
        overrides = {k: v for k, v in point.overrides.items() if k != SEED}
        row = rows.setdefault(json.dumps(sorted(overrides.items()), default=str),
                              Row(overrides, [], {m: [] for m in sw.metrics}, point.label))
        row.seeds.append(point.overrides.get(SEED, point.config.get(SEED)))
        for m in sw.metrics:
            if m in metrics:
                row.metrics[m].append(float(metrics[m]))
    return list(rows.values())


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def write_tables(sw: Sweep, workdir: str | os.PathLike) -> list[Row]:
    """``table.md``, ``table.csv`` and (if the sweep names one) ``figure.png`` from the finished points."""
    workdir = Path(workdir)
    rows = aggregate(sw, workdir)
    columns = list(dict.fromkeys(k for row in rows for k in row.overrides))
    labelled = any(row.label for row in rows)
    # Every output is replaced atomically: a reader (or a sweep killed mid-write) never sees half a table.
    with io.StringIO(newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*([LABEL] if labelled else []), *columns, "seeds",
                         *(f"{m}_{s}" for m in sw.metrics for s in ("mean", "std"))])
        for row in rows:
            stats = [_mean_std(row.metrics[m]) if row.metrics[m] else ("", "") for m in sw.metrics]
            writer.writerow([*([row.label or ""] if labelled else []), *(row.overrides.get(c, "") for c in columns),
                             " ".join(map(str, row.seeds)), *(x for pair in stats for x in pair)])
        safe_io.write_file(workdir / "table.csv", f.getvalue())
    base = os.path.relpath(sw.base, config_lib.REPO_ROOT) if sw.base.startswith(str(config_lib.REPO_ROOT)) else sw.base
    lines = [f"`python -m experiments.sweep --config={sw.spec} --workdir=DIR`", "",
             f"Sweep over `{base}` ({sw.entry}); mean ± std over the seeds of each row.", ""]
    if sw.fixed:
        lines += ["Every point also sets: " + ", ".join(f"`{k}={_value_text(v)}`" for k, v in sw.fixed.items()), ""]
    # Labelled rows name their overrides below the table instead of one column per field.
    shown = [LABEL] if labelled else columns
    lines += ["| " + " | ".join([*shown, "seeds", *sw.metrics]) + " |",
              "|" + "---|" * (len(shown) + 1 + len(sw.metrics))]
    for row in rows:
        cells = ([row.label or _label(row.overrides).replace("\n", ", ")] if labelled else
                 [_value_text(row.overrides[c]) if c in row.overrides else "" for c in columns])
        cells.append(str(len(row.seeds)))
        for m in sw.metrics:
            values = row.metrics[m]
            mean, std = _mean_std(values) if values else (None, None)
            cells.append("" if mean is None else f"{_number(mean)} ± {_number(std, 2)}" if len(values) > 1
                         else _number(mean))
        lines.append("| " + " | ".join(cells) + " |")
    if labelled:
        lines += ["", *(f"* **{row.label}**: " + (", ".join(f"`{k}={_value_text(v)}`" for k, v in row.overrides.items())
                                                  or "the base config") for row in rows if row.label)]
    safe_io.write_file(workdir / "table.md", "\n".join(lines) + "\n")
    if sw.figure and rows:
        _write_figure(sw.figure, rows, workdir / "figure.png")
    return rows


def export_results(sw: Sweep, workdir: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy what a reader needs (tables, figure, every finished point's ``result.json``) from ``workdir``
    to ``dest`` (e.g. ``experiments/results/<table>``), leaving checkpoints and logs behind."""
    workdir, dest = Path(workdir), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("table.md", "table.csv", "figure.png"):
        if (workdir / name).is_file():
            safe_io.write_file(dest / name, (workdir / name).read_bytes())
    for point in sw.points:
        if is_finished(workdir / point.name):
            safe_io.write_file(dest / point.name / RESULT, (workdir / point.name / RESULT).read_bytes())
    return dest


def _number(x: float, digits: int = 4) -> str:
    """``digits`` significant digits; large values in full with thousands separators (no 1.2e+04)."""
    return f"{x:,.0f}" if abs(x) >= 10 ** digits else f"{x:.{digits}g}"


def _label(overrides: dict[str, Any]) -> str:
    return "\n".join(f"{k}={_value_text(v)}" for k, v in overrides.items()) or "base"


def _write_figure(figure: dict[str, Any], rows: list[Row], path: Path) -> None:
    """A bar chart (one bar per row, or a group of bars per row when ``metric`` is a list) or a curve.

    Error bars are the std over a row's seeds, or (``error``: one metric per plotted metric) a std
    a point reports itself, as a protocol that runs its seeds inside one point does.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a training machine
    import matplotlib.pyplot as plt

    plotted = _figure_metrics(figure)
    errors = _figure_metrics({"metric": figure["error"]}) if "error" in figure else [None] * len(plotted)
    rows = [r for r in rows if all(r.metrics[m] for m in plotted)]

    def stats(row: Row, metric: str, error: str | None) -> tuple[float, float]:
        mean, std = _mean_std(row.metrics[metric])
        return (mean, _mean_std(row.metrics[error])[0]) if error and row.metrics[error] else (mean, std)

    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(rows) * len(plotted)) if figure["kind"] == "bar" else 5.0, 3.5))
    if figure["kind"] == "bar":
        width = 0.8 / len(plotted)
        for i, (metric, error) in enumerate(zip(plotted, errors)):
            values = [stats(r, metric, error) for r in rows]
            ax.bar([j + (i - (len(plotted) - 1) / 2) * width for j in range(len(rows))], [m for m, _ in values],
                   width=width, yerr=[e for _, e in values], capsize=4, label=metric)
        ax.set_xticks(range(len(rows)), [r.label or _label(r.overrides) for r in rows], fontsize=7,
                      rotation=30 if any(r.label for r in rows) else 0, ha="right" if any(r.label for r in rows) else "center")
        if len(plotted) > 1:
            ax.legend(fontsize=7)
    else:
        x = figure["x"]
        lines: dict[str, list[tuple[Any, float, float]]] = {}
        for row in rows:
            mean, std = stats(row, plotted[0], errors[0])
            rest = {k: v for k, v in row.overrides.items() if k != x}
            lines.setdefault(_label(rest).replace("\n", ", "), []).append((row.overrides.get(x), mean, std))
        for label, pts in lines.items():
            pts.sort(key=lambda p: p[0])
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o",
                        capsize=3, label=label)
        ax.set_xlabel(x)
        if len(lines) > 1:
            ax.legend(fontsize=7)
    ax.set_ylabel(figure.get("ylabel") or ", ".join(plotted))
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=150)
    plt.close(fig)
    safe_io.write_file(path, image.getvalue())


def main(spec: str, workdir: str, *, workers: int = 1, print_commands: bool = False,
         timeout_s: float | None = None, results_dir: str = "", out: TextIO = sys.stdout) -> int:
    """The sweep command: validate, then print the points' commands or run them (and export the results
    to ``results_dir`` if given); exit status 1 if any failed."""
    sw = load_sweep(spec)
    if print_commands:
        for point in sw.points:
            print(shell_command(sw, point, workdir), file=out)
        return 0
    outcomes = run_sweep(sw, workdir, workers=workers, timeout_s=timeout_s, out=out)
    failed = [o for o in outcomes if o.status == "failed"]
    if results_dir:
        print(f"results copied to {export_results(sw, workdir, results_dir)}", file=out, flush=True)
    print(f"{len(outcomes) - len(failed)}/{len(outcomes)} points finished; table: {Path(workdir) / 'table.md'}",
          file=out, flush=True)
    for o in failed:
        print(f"failed: {o.point.name} (exit {o.returncode}), log: {o.log}", file=out, flush=True)
    return 1 if failed else 0
