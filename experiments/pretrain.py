"""MLM pretraining entry point.

    python -m experiments.pretrain --config=configs/pretrain.py:variant=tiny --workdir=/tmp/mlm

Any config field can be overridden (``--config.total_steps=50``). Re-running with the same
workdir resumes from its latest checkpoint. Multi-host: pass ``--coordinator_address``,
``--num_processes`` and ``--process_id`` (or ``--distributed`` to let
``jax.distributed.initialize`` read them from Slurm/Kubernetes/TPU environment).
"""

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file[:arg].", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and exports go here.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() with auto-detection.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-host).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-host).", lower_bound=1)
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-host).", lower_bound=0)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    import jax

    if _COORDINATOR.value:
        # CPU processes need an explicit collectives backend; GPUs/TPUs bring their own.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=_COORDINATOR.value, num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value
        )
    elif _DISTRIBUTED.value:
        jax.distributed.initialize()
    from modernbert_jax.train import loop

    # Orbax logs every save at INFO; keep the console to the progress bar and our summary.
    logging.set_verbosity(logging.WARNING)
    if jax.process_index() == 0:
        print(f"devices: {jax.device_count()} ({jax.local_device_count()} local), processes: {jax.process_count()}",
              flush=True)
    summary = loop.train(_CONFIG.value, _WORKDIR.value)
    if jax.process_index() == 0:
        print(f"done: step {summary['step']}, train {summary['train']}, eval {summary['eval']}", flush=True)


if __name__ == "__main__":
    app.run(main)
