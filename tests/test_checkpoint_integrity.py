"""Checkpoints are verified when read back: flipped bytes (same file size) or a truncated file in a
saved step are an error naming the step; with fallback the newest intact step comes back bit for
bit; the NaN guard names only a verified step; a finished run never re-exports ``hf/`` from a
checkpoint that failed verification.

The checkpointer is tested on the tiny train state of ``test_train``; the loop on copies of one
finished tiny run (with its ``hf/`` export).
"""

import logging
import os
import shutil

import jax
import numpy as np
import pytest
from test_train import TOTAL_STEPS, checkpoint_steps, compilation_cache, make_config, tokenizer, train_records  # noqa: F401

from modernbert_jax import model as model_lib
from modernbert_jax import sharding
from modernbert_jax.train import checkpoint as ckpt_lib
from modernbert_jax.train import loop, state as state_lib


def largest_data_file(step_dir: str) -> str:
    """The biggest array data file of a saved step (TensorStore's files under ``state/**/d/``)."""
    files = [os.path.join(root, name) for root, _, names in os.walk(os.path.join(step_dir, "state"))
             if os.path.basename(root) == "d" for name in names]
    return max(files, key=os.path.getsize)


def flip_bytes(path: str, count: int = 4) -> None:
    """Invert `count` bytes in the middle of the file; its size stays the same."""
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        middle = len(data) // 2
        for i in range(middle, middle + count):
            data[i] ^= 0xFF
        f.seek(0)
        f.write(data)


def truncate_half(path: str) -> None:
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def tree_bytes(tree) -> list[bytes]:
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


def snapshot(directory: str) -> dict[str, bytes]:
    """Every file under `directory` and its bytes."""
    out = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = f.read()
    return out


@pytest.fixture(scope="module")
def tiny_state():
    """A train state of the tiny model's shapes (test_train's sizes) and its abstract form, every
    array filled with distinct random values so that a wrong byte anywhere changes it."""
    cfg = make_config("")
    module = model_lib.MaskedLM(cfg.model)
    _, tx = loop.make_optimizer(cfg)
    mesh = sharding.make_mesh(cfg.mesh)
    rules = tuple(cfg.sharding_rules)
    with sharding.activate(mesh, rules):
        p_shard = sharding.param_shardings(module, mesh, rules, np.zeros((1, cfg.seq_len), np.int32))
        shardings = state_lib.state_shardings(module, tx, p_shard, mesh, cfg.seq_len)
        abstract = state_lib.abstract_state(module, tx, shardings, cfg.seq_len)
    rng = np.random.default_rng(0)
    state = jax.tree.map(lambda a: jax.device_put((rng.standard_normal(a.shape) * 100).astype(a.dtype), a.sharding),
                         abstract)
    return state, abstract


@pytest.fixture
def saved(tiny_state, tmp_path):
    """Steps 1, 2, 3 of distinct states under tmp_path/ckpt; returns (directory, {step: state})."""
    state, _ = tiny_state
    directory = str(tmp_path / "ckpt")
    states = {s: jax.tree.map(lambda x, s=s: x * (1 + s) if x.dtype.kind == "f" else x + s, state) for s in (1, 2, 3)}
    checkpointer = ckpt_lib.Checkpointer(directory, every=1, keep=5)
    try:
        for step, st in states.items():
            checkpointer.save(step, st, {"step": step, "tokens_seen": 100 * step})
        checkpointer.wait()
    finally:
        checkpointer.close()
    return directory, states


def test_flipped_bytes_in_the_latest_step_are_an_error_naming_it_and_the_intact_steps(saved, tiny_state):
    directory, _ = saved
    flip_bytes(largest_data_file(os.path.join(directory, "3")))
    before = snapshot(directory)
    checkpointer = ckpt_lib.Checkpointer(directory, every=1, keep=5)
    try:
        with pytest.raises(ckpt_lib.CheckpointError, match=r"checkpoint step 3 .* corrupt: .* differs from what was saved"):
            checkpointer.restore(3, tiny_state[1])
        with pytest.raises(ckpt_lib.CheckpointError) as err:
            checkpointer.restore_latest(tiny_state[1], fallback=False)
    finally:
        checkpointer.close()
    assert "step 3" in str(err.value) and "intact steps (read back and verified): [1, 2]" in str(err.value)
    assert snapshot(directory) == before  # the corrupt step is left as it was, nothing else written


