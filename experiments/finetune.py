"""Fine-tune an encoder on a task (``finetune_jax.loop.train``) and print its validation and test metrics.

    python -m experiments.finetune --config=configs/finetune.py:task=debian_sections,backbone=minilm --workdir=/tmp/ft
    python -m experiments.finetune --config=configs/finetune.py:task=pydocs_ner,demo=true --workdir=/tmp/ft_ner_demo

Rerunning the command resumes from ``WORKDIR/checkpoints``; the best model is ``WORKDIR/model`` and
the metrics with their provenance ``WORKDIR/result.json`` (``modernbert_jax.sweep.run_point``, as a
sweep runs each of its points).
"""

from absl import app, flags, logging
from ml_collections import config_flags

from finetune_jax import loop
from modernbert_jax import sweep

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/finetune.py:task=...,backbone=...", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's directory: checkpoints, best/, metrics, model/, result.json.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> None:
    del argv
    # Orbax logs every save at INFO; keep the console to the run's own lines.
    logging.set_verbosity(logging.WARNING)
    metrics = sweep.run_point("finetune", _CONFIG.value, _WORKDIR.value)["metrics"]
    print(f"wrote {_WORKDIR.value}/{sweep.RESULT}; model in {_WORKDIR.value}/{loop.MODEL_DIR}")
    for split in ("validation", "test"):
        prefix = f"metrics.{split}."
        print(f"{split}: " + ", ".join(f"{k[len(prefix):]} {v:.4f}" for k, v in metrics.items()
                                       if k.startswith(prefix) and "/" not in k))


if __name__ == "__main__":
    app.run(main)
