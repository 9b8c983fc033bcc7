"""The sweep runner on tiny pretraining runs, and the provenance every result carries.

One two-point sweep (``configs/sweeps/tiny_pretrain.py``: seeds 0 and 1) runs from the command
line; the other tests build on its workdir: a second invocation skips both points, a sweep killed
mid-point resumes it from its checkpoint and reproduces the first sweep's metrics for that seed
in a fresh workdir. Validation, point names and provenance are checked in-process.
"""

import csv
import io
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time

import jax
import ml_collections
import pytest

from modernbert_jax import provenance as provenance_lib
from modernbert_jax import sweep
from modernbert_jax.train import inputs
from modernbert_jax.train.metrics import read_jsonl

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Enough steps that a kill after the step-2 checkpoint lands mid-run; each step is milliseconds.
STEPS = 40
# Metrics that depend only on the seed and the data, not on the machine's speed.
DETERMINISTIC = ("eval.loss", "eval.accuracy", "train.loss", "train.accuracy", "train.grad_norm", "step",
                 "tokens_seen")
# Shared with tests/test_train.py: point processes compile the same programs once.
_CACHE_ENV = {
    "JAX_COMPILATION_CACHE_DIR": os.path.join(os.environ.get("TMPDIR", "/tmp"), "modernbert_jax_test_xla_cache"),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}


def _env() -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", **_CACHE_ENV)
    env.pop("XLA_FLAGS", None)  # one device, like an ordinary run
    return env


def _sweep_cmd(spec: str, workdir, *extra: str) -> list[str]:
    return [sys.executable, "-m", "experiments.sweep", f"--config={spec}", f"--workdir={workdir}", *extra]


def _run_sweep(spec: str, workdir) -> subprocess.CompletedProcess:
    return subprocess.run(_sweep_cmd(spec, workdir), cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=600)