def test_fallback_restores_the_newest_intact_step_bit_identically(saved, tiny_state):
    directory, states = saved
    flip_bytes(largest_data_file(os.path.join(directory, "3")))
    checkpointer = ckpt_lib.Checkpointer(directory, every=1, keep=5)
    try:
        restored = checkpointer.restore_latest(tiny_state[1], fallback=True)
    finally:
        checkpointer.close()
    assert restored.step == 2 and list(restored.skipped) == [3]
    assert restored.progress == {"step": 2, "tokens_seen": 200}
    assert tree_bytes(restored.state) == tree_bytes(states[2])


def test_a_truncated_file_names_the_step_directory_and_the_array(saved, tiny_state):
    directory, _ = saved
    truncate_half(largest_data_file(os.path.join(directory, "3")))
    checkpointer = ckpt_lib.Checkpointer(directory, every=1, keep=5)
    try:
        with pytest.raises(ckpt_lib.CheckpointError) as err:
            checkpointer.restore(3, tiny_state[1])
    finally:
        checkpointer.close()
    headline = str(err.value).splitlines()[0]  # what a user reads first, not a TensorStore spec dump
    assert "checkpoint step 3" in headline and os.path.join(directory, "3") in headline
    assert 'Error reading "' in headline, headline  # TensorStore's own message: which array it could not read


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tokenizer):  # noqa: F811
    """Workdir of a finished tiny run with its hf/ export (checkpoints at 2, 4, 6; no evaluation, which
    only costs a compilation here)."""
    workdir = str(tmp_path_factory.mktemp("finished"))
    loop.train(make_config(tokenizer, export_hf=True, eval_every=0), workdir)
    return workdir


def copy_with_corrupt_latest(finished, tmp_path) -> str:
    workdir = str(tmp_path / "run")
    shutil.copytree(finished, workdir)
    flip_bytes(largest_data_file(os.path.join(workdir, "checkpoints", str(TOTAL_STEPS))))
    return workdir


def test_a_finished_run_never_reexports_hf_from_a_corrupt_checkpoint(finished, tokenizer, tmp_path):  # noqa: F811
    workdir = copy_with_corrupt_latest(finished, tmp_path)
    before = snapshot(workdir)
    with pytest.raises(ckpt_lib.CheckpointError, match=rf"checkpoint step {TOTAL_STEPS} .* corrupt.*"
                                                        r"intact steps \(read back and verified\): \[2, 4\]"):
        loop.train(make_config(tokenizer, export_hf=True, eval_every=0), workdir)
    after = snapshot(workdir)
    assert {k: v for k, v in after.items() if k.startswith("hf")} == {k: v for k, v in before.items() if k.startswith("hf")}
    assert {k for k in after if k.startswith("checkpoints")} == {k for k in before if k.startswith("checkpoints")}


def test_fallback_resumes_from_the_newest_intact_step_and_keeps_the_corrupt_one(finished, tokenizer, tmp_path, caplog):  # noqa: F811
    workdir = copy_with_corrupt_latest(finished, tmp_path)
    ckpts = os.path.join(workdir, "checkpoints")
    corrupt = snapshot(os.path.join(ckpts, str(TOTAL_STEPS)))
    with caplog.at_level(logging.WARNING):
        loop.train(make_config(tokenizer, export_hf=True, eval_every=0, restore_fallback=True), workdir)
    assert f"SKIPPED corrupt checkpoint step {TOTAL_STEPS}" in caplog.text
    # The corrupt step is kept, byte for byte, beside the steps this run saved again from step 4.
    assert snapshot(os.path.join(ckpts, f"{TOTAL_STEPS}.corrupt")) == corrupt
    assert checkpoint_steps(ckpts) == [2, 4, 6]
    got = train_records(workdir)
    assert got == train_records(finished)  # steps 5 and 6 retrained exactly as the uninterrupted run did


def test_nan_guard_names_a_verified_checkpoint_not_a_corrupt_one(finished, tokenizer, tmp_path):  # noqa: F811
    workdir = copy_with_corrupt_latest(finished, tmp_path)
    # Resume (past the corrupt step 6) with a learning rate whose first update overflows: step 5 is non-finite.
    cfg = make_config(tokenizer, total_steps=10, eval_every=0, restore_fallback=True, **{"optimizer.peak_lr": 1e38})
    with pytest.raises(loop.NonFiniteLossError,
                       match=r"at step 5\b.*Newest intact checkpoint \(read back and verified\) in .*: step 4$"):
        loop.train(cfg, workdir)
