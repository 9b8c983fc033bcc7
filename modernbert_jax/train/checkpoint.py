"""Checkpoints of a training run with Orbax's `CheckpointManager`, verified when read back.

One checkpoint per saved step holds three items:

* ``state`` — the train state (params, optimiser state, step) as sharded arrays; restoring takes
  the *target* shardings, so a run can resume on a different mesh or device count;
* ``progress`` — JSON: the step, tokens seen and the input pipeline's state, so a resumed run
  sees exactly the batches it would have seen;
* ``integrity`` — JSON: a fingerprint of every array of ``state`` (with its dtype and shape) and a
  digest of ``progress``, computed from what was saved.

Orbax checks neither the bytes of an array nor the JSON it reads back (TensorStore checksums only
its shard index), so a flipped byte in a data file restores silently wrong values. Every restore
therefore recomputes the fingerprints and compares: a mismatch raises `CheckpointError` naming the
step and the arrays that differ. A fingerprint is two sums mod 2^32 of the array's bits as uint32
words, each word weighted by an odd multiplier hashed from its flat index: uint32 arithmetic wraps
exactly, so the value does not depend on the reduction order, the sharding or the device count (a
run resumed on another mesh verifies too), and a single flipped bit always changes both sums
(odd * 2^k is never 0 mod 2^32). It is computed on device, where the arrays already are.

Orbax writes each step into a temporary directory and renames it on finalize, so an interrupted
save never becomes the latest checkpoint (`latest_step` only lists finalized steps); leftover
temporary directories are deleted by the next run (in the background, finished before its first save). A checkpoint
that exists but cannot be read or fails verification raises `CheckpointError` naming the step and
its directory, and nothing is written or deleted. `restore_latest` stops there and names the
intact steps (each read back and verified), or with ``fallback`` restores the newest intact one;
`set_aside` moves a corrupt step out of the way (renamed, never deleted) so it can be saved again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from jax import lax

log = logging.getLogger(__name__)

INTEGRITY_FORMAT = 1  # version of the integrity record's layout
_SHOWN = 3  # mismatching arrays named in an error


class CheckpointError(RuntimeError):
    """A checkpoint that should exist is missing, unreadable, or not what was saved."""


class Restored(NamedTuple):
    """What `Checkpointer.restore_latest` read back: the step, its state and progress, and the newer
    steps it skipped because they failed verification (step -> why)."""

    step: int
    state: Any
    progress: dict
    skipped: dict[int, str]


def _mix(x: jax.Array) -> jax.Array:
    # murmur3's 32-bit finaliser: a bijection, so neighbouring indices get unrelated multipliers.
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def _words(x: jax.Array) -> jax.Array:
    """The array's bit pattern as uint32 words: narrower types widened, wider ones split."""
    if x.dtype == jnp.bool_:
        return x.astype(jnp.uint32)
    bits = jnp.dtype(x.dtype).itemsize * 8
    if bits >= 32:  # 64-bit types gain a trailing axis of two words
        return lax.bitcast_convert_type(x, jnp.uint32)
    return lax.bitcast_convert_type(x, jnp.dtype(f"uint{bits}")).astype(jnp.uint32)


def _fingerprint(x: jax.Array) -> jax.Array:
    """uint32[2]: sum(word_i * m(i)) mod 2^32 for two independent odd multiplier hashes m."""
    words = _words(x)
    index = jnp.zeros(words.shape, jnp.uint32)
    stride = 1
    for axis in reversed(range(words.ndim)):  # row-major flat index, wrapping like the sums
        index = index + lax.broadcasted_iota(jnp.uint32, words.shape, axis) * jnp.uint32(stride % 2**32)
        stride *= words.shape[axis]
    sums = [jnp.sum(words * (_mix(index ^ jnp.uint32(salt)) | jnp.uint32(1)), dtype=jnp.uint32)
            for salt in (0, 0x9E3779B9)]
    return jnp.stack(sums)


_fingerprints = jax.jit(lambda tree: jax.tree.map(_fingerprint, tree))