def _result(workdir, name: str) -> dict:
    with open(os.path.join(workdir, name, sweep.RESULT), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> str:
    """The tiny sweep with a tokenizer of its own (trained by the first sweep's data step)."""
    tokenizer = tmp_path_factory.mktemp("tok") / "tokenizer.model"
    return f"configs/sweeps/tiny_pretrain.py:steps={STEPS},tokenizer={tokenizer}"


@pytest.fixture(scope="module")
def first_sweep(tmp_path_factory, spec) -> str:
    workdir = str(tmp_path_factory.mktemp("sweep"))
    out = _run_sweep(spec, workdir)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return workdir


def test_sweep_runs_each_point_writes_tables_and_provenance_then_skips(first_sweep, spec):
    sw = sweep.load_sweep(spec)
    assert [p.name for p in sw.points] == ["seed=0", "seed=1"]
    results = {p.name: _result(first_sweep, p.name) for p in sw.points}

    # One row: the two points differ only by seed, so they are averaged.
    with open(os.path.join(first_sweep, "table.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["seeds"] == "0 1"
    losses = [r["metrics"]["eval.loss"] for r in results.values()]
    assert float(rows[0]["eval.loss_mean"]) == pytest.approx(sum(losses) / 2)
    table = open(os.path.join(first_sweep, "table.md"), encoding="utf-8").read()
    assert "| seeds | eval.loss |" in table and f"{sum(losses) / 2:.4g} ± " in table
    assert os.path.getsize(os.path.join(first_sweep, "figure.png")) > 1000

    commands = io.StringIO()
    assert sweep.main(spec, first_sweep, print_commands=True, out=commands) == 0
    printed = dict(zip((p.name for p in sw.points), commands.getvalue().splitlines()))
    for point in sw.points:
        p = results[point.name]["provenance"]
        assert len(p["git"]["commit"]) == 40 and isinstance(p["git"]["dirty"], bool)
        # The printed command is exactly the one that ran the point (and made its result).
        assert printed[point.name] == f"cd {shlex.quote(REPO)} && {p['command']}"
        assert p["config"] == json.loads(json.dumps(point.config.to_dict()))
        assert p["config"]["total_steps"] == STEPS and p["seed"] == point.overrides["seed"]
        assert p["versions"]["jax"] == jax.__version__ and p["versions"]["python"] == sys.version.split()[0]
        assert all(p["versions"][lib] for lib in ("jaxlib", "flax", "optax", "orbax-checkpoint", "numpy"))
        assert p["devices"]["count"] == 1 and p["devices"]["kind"]
        assert p["data_hash"] == provenance_lib.data_hash(inputs.pretraining_inputs(point.config))
        assert results[point.name]["metrics"]["step"] == STEPS

    # A second invocation starts no point: results and logs stay as they were.
    before = {n: (os.stat(os.path.join(first_sweep, n, sweep.RESULT)).st_mtime_ns,
                  os.path.getsize(os.path.join(first_sweep, n, sweep.LOG))) for n in results}
    again = _run_sweep(spec, first_sweep)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished before, skipped") == 2
    assert before == {n: (os.stat(os.path.join(first_sweep, n, sweep.RESULT)).st_mtime_ns,
                          os.path.getsize(os.path.join(first_sweep, n, sweep.LOG))) for n in results}


def test_killed_sweep_resumes_its_point_and_reproduces_the_seed(first_sweep, spec, tmp_path):
    """A fresh workdir holding the first sweep's finished seed=1: the runner starts seed=0 and is
    SIGKILLed with its point once the point's first checkpoint exists. The re-run leaves seed=1
    alone, resumes seed=0 from its checkpoint, and ends with the first sweep's seed-0 metrics."""
    workdir = tmp_path / "killed"
    shutil.copytree(os.path.join(first_sweep, "seed=1"), workdir / "seed=1")
    done_before = os.stat(workdir / "seed=1" / sweep.RESULT).st_mtime_ns
    point = workdir / "seed=0"
    with open(tmp_path / "runner.log", "w+b") as log:
        runner = subprocess.Popen(_sweep_cmd(spec, workdir), cwd=REPO, env=_env(), stdout=log, stderr=log,
                                  start_new_session=True)  # its own process group, the point included
        try:
            deadline, saved = time.monotonic() + 300, False
            while not saved and runner.poll() is None and time.monotonic() < deadline:
                saved = (point / "checkpoints" / "2").is_dir()  # finalized: renamed from its tmp dir
                time.sleep(0.02)
        finally:  # also when the wait failed: nothing of the sweep outlives the test
            try:
                os.killpg(runner.pid, signal.SIGKILL)
            except ProcessLookupError:  # the runner and its point already exited: its return code shows it
                pass
            runner.wait(timeout=60)
        log.seek(0)
        text = log.read().decode(errors="replace")[-3000:]
    assert runner.returncode == -signal.SIGKILL, (
        f"the runner was not killed mid-point (rc={runner.returncode}):\n{text}")
    assert saved, f"no step-2 checkpoint of seed=0 in time:\n{text}"
    assert not (point / sweep.RESULT).exists()
    killed_at = max(int(n) for n in os.listdir(point / "checkpoints") if n.isdigit())
    assert killed_at < STEPS, "the point finished before the kill"
    lines_before = len(read_jsonl(str(point / "metrics.jsonl")))

    out = _run_sweep(spec, workdir)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "seed=1: finished before, skipped" in out.stdout
    assert os.stat(workdir / "seed=1" / sweep.RESULT).st_mtime_ns == done_before
    resumed = [r["step"] for r in read_jsonl(str(point / "metrics.jsonl"))[lines_before:] if r["split"] == "train"]
    assert resumed == list(range(killed_at + 1, STEPS + 1)), "the point did not resume from its latest checkpoint"
    assert (point / sweep.LOG).read_text().count("$ cd ") == 2  # launched twice, logs kept
    got, want = _result(workdir, "seed=0")["metrics"], _result(first_sweep, "seed=0")["metrics"]
    assert {k: got[k] for k in DETERMINISTIC} == {k: want[k] for k in DETERMINISTIC}


BAD_POINTS = {
    "unknown": ({"model.no_such_field": 1}, "model.no_such_field"),
    "unknown_block": ({"trainer.steps": 1}, "trainer"),
    "type": ({"total_steps": "ten"}, "total_steps"),
    "bool_for_int": ({"total_steps": True}, "total_steps"),
    "int_for_bool": ({"model.final_norm": 1}, "model.final_norm"),
    "choice": ({"model.mlp": "gleu"}, "model.mlp"),
}

_BAD_SWEEP = '''
import ml_collections

BAD = {bad!r}


def get_config(arg):
    cfg = ml_collections.ConfigDict()
    cfg.base = "configs/pretrain.py:variant=tiny"
    cfg.entry = "pretrain"
    cfg.points = [{{"seed": 1}}, BAD[arg]]
    return cfg
'''


@pytest.fixture
def bad_sweep(tmp_path) -> str:
    path = tmp_path / "bad_sweep.py"
    path.write_text(_BAD_SWEEP.format(bad={k: v for k, (v, _) in BAD_POINTS.items()}))
    return str(path)


@pytest.mark.parametrize("kind", sorted(BAD_POINTS))
def test_bad_override_fails_the_sweep_before_any_point_starts(bad_sweep, kind, tmp_path):
    overrides, field = BAD_POINTS[kind]
    workdir = tmp_path / "work"
    name = sweep.point_names([overrides])[0]
    with pytest.raises(sweep.SweepError, match=rf"point '{re.escape(name)}'.*{re.escape(field)}\b"):
        sweep.main(f"{bad_sweep}:{kind}", str(workdir))
    assert not workdir.exists()


def test_bad_override_on_the_command_line_names_the_field(bad_sweep, tmp_path):
    workdir = tmp_path / "work"
    out = subprocess.run(_sweep_cmd(f"{bad_sweep}:unknown", workdir), cwd=REPO, env=_env(), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode != 0 and "model.no_such_field" in out.stderr and "no point was started" in out.stderr
    assert not workdir.exists()


def test_ablation_sweep_points_validate_with_one_token_budget():
    sw = sweep.load_sweep("configs/sweeps/modernbert_ablations.py")
    rows = {json.dumps({k: v for k, v in p.overrides.items() if k != "seed"}, sort_keys=True) for p in sw.points}
    assert len(rows) == 10 and len(sw.points) == 10 * 3
    assert len({p.name for p in sw.points}) == len(sw.points)
    swept = {k for p in sw.points for k in p.overrides}
    assert {"model.mlp", "model.position_embedding", "model.attention_pattern", "model.norm_placement",
            "data.mask_rate", "data.packing", "optimizer.name", "optimizer.decay_shape"} <= swept
    budgets = {(p.config.total_steps, p.config.batch_size, p.config.seq_len) for p in sw.points}
    assert len(budgets) == 1


def test_point_helpers_and_names():
    points = sweep.seeds(sweep.product(sweep.sweep("a.x", [1, 2]), sweep.zip_(sweep.sweep("b", ["u/v", "u_v"]),
                                                                               sweep.sweep("c", [0.5, 1.5]))), [0, 1])
    assert len(points) == 2 * 2 * 2
    assert points[0] == {"a.x": 1, "b": "u/v", "c": 0.5, "seed": 0}
    names = sweep.point_names(points)
    assert len(set(names)) == len(names) and all("/" not in n for n in names)
    assert names[0].startswith("a.x=1,b=u_v,c=0.5") and names[0].endswith(",seed=0")
    with pytest.raises(ValueError, match="different lengths"):
        sweep.zip_(sweep.sweep("a", [1]), sweep.sweep("b", [1, 2]))
    with pytest.raises(ValueError, match="set twice"):
        sweep.product(sweep.sweep("a", [1]), sweep.sweep("a", [2]))
    with pytest.raises(sweep.SweepError, match="repeats point 0"):
        sweep.point_names([{"a": 1}, {"a": 1}])


def test_provenance_outside_a_checkout_says_so(monkeypatch, tmp_path):
    import ml_collections

    monkeypatch.setattr(provenance_lib.config_lib, "REPO_ROOT", tmp_path)
    p = provenance_lib.provenance(ml_collections.ConfigDict({"seed": 3}), seed=3, data_hash="sha256:x",
                                  peers=("no-such-distribution",))
    assert p["git"]["commit"] is None and "not a git checkout" in p["git"]["note"]
    assert p["versions"]["no-such-distribution"] is None and p["config"] == {"seed": 3}


def test_a_point_directory_belongs_to_one_config(tmp_path):
    """A workdir left by another sweep (same point names, another base or fixed block) is refused by
    name of the differing field, never skipped to its result or resumed from its checkpoints."""
    import ml_collections

    config = ml_collections.ConfigDict({"seed": 0, "total_steps": 6, "model": {"mlp": "geglu"}})
    sweep.claim_point_dir(tmp_path, config)
    sweep.claim_point_dir(tmp_path, config)  # the same config again: its own directory
    other = ml_collections.ConfigDict({"seed": 0, "total_steps": 40, "model": {"mlp": "geglu"}})
    with pytest.raises(sweep.SweepError, match=r"another config \(fields \['total_steps'\]\)"):
        sweep.claim_point_dir(tmp_path, other)
    with pytest.raises(sweep.SweepError):
        sweep.run_point("pretrain", other, tmp_path)  # refused before any data is read or step run


def test_write_result_is_atomic_and_never_replaces_another_result(tmp_path):
    path = tmp_path / "result.json"
    provenance_lib.write_result(path, {"metrics": {"loss": 1.0}})
    provenance_lib.write_result(path, {"metrics": {"loss": 1.0}})  # the same result: a no-op
    with pytest.raises(FileExistsError, match="different result"):
        provenance_lib.write_result(path, {"metrics": {"loss": 2.0}})
    assert json.loads(path.read_text()) == {"metrics": {"loss": 1.0}}
    provenance_lib.write_result(path, {"metrics": {"loss": 2.0}}, overwrite=True)
    assert json.loads(path.read_text()) == {"metrics": {"loss": 2.0}}
    assert os.listdir(tmp_path) == ["result.json"]  # no temporary file left behind


def test_a_scripts_result_file_replaces_only_a_result_of_the_same_commit(monkeypatch, tmp_path):
    monkeypatch.setattr(provenance_lib, "_git_state", lambda: {"commit": "a" * 40, "dirty": False})
    path = tmp_path / "bench.json"
    path.write_text('{"tokens_per_s": 1.0}')  # recorded before results carried provenance
    with pytest.raises(FileExistsError, match="no provenance"):
        provenance_lib.ResultFile(path)
    written = provenance_lib.ResultFile(path, overwrite=True).write({"tokens_per_s": 2.0}, config={"repeats": 3},
                                                                    seed=0)
    assert json.loads(path.read_text()) == written
    assert written["provenance"]["config"] == {"repeats": 3}
    provenance_lib.ResultFile(path).write({"tokens_per_s": 3.0}, config={}, seed=0)  # same commit: re-measured
    assert json.loads(path.read_text())["tokens_per_s"] == 3.0
    monkeypatch.setattr(provenance_lib, "_git_state", lambda: {"commit": "b" * 40, "dirty": False})
    with pytest.raises(FileExistsError, match=f"result of commit {'a' * 40}"):
        provenance_lib.ResultFile(path)  # a later commit refuses it, before anything is measured


def test_data_hash_follows_content_not_location_or_order(tmp_path):
    data = tmp_path / "a"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "x.txt").write_text("one")
    (tmp_path / "tok.model").write_text("pieces")
    h = provenance_lib.data_hash([data, tmp_path / "tok.model"])
    assert h == provenance_lib.data_hash([tmp_path / "tok.model", data])
    shutil.copytree(data, tmp_path / "elsewhere" / "a")
    shutil.copy(tmp_path / "tok.model", tmp_path / "elsewhere")
    assert h == provenance_lib.data_hash([tmp_path / "elsewhere" / "a", tmp_path / "elsewhere" / "tok.model"])
    (data / "sub" / "x.txt").write_text("two")
    assert provenance_lib.data_hash([data, tmp_path / "tok.model"]) != h
    with pytest.raises(FileNotFoundError, match="does not exist"):
        provenance_lib.data_hash([tmp_path / "missing"])


def _fake_point(sw, point, workdir) -> list[str]:
    """Stands in for a point's process: both wait for each other (so they must run at once), then
    seed=0 writes a result and seed=1 fails."""
    here = os.path.join(os.path.abspath(workdir), point.name)
    other = os.path.join(os.path.abspath(workdir), "seed=1" if point.name == "seed=0" else "seed=0")
    finish = (f"open({os.path.join(here, sweep.RESULT)!r}, 'w').write('{{\"metrics\": {{\"eval.loss\": 1.5}}}}')"
              if point.name == "seed=0" else "print('boom'); sys.exit(3)")
    code = (f"import os, sys, time\nopen({os.path.join(here, 'started')!r}, 'w').close()\n"
            f"deadline = time.time() + 60\n"
            f"while not os.path.exists({os.path.join(other, 'started')!r}):\n"
            f"    assert time.time() < deadline, 'the other point never started'\n    time.sleep(0.01)\n{finish}\n")
    return [sys.executable, "-c", code]


def test_failed_point_is_reported_and_the_others_finish_with_workers_in_parallel(spec, tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "point_command", _fake_point)
    out = io.StringIO()
    assert sweep.main(spec, str(tmp_path), workers=2, timeout_s=120, out=out) == 1
    log = tmp_path / "seed=1" / sweep.LOG
    assert f"failed: seed=1 (exit 3), log: {log}" in out.getvalue()
    assert "boom" in log.read_text()
    with open(tmp_path / "table.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["seeds"], float(r["eval.loss_mean"])) for r in rows] == [("0", 1.5)]


_CURVE_SWEEP = '''
import ml_collections

from modernbert_jax import sweep


def get_config(arg=None):
    cfg = ml_collections.ConfigDict()
    cfg.base = "configs/pretrain.py:variant=tiny"
    cfg.entry = "pretrain"
    cfg.points = sweep.seeds(sweep.sweep("data.mask_rate", [0.15, 0.3]), [0, 1, 2])
    cfg.metrics = ("eval.loss",)
    cfg.figure = {"kind": "curve", "metric": "eval.loss", "x": "data.mask_rate"}
    return cfg
'''


def test_table_averages_over_seeds_and_draws_a_curve(tmp_path):
    (tmp_path / "curve.py").write_text(_CURVE_SWEEP)
    sw = sweep.load_sweep(str(tmp_path / "curve.py"))
    losses = {}
    for i, point in enumerate(sw.points[:-1]):  # the last point has not finished
        losses.setdefault(point.overrides["data.mask_rate"], []).append(2.0 + 0.1 * i * i)
        provenance_lib.write_result(tmp_path / point.name / sweep.RESULT, {"metrics": {"eval.loss": losses[
            point.overrides["data.mask_rate"]][-1]}})
    rows = sweep.write_tables(sw, tmp_path)
    assert [(r.overrides, r.seeds) for r in rows] == [({"data.mask_rate": 0.15}, [0, 1, 2]),
                                                      ({"data.mask_rate": 0.3}, [0, 1])]
    table = (tmp_path / "table.md").read_text()
    for rate, values in losses.items():
        assert f"| {rate} | {len(values)} | {statistics.fmean(values):.4g} ± {statistics.stdev(values):.2g} |" in table
    assert (tmp_path / "figure.png").stat().st_size > 1000


_LABELLED_SWEEP = '''
import ml_collections
from modernbert_jax import sweep

def get_config(arg=None):
    cfg = ml_collections.ConfigDict()
    cfg.base = "configs/pretrain.py:variant=tiny"
    cfg.entry = "pretrain"
    cfg.points = sweep.seeds([{"label": "recipe"}, {"label": "15% masking", "data.mask_rate": 0.15}], [0, 1])
    cfg.metrics = ("eval.loss", "eval.accuracy")
    cfg.figure = {"kind": "bar", "metric": ["eval.loss", "eval.accuracy"], "error": ["eval.accuracy", "eval.loss"]}
    return cfg
'''


def test_labels_name_rows_not_directories_and_bars_group_metrics(tmp_path):
    (tmp_path / "labelled.py").write_text(_LABELLED_SWEEP)
    sw = sweep.load_sweep(str(tmp_path / "labelled.py"))
    # A label is no config field: the directories are those of the same overrides without labels.
    assert [p.name for p in sw.points] == sweep.point_names([p.overrides for p in sw.points])
    assert [p.label for p in sw.points] == ["recipe", "recipe", "15% masking", "15% masking"]
    for point in sw.points:
        provenance_lib.write_result(tmp_path / point.name / sweep.RESULT,
                                    {"metrics": {"eval.loss": 2.0 + point.config.seed, "eval.accuracy": 0.5}})
    sweep.write_tables(sw, tmp_path)
    table = (tmp_path / "table.md").read_text()
    assert "| label | seeds | eval.loss | eval.accuracy |" in table and "| 15% masking | 2 | 2.5 ± 0.71 | 0.5 ± 0 |" in table
    assert "* **15% masking**: `data.mask_rate=0.15`" in table and "* **recipe**: the base config" in table
    assert next(csv.reader(open(tmp_path / "table.csv")))[:3] == ["label", "data.mask_rate", "seeds"]
    assert (tmp_path / "figure.png").stat().st_size > 1000
    bad = tmp_path / "bad.py"
    bad.write_text(_LABELLED_SWEEP.replace('"error": ["eval.accuracy", "eval.loss"]', '"error": ["eval.loss"]'))
    with pytest.raises(sweep.SweepError, match="one metric per figure.metric"):
        sweep.load_sweep(str(bad))


def test_provenance_names_the_commit_a_point_started_from(monkeypatch, tmp_path):
    """A checkout updated while a long point runs does not change the commit its result names."""
    states = iter([{"commit": "a" * 40, "dirty": False}, {"commit": "b" * 40, "dirty": False}])
    monkeypatch.setattr(provenance_lib, "_git_state", lambda: next(states))

    def run(config, workdir):
        provenance_lib._git_state()  # the checkout moves on to commit b mid-run
        return {"eval": {"loss": 1.0}}

    monkeypatch.setattr(sweep, "_resolve", lambda target: run if target.endswith(":train") else (lambda config: []))
    result = sweep.run_point("pretrain", ml_collections.ConfigDict({"seed": 0}), tmp_path)
    assert result["provenance"]["git"]["commit"] == "a" * 40 and result["metrics"]["eval.loss"] == 1.0
