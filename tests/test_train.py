"""Pretraining loop on a tiny model and real text (the Python standard library's sources).

One uninterrupted 1-device run is the reference; the other runs must reproduce it: a run killed
with SIGKILL and resumed (bit-identical), the same run resumed onto an 8-device mesh and run by
two processes over loopback (within float tolerance). Checkpoint failure modes and the NaN guard
are checked on copies of the reference's workdir.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from modernbert_jax.config import load_config
from modernbert_jax.train import checkpoint as ckpt_lib
from modernbert_jax.train import loop
from modernbert_jax.train.metrics import read_jsonl

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STDLIB = os.path.dirname(os.path.dirname(json.__file__))  # the running Python's standard library
TOTAL_STEPS = 6
DETERMINISTIC = ("loss", "accuracy", "grad_norm", "learning_rate", "batch_rows", "tokens_seen")


def overrides(tokenizer: str) -> dict:
    """The tiny run every test shares: 2 layers, hidden 64, vocab 512, T=64, batch 8 -> 16 rows."""
    return {
        "model.num_layers": 2, "model.hidden_size": 64, "model.num_heads": 2, "model.intermediate_size": 128,
        "model.vocab_size": 512, "model.local_attention": 16,
        "data.files": f"{STDLIB}/json/*.py,{STDLIB}/email/*.py,{STDLIB}/http/*.py",
        "data.validation_fraction": 0.2, "data.vocab_size": 512, "data.tokenizer": tokenizer,
        "seq_len": 64, "micro_batch_size": 8, "batch_size": 16,
        # 8 rows for three steps, then two micro-batches of 8: exercises gradient accumulation.
        "batch_warmup_start": 8, "batch_warmup_tokens": 3 * 8 * 64,
        "total_steps": TOTAL_STEPS, "optimizer.warmup_steps": 2, "optimizer.peak_lr": 3e-3,
        "log_every": 1, "eval_every": TOTAL_STEPS, "eval_batch_size": 8, "eval_batches": 2,
        "checkpoint_every": 2, "keep_checkpoints": 3, "export_hf": False, "progress_bar": False,
    }


def make_config(tokenizer: str, **extra):
    cfg = load_config("configs/pretrain.py:variant=tiny")
    for key, value in {**overrides(tokenizer), **extra}.items():
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        node[leaf] = value
    return cfg


def flags(tokenizer: str, **extra) -> list[str]:
    return [f"--config.{k}={v}" for k, v in {**overrides(tokenizer), **extra}.items()]


def train_records(workdir: str) -> dict[int, dict]:
    """Last train record per step (a resumed run rewrites the steps after its checkpoint)."""
    out = {}
    for r in read_jsonl(os.path.join(workdir, "metrics.jsonl")):
        if r["split"] == "train":
            out[r["step"]] = {k: r[k] for k in DETERMINISTIC}
    return out


def checkpoint_steps(directory: str) -> list[int]:
    checkpointer = ckpt_lib.Checkpointer(directory, every=2, keep=3)
    try:
        return checkpointer.all_steps()
    finally:
        checkpointer.close()


def _env(devices: int = 1) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO, **_CACHE_ENV)
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    else:  # same flags as this process, so the compilation cache is shared with it
        env.pop("XLA_FLAGS", None)
    return env


def _pretrain_cmd(tokenizer: str, workdir: str, *extra_flags: str, **extra) -> list[str]:
    return [sys.executable, "-m", "experiments.pretrain",
            "--config=" + os.path.join(REPO, "configs", "pretrain.py") + ":variant=tiny",
            f"--workdir={workdir}", *flags(tokenizer, **{"eval_every": 0, **extra}), *extra_flags]


# Runs of the same program (reference, killed, resumed) compile once: XLA's persistent cache.
_CACHE_ENV = {
    "JAX_COMPILATION_CACHE_DIR": os.path.join(os.environ.get("TMPDIR", "/tmp"), "modernbert_jax_test_xla_cache"),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}


@pytest.fixture(scope="module", autouse=True)
def compilation_cache():
    keys = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
            "jax_persistent_cache_min_entry_size_bytes")
    before = {k: getattr(jax.config, k) for k in keys}
    for k, v in zip(keys, _CACHE_ENV.values()):
        jax.config.update(k, v if k == "jax_compilation_cache_dir" else float(v) if "secs" in k else int(v))
    yield
    for k, v in before.items():
        jax.config.update(k, v)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> str:
    """A 512-piece tokenizer trained once on the runs' training files."""
    from modernbert_jax.train import inputs

    path = str(tmp_path_factory.mktemp("tok") / "tokenizer.model")
    inputs.pretraining_data(make_config(path).data)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tokenizer) -> str:
    """Workdir of the uninterrupted 1-device run."""
    workdir = str(tmp_path_factory.mktemp("reference"))
    summary = loop.train(make_config(tokenizer), workdir)
    assert summary["step"] == TOTAL_STEPS
    return workdir


