"""Run a sweep: every point of a sweep file as its own resumable process, then one table.

    python -m experiments.sweep --config=configs/sweeps/tiny_pretrain.py --workdir=/tmp/sweep_tiny
    python -m experiments.sweep --config=configs/sweeps/modernbert_ablations.py --workdir=DIR --workers=2
    python -m experiments.sweep --config=configs/sweeps/modernbert_ablations.py --workdir=DIR --print_commands

Every point is validated before any runs. ``DIR/<point name>/`` holds each point's checkpoints,
``log.txt`` and, once it finished, ``result.json``; re-running skips finished points and resumes
interrupted ones. ``DIR/table.md``, ``DIR/table.csv`` and the sweep's figure aggregate them.
``--print_commands`` prints one shell command per point instead, for any scheduler to run;
``--results_dir=experiments/results/<table>`` copies the tables, figure and each point's
``result.json`` (not its checkpoints) where they are committed.
"""

import sys

from absl import app, flags

from modernbert_jax import sweep

_CONFIG = flags.DEFINE_string("config", None, "Sweep file[:arg], e.g. configs/sweeps/tiny_pretrain.py.")
_WORKDIR = flags.DEFINE_string("workdir", None, "One directory per point, and the tables.")
_WORKERS = flags.DEFINE_integer("workers", 1, "Points run at once.", lower_bound=1)
_PRINT = flags.DEFINE_bool("print_commands", False, "Print one shell command per point instead of running.")
_RESULTS = flags.DEFINE_string("results_dir", "", "Also copy the tables, figure and every point's result.json "
                                "here (e.g. experiments/results/<table>).")
_TIMEOUT = flags.DEFINE_float("point_timeout_s", 7 * 24 * 3600.0, "A point running longer is killed and failed.")
flags.mark_flags_as_required(["config", "workdir"])
flags.register_validator("point_timeout_s", lambda seconds: seconds > 0, "must be > 0 seconds")


def main(argv):
    del argv
    try:
        return sweep.main(_CONFIG.value, _WORKDIR.value, workers=_WORKERS.value, print_commands=_PRINT.value,
                          timeout_s=_TIMEOUT.value, results_dir=_RESULTS.value)
    except sweep.SweepError as e:
        sys.exit(f"invalid sweep, no point was started: {e}")


if __name__ == "__main__":
    app.run(main)