def _digest(progress: dict) -> str:
    return hashlib.sha256(json.dumps(progress, sort_keys=True).encode()).hexdigest()


def _integrity_record(state: Any, progress: dict) -> dict:
    """The fingerprint, dtype and shape of every array of `state` and a digest of `progress`."""
    leaves = jax.tree_util.tree_leaves_with_path(state)
    prints = jax.device_get(_fingerprints([x for _, x in leaves]))
    arrays = {
        jax.tree_util.keystr(path): {"fingerprint": [int(v) for v in fp], "dtype": str(x.dtype), "shape": list(x.shape)}
        for (path, x), fp in zip(leaves, prints)
    }
    return {"format": INTEGRITY_FORMAT, "arrays": arrays, "progress_sha256": _digest(progress)}


def _mismatches(record: dict, state: Any, progress: dict) -> list[str]:
    """What differs between a restored `state`/`progress` and the record made when they were saved."""
    saved = record.get("arrays", {})
    leaves = jax.tree_util.tree_leaves_with_path(state)
    names = [jax.tree_util.keystr(path) for path, _ in leaves]
    prints = jax.device_get(_fingerprints([x for _, x in leaves]))
    problems = [f"{name} was saved but this model has no such array" for name in sorted(set(saved) - set(names))]
    for name, (_, x), fp in zip(names, leaves, prints):
        want = saved.get(name)
        if want is None:
            problems.append(f"{name} is not in the integrity record")
        elif (want["dtype"], want["shape"]) != (str(x.dtype), list(x.shape)):
            problems.append(f"{name} was saved as {want['dtype']}{want['shape']}, this model has "
                            f"{x.dtype}{list(x.shape)}")
        elif [int(v) for v in fp] != want["fingerprint"]:
            problems.append(f"{name} differs from what was saved")
    if record.get("progress_sha256") != _digest(progress):
        problems.append("the progress record differs from what was saved")
    return problems


def _root_cause(err: BaseException) -> str:
    """The innermost error's message: TensorStore's names the array and file, the outer ones dump specs."""
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text[:500]}"