def test_reference_run_logs_checkpoints_and_evaluates(reference):
    records = train_records(reference)
    assert sorted(records) == list(range(1, TOTAL_STEPS + 1))
    assert [records[s]["batch_rows"] for s in range(1, 7)] == [8, 8, 8, 16, 16, 16]
    lines = read_jsonl(os.path.join(reference, "metrics.jsonl"))
    evals = [r for r in lines if r["split"] == "eval"]
    assert len(evals) == 1 and 0.0 <= evals[0]["accuracy"] <= 1.0 and np.isfinite(evals[0]["loss"])
    assert any(r.get("packing_efficiency", 0) > 0.9 for r in lines)
    assert os.listdir(os.path.join(reference, "tensorboard"))
    # keep_checkpoints=3 of the saves at 2, 4, 6.
    assert checkpoint_steps(os.path.join(reference, "checkpoints")) == [2, 4, 6]


def test_loss_decreases_on_a_small_batch(tokenizer):
    """Twenty steps on one fixed batch must fit it: the loss falls well below its start."""
    from modernbert_jax import model as model_lib
    from modernbert_jax import sharding
    from modernbert_jax.train import inputs, state as state_lib, step as step_lib

    cfg = make_config(tokenizer, total_steps=20)
    mesh = sharding.make_mesh(cfg.mesh)
    rules = tuple(cfg.sharding_rules)
    module = model_lib.MaskedLM(cfg.model)
    schedule, tx = loop.make_optimizer(cfg)
    data = inputs.pretraining_data(cfg.data)
    pipeline = inputs.make_pipeline(cfg.data, data.train, data.tokenizer, batch_size=8, seq_len=64, seed=0, train=True)
    batch = {k: v[None] for k, v in pipeline.next_batch().items()}
    with sharding.activate(mesh, rules):
        p_shard = sharding.param_shardings(module, mesh, rules, np.zeros((1, 64), np.int32))
        shardings = state_lib.state_shardings(module, tx, p_shard, mesh, 64)
        state = state_lib.init_state(module, tx, jax.random.key(0), shardings, 64)
        step = jax.jit(step_lib.make_train_step(module, tx, schedule, seed=0, use_dropout=False))
        losses = []
        for _ in range(20):
            state, m = step(state, batch)
            losses.append(float(m["loss"]))
    assert losses[-1] < 0.6 * losses[0], losses


def test_kill_and_resume_is_bit_identical(reference, tokenizer, tmp_path):
    """SIGKILL a run mid-way as soon as its step-2 checkpoint exists, resume it in-process: the
    same metrics as the uninterrupted reference, bit for bit.

    The child is configured for far more steps than the comparison needs (warmup then constant
    LR, so the first steps do not depend on the run length): it is still running when the kill
    lands. The resumed run stops at TOTAL_STEPS like the reference.
    """
    workdir = str(tmp_path / "killed")
    child_steps = 1000
    ckpts = os.path.join(workdir, "checkpoints")
    # stderr goes to a file: a pipe nobody reads could fill up and stall the child.
    with open(tmp_path / "child.stderr", "w+b") as err:
        proc = subprocess.Popen(_pretrain_cmd(tokenizer, workdir, total_steps=child_steps), env=_env(),
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline, saved_2 = time.monotonic() + 240, False
            while not saved_2 and proc.poll() is None and time.monotonic() < deadline:
                saved_2 = os.path.isdir(ckpts) and "2" in os.listdir(ckpts)  # finalized: renamed from its tmp dir
                time.sleep(0.02)
            proc.kill()  # a no-op on a process that already exited: its return code shows it
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        err.seek(0)
        log = err.read().decode(errors="replace")[-3000:]
    assert proc.returncode == -signal.SIGKILL, f"the child was not killed mid-run (rc={proc.returncode}):\n{log}"
    assert saved_2, f"no step-2 checkpoint within the time limit:\n{log}"
    saved, logged = checkpoint_steps(ckpts), train_records(workdir)
    assert max(saved) < child_steps and max(logged) < child_steps, "the child reached the end of its run"
    latest = max(saved)
    assert latest < TOTAL_STEPS, f"the kill landed after the step-{latest} checkpoint: nothing left to resume"

    with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
        lines_before = sum(1 for line in f if line.strip())
    loop.train(make_config(tokenizer), workdir)
    resumed = [r["step"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))[lines_before:]
               if r["split"] == "train"]
    assert resumed == list(range(latest + 1, TOTAL_STEPS + 1)), "the run did not resume from its latest checkpoint"
    # Steps the child logged past TOTAL_STEPS before dying belong to its longer run, not the comparison.
    got = {s: r for s, r in train_records(workdir).items() if s <= TOTAL_STEPS}
    assert got == train_records(reference)


