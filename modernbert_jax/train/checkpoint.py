"""Checkpoints of a pretraining run with Orbax's `CheckpointManager`.

One checkpoint per saved step holds two items:

* ``state`` — the `TrainState` (params, optimiser state, step) as sharded arrays; restoring takes
  the *target* shardings, so a run can resume on a different mesh or device count;
* ``progress`` — JSON: the step, tokens seen and the input pipeline's state, so a resumed run
  sees exactly the batches it would have seen.

Orbax writes each step into a temporary directory and renames it on finalize, so an interrupted
save never becomes the latest checkpoint (`latest_step` only lists finalized steps); leftover
temporary directories are deleted by the next run (in the background, finished before its first save). A checkpoint
that exists but cannot be read raises `CheckpointError` naming the step and directory, and
nothing is written or deleted: the earlier good checkpoints stay where they are.
"""

from __future__ import annotations

import os
from typing import Any

import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    """A checkpoint that should exist is missing or unreadable."""


class Checkpointer:
    """Save every `every` steps and keep the `keep` most recent, under `directory`."""

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
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "progress"))

    def latest_step(self) -> int | None:
        """The newest *finalized* step (temporary, half-written directories are not steps)."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, step: int, state: Any, progress: dict, *, force: bool = False) -> bool:
        """Save if `step` is a multiple of `every` (or `force`); returns whether a save started."""
        if step % self.every and not force:
            return False
        # The decision is ours: Orbax's own interval policy would also save the first step it sees.
        return self._manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), progress=ocp.args.JsonSave(progress)),
            force=True,
        )

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
        """Restore `step` onto the shardings in `abstract_state` (a pytree of ShapeDtypeStruct).

        Raises CheckpointError if the step is not there or its files cannot be read.
        """
        if step not in self._manager.all_steps():
            raise CheckpointError(f"no checkpoint for step {step} in {self.directory} (have {self.all_steps()})")
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract_state), progress=ocp.args.JsonRestore()
                ),
            )
        except Exception as err:  # Orbax/TensorStore raise many types; the caller needs one clear one.
            raise CheckpointError(
                f"checkpoint step {step} in {self.directory} is corrupt or incompatible with this model"
                f" ({type(err).__name__}: {err}). It was left untouched; older steps: "
                f"{[s for s in self.all_steps() if s < step]}"
            ) from err
        progress = restored["progress"]
        if progress is None or progress.get("step") != step:
            raise CheckpointError(f"checkpoint step {step} in {self.directory} has no valid progress record")
        return restored["state"], progress

    def wait(self) -> None:
        """Block until an asynchronous save has been finalized."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