class Checkpointer:
    """Save every `every` steps and keep the `keep` most recent, under `directory`."""

    ITEMS = ("state", "progress", "integrity")

    def __init__(self, directory: str, *, every: int, keep: int, async_save: bool = True):
        if every <= 0 or keep <= 0:
            raise ValueError(f"Checkpointer: every={every} and keep={keep} must be positive")
        self.directory = os.path.abspath(directory)
        self.every = every
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            create=True,
            # A save killed before its finalize leaves `<step>.orbax-checkpoint-tmp*`; remove it
            # (before our first save) so the step can be saved again. Finalized steps are never touched.
            cleanup_tmp_directories=True,
            enable_async_checkpointing=async_save,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=self.ITEMS)

    def latest_step(self) -> int | None:
        """The newest *finalized* step (temporary, half-written directories are not steps)."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def step_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def save(self, step: int, state: Any, progress: dict, *, force: bool = False) -> bool:
        """Save if `step` is a multiple of `every` (or `force`); returns whether a save started.

        The integrity record is computed from `state` here, before the (asynchronous) write.
        """
        if step % self.every and not force:
            return False
        record = _integrity_record(state, progress)
        # The decision is ours: Orbax's own interval policy would also save the first step it sees.
        return self._manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), progress=ocp.args.JsonSave(progress),
                                    integrity=ocp.args.JsonSave(record)),
            force=True,
        )

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
        """Restore `step` onto the shardings in `abstract_state` (a pytree of ShapeDtypeStruct) and
        verify it against its integrity record.

        Raises CheckpointError if the step is not there, its files cannot be read, or what was
        read differs from what was saved. A step written before integrity records existed is
        restored with a warning that it could not be verified.
        """
        if step not in self._manager.all_steps():
            raise CheckpointError(f"no checkpoint for step {step} in {self.directory} (have {self.all_steps()})")
        try:
            return self._read(step, abstract_state)
        except CheckpointError as err:
            others = [s for s in self.all_steps() if s != step]
            raise CheckpointError(f"{err}; other steps (not verified): {others}") from err.__cause__

    def _read(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
        """`restore` of a step that exists, its errors without the list of other steps."""
        where = self.step_dir(step)
        verifiable = os.path.isdir(os.path.join(where, "integrity"))
        items = {"state": ocp.args.StandardRestore(abstract_state), "progress": ocp.args.JsonRestore()}
        if verifiable:
            items["integrity"] = ocp.args.JsonRestore()
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as err:  # Orbax/TensorStore raise many types; the caller needs one clear one.
            raise CheckpointError(
                f"checkpoint step {step} ({where}) is corrupt or incompatible with this model: it cannot be "
                f"read ({_root_cause(err)}). It was left untouched"
            ) from err
        progress = restored["progress"]
        if progress is None or progress.get("step") != step:
            raise CheckpointError(f"checkpoint step {step} ({where}) has no valid progress record")
        if not verifiable:
            log.warning("checkpoint step %d (%s) has no integrity record (written by an older version): "
                        "restored without verification", step, where)
            return restored["state"], progress
        problems = _mismatches(restored["integrity"] or {}, restored["state"], progress)
        if problems:
            raise CheckpointError(
                f"checkpoint step {step} ({where}) is corrupt: {len(problems)} check(s) failed against the "
                f"integrity record written with it: {'; '.join(problems[:_SHOWN])}"
                f"{'; ...' if len(problems) > _SHOWN else ''}. It was left untouched"
            )
        return restored["state"], progress

    def verify(self, step: int, abstract_state: Any) -> str | None:
        """None if `step` reads back as it was saved, else why not (the restored copy is discarded)."""
        try:
            self._read(step, abstract_state)
        except CheckpointError as err:
            return str(err)
        return None

    def newest_intact(self, abstract_state: Any) -> int | None:
        """The newest step that reads back as it was saved (each candidate is read in full)."""
        return next((s for s in reversed(self.all_steps()) if self.verify(s, abstract_state) is None), None)

    def restore_latest(self, abstract_state: Any, *, fallback: bool,
                       fallback_option: str = "fallback=True") -> Restored | None:
        """Restore the newest step, verified; None if there is none.

        If it is corrupt: without `fallback`, raise CheckpointError naming it, the intact steps
        (each read back and verified) and `fallback_option`, the switch that resumes from the
        newest of them; with `fallback`, restore the newest intact step instead and return the
        skipped ones. Nothing is moved or deleted here (see `set_aside`).
        """
        steps = self.all_steps()
        skipped: dict[int, str] = {}
        for step in reversed(steps):
            try:
                state, progress = self._read(step, abstract_state)
            except CheckpointError as err:
                if not fallback:
                    intact = [s for s in steps if s != step and self.verify(s, abstract_state) is None]
                    advice = f"; set {fallback_option} to resume from step {intact[-1]}" if intact else ""
                    raise CheckpointError(
                        f"{err}; intact steps (read back and verified): {intact or 'none'}{advice}") from err.__cause__
                skipped[step] = str(err)
                continue
            return Restored(step, state, progress, skipped)
        if skipped:
            raise CheckpointError(f"no intact checkpoint in {self.directory}: " + " | ".join(skipped.values()))
        return None

    def set_aside(self, step: int) -> str:
        """Rename a (corrupt) step to ``<step>.corrupt`` — kept for inspection, never deleted — so
        that the step can be saved again; returns its new path."""
        from jax.experimental import multihost_utils

        source = self.step_dir(step)
        target, n = f"{source}.corrupt", 1
        while os.path.exists(target):
            n += 1
            target = f"{source}.corrupt{n}"
        multihost_utils.sync_global_devices(f"checkpoint set_aside {step} start")  # every process saw it first
        if jax.process_index() == 0:
            os.rename(source, target)
        multihost_utils.sync_global_devices(f"checkpoint set_aside {step} done")
        self._manager.reload()
        return target

    def wait(self) -> None:
        """Block until an asynchronous save has been finalized."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