def test_resume_onto_8_device_mesh_matches_1_device(reference, tokenizer, tmp_path):
    """Restore the 1-device step-4 checkpoint on 8 devices (data=4, tensor=2) and finish the run.

    Steps 5 and 6 take two micro-batches each, so the sharded gradient accumulation is covered.
    """
    workdir = tmp_path / "eight"
    shutil.copytree(os.path.join(reference, "checkpoints"), workdir / "checkpoints",
                    ignore=lambda d, names: [n for n in names if d.endswith("checkpoints") and n in ("6",)])
    cmd = _pretrain_cmd(tokenizer, str(workdir), "--config.mesh.data=4", "--config.mesh.tensor=2")
    out = subprocess.run(cmd, env=_env(devices=8), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "devices: 8" in out.stdout
    got, want = train_records(str(workdir)), train_records(reference)
    assert sorted(got) == [5, 6]
    for s in got:
        np.testing.assert_allclose(got[s]["loss"], want[s]["loss"], rtol=2e-4, err_msg=f"step {s}")
        np.testing.assert_allclose(got[s]["grad_norm"], want[s]["grad_norm"], rtol=2e-3, err_msg=f"step {s}")


def test_two_processes_over_loopback_match_one_process(reference, tokenizer, tmp_path):
    """Each process holds half of every batch; three steps (the schedule does not depend on the
    run length here) must give the reference's losses."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = str(tmp_path / "two")
    procs = [
        subprocess.Popen(
            _pretrain_cmd(tokenizer, workdir, f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                          f"--process_id={i}", total_steps=3, export_hf=True),
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:  # a hung collective must not outlive the test
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=60)
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "processes: 2" in outs[0][0]
    assert os.path.isfile(os.path.join(workdir, "hf", "model.safetensors"))  # gathered from both processes
    got, want = train_records(workdir), train_records(reference)
    assert sorted(got) == [1, 2, 3]
    for s in got:
        np.testing.assert_allclose(got[s]["loss"], want[s]["loss"], rtol=1e-5, err_msg=f"step {s}")


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(reference, tokenizer, tmp_path):
    workdir = str(tmp_path / "nan")
    shutil.copytree(reference, workdir)
    # Continue the finished run with a learning rate whose first update overflows: it is non-finite.
    cfg = make_config(tokenizer, total_steps=10, **{"optimizer.peak_lr": 1e38})
    with pytest.raises(loop.NonFiniteLossError, match=r"at step 7\b.*Newest intact checkpoint .*: step 6$"):
        loop.train(cfg, workdir)
    assert checkpoint_steps(os.path.join(workdir, "checkpoints"))[-1] == 6


def test_corrupt_or_missing_checkpoint_is_a_clear_error_and_nothing_is_overwritten(reference, tokenizer, tmp_path):
    workdir = tmp_path / "corrupt"
    shutil.copytree(reference, workdir)
    ckpts = workdir / "checkpoints"
    # A save killed before Orbax's finalize leaves a temporary directory: never the latest.
    (ckpts / "8.orbax-checkpoint-tmp").mkdir()
    (ckpts / "8.orbax-checkpoint-tmp" / "partial").write_bytes(b"half a checkpoint")
    assert checkpoint_steps(str(ckpts))[-1] == 6
    shutil.rmtree(ckpts / "8.orbax-checkpoint-tmp", ignore_errors=True)  # (Orbax may clean it up itself)
    # Corrupt every array file of the latest step.
    for root, _, files in os.walk(ckpts / "6" / "state"):
        for name in files:
            if "manifest" in name or name.endswith(".zarray") or "d" == os.path.basename(root):
                with open(os.path.join(root, name), "wb") as f:
                    f.write(b"garbage")
    before = sorted(os.listdir(ckpts))
    with pytest.raises(ckpt_lib.CheckpointError, match=r"checkpoint step 6 .* corrupt"):
        loop.train(make_config(tokenizer, total_steps=8), str(workdir))
    assert sorted(os.listdir(ckpts)) == before  # nothing deleted, nothing new written

    with pytest.raises(ckpt_lib.CheckpointError, match="no checkpoints directory"):
        loop.train(make_config(tokenizer, init_from=str(tmp_path / "nowhere")), str(tmp_path / "fresh"))


def test_next_phase_starts_from_previous_phase_weights(reference, tokenizer, tmp_path):
    """`init_from` takes the previous run's final weights; step count and optimiser start over."""
    workdir = str(tmp_path / "phase2")
    cfg = make_config(tokenizer, total_steps=1, init_from=reference, **{"optimizer.warmup_steps": 0})
    summary = loop.train(cfg, workdir)
    assert summary["step"] == 1
    fresh, trained = train_records(reference)[1]["loss"], train_records(workdir)[1]["loss"]
    assert trained < fresh - 0.3, (trained, fresh)


def test_finished_workdir_is_a_backbone_for_gliner_and_setfit(reference, tokenizer, tmp_path):
    """A pretraining workdir (its hf/ export) loads straight into GLiNER and SetFit, also when it ran as
    a sweep point (beside its own config.json); an unfinished one is named as such."""
    from gliner_jax import GLiNER, GLiNERConfig
    from modernbert_jax import hf, sweep
    from setfit_jax import SetFitModel

    with pytest.raises(FileNotFoundError, match="has not finished"):
        hf.resolve_dir(reference)  # checkpoints, but export_hf=False
    workdir = str(tmp_path / "run")
    sweep.run_point("pretrain", make_config(tokenizer, total_steps=2, export_hf=True), workdir)
    assert os.path.exists(os.path.join(workdir, sweep.CONFIG)) and hf.resolve_dir(workdir).name == "hf"
    gliner = GLiNER.from_backbone(workdir, GLiNERConfig(hidden_size=32, max_width=4, dropout=0.0), seed=0)
    text = "json.dumps raises TypeError."
    entities = gliner.predict_entities(text, ["function", "exception"], threshold=0.0)
    assert entities and all(text[e["start"]:e["end"]] == e["text"] for e in entities)
    setfit = SetFitModel.from_pretrained(workdir)
    emb = setfit.encode(["def f(): pass", "import os"])
    assert emb.shape == (2, 64) and np.isfinite(emb).all()


def test_adamw_ablation_trains_and_resumes(tokenizer, tmp_path):
    """The optimiser state of optax's AdamW (nested, masked) is laid out, checkpointed and restored too."""
    cfg = make_config(tokenizer, total_steps=3, checkpoint_every=2, eval_every=0, **{"optimizer.name": "adamw"})
    summary = loop.train(cfg, str(tmp_path))
    assert summary["step"] == 3 and np.isfinite(summary["train"]["loss"])
    shutil.rmtree(tmp_path / "checkpoints" / "3")  # resume from step 2
    assert loop.train(cfg, str(tmp_path))["train"]["loss"] == summary["train"]["loss"]


def test_adamw_ablation_decays_as_stable_adamw_and_differs_only_in_update_clipping(tokenizer):
    """optimizer.name=adamw: on a zero gradient (pure weight decay) both optimisers shrink the weights
    by the same amount; on a large gradient StableAdamW clips its update and AdamW does not."""
    import jax.numpy as jnp

    params = {"kernel": jnp.full((4, 4), 2.0)}
    updates = {}
    for name in ("stable_adamw", "adamw"):
        decay, plain = (loop.make_optimizer(make_config(tokenizer, **{
            "optimizer.name": name, "optimizer.weight_decay": wd, "optimizer.warmup_steps": 0}))[1]
            for wd in (0.1, 0.0))
        zero, _ = decay.update({"kernel": jnp.zeros((4, 4))}, decay.init(params), params)
        # Quiet steps, then a gradient 10^4 times larger: its RMS over the second moment is large.
        state = plain.init(params)
        for _ in range(50):
            _, state = plain.update({"kernel": jnp.full((4, 4), 1e-4)}, state, params)
        big, _ = plain.update({"kernel": jnp.ones((4, 4))}, state, params)
        updates[name] = (zero["kernel"], big["kernel"])
    np.testing.assert_allclose(updates["adamw"][0], updates["stable_adamw"][0], rtol=1e-6)
    assert float(jnp.abs(updates["adamw"][1]).max()) > 3 * float(jnp.abs(updates["stable_adamw"][1]).max())
    with pytest.raises(ValueError, match="optimizer.name='sgd'"):
        loop.make_optimizer(make_config(tokenizer, **{"optimizer.name": "sgd"}))


def test_rerun_of_a_finished_run_reports_its_final_metrics(reference, tokenizer, tmp_path):
    """A run killed after its last checkpoint (before its caller wrote a result) is finished on rerun:
    the summary carries the final train and eval metrics it logged, not empty dicts."""
    workdir = str(tmp_path / "run")
    shutil.copytree(reference, workdir)
    summary = loop.train(make_config(tokenizer), workdir)
    lines = read_jsonl(os.path.join(reference, "metrics.jsonl"))
    final_eval = [r for r in lines if r["split"] == "eval"][-1]
    final_train = [r for r in lines if r["split"] == "train"][-1]
    assert summary["eval"]["loss"] == final_eval["loss"] and summary["eval"]["accuracy"] == final_eval["accuracy"]
    assert summary["train"]["loss"] == final_train["loss"]
    assert len(read_jsonl(os.path.join(workdir, "metrics.jsonl"))) == len(lines)  # nothing retrained or relogged
