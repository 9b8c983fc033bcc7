"""One point of a sweep: run an entry point's library function, then write its ``result.json``.

    python -m experiments.run_point --entry=pretrain --config=configs/pretrain.py:variant=tiny \
        --config.data.mask_rate=0.15 --workdir=/tmp/sweep/data.mask_rate=0.15

``experiments.sweep`` launches (or, with ``--print_commands``, prints) one of these per point.
Re-running resumes from the workdir's checkpoints; a point whose ``result.json`` exists is done.
"""

from absl import app, flags, logging
from ml_collections import config_flags

from modernbert_jax import sweep

_ENTRY = flags.DEFINE_enum("entry", None, sorted(sweep.ENTRIES), "Which library function runs the point.")
_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file[:arg].", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The point's directory: checkpoints, metrics, result.json.")
flags.mark_flags_as_required(["entry", "config", "workdir"])


def main(argv):
    del argv
    # Orbax logs every save at INFO; keep the point's log to the run's own lines.
    logging.set_verbosity(logging.WARNING)
    result = sweep.run_point(_ENTRY.value, _CONFIG.value, _WORKDIR.value)
    print(f"result: {_WORKDIR.value}/{sweep.RESULT}: {result['metrics']}", flush=True)


if __name__ == "__main__":
    app.run(main)
