"""Fine-tune an encoder on a task (``finetune_jax.loop.train``) and print its validation and test metrics.

    python -m experiments.finetune --config=configs/finetune.py:task=debian_sections,backbone=minilm --workdir=/tmp/ft
    python -m experiments.finetune --config=configs/finetune.py:task=pydocs_ner,demo=true --workdir=/tmp/ft_ner_demo

Rerunning the command resumes from ``WORKDIR/checkpoints``; the best model is ``WORKDIR/model`` and
the metrics with their provenance ``WORKDIR/results.json``. A sweep runs the same function per point.
"""

from absl import app, flags, logging
from ml_collections import config_flags

from finetune_jax import loop

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/finetune.py:task=...,backbone=...", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's directory: checkpoints, best/, metrics, model/, results.json.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> None:
    del argv
    # Orbax logs every save at INFO; keep the console to the run's own lines.
    logging.set_verbosity(logging.WARNING)
    result = loop.train(_CONFIG.value, _WORKDIR.value)
    print(f"wrote {_WORKDIR.value}/{loop.RESULTS}; model in {_WORKDIR.value}/{loop.MODEL_DIR}")
    for split, metrics in result["metrics"].items():
        shown = {k: round(v, 4) for k, v in metrics.items() if "/" not in k}
        print(f"{split}: {shown}")


if __name__ == "__main__":
    app.run(main)
