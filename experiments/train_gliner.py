"""Train GLiNER (``gliner_jax.experiment.train``) and report span-level P/R/F1 (seen vs unseen types).

    python -m experiments.train_gliner --config=configs/gliner.py:backbone=minilm[,demo=true] --workdir=/tmp/gliner
    # your own data in the reference JSON format (Pile-NER style tokenized_text + ner):
    python -m experiments.train_gliner --config=configs/gliner.py --config.data.train_file=train.json \
        --config.data.eval_file=dev.json --workdir=/tmp/gliner_mine
    # evaluate (or, with num_steps > 0, fine-tune) a saved GLiNER directory (its own architecture;
    # the type sampling of cfg.head, gliner_jax.config.SAMPLING_FIELDS):
    python -m experiments.train_gliner --config=configs/gliner.py --config.init_from=DIR \
        --config.train.num_steps=0 --workdir=/tmp/gliner_eval

The run is one sweep point (``modernbert_jax.sweep.run_point``): rerunning the command resumes
from ``WORKDIR/checkpoints``; the trained model is ``WORKDIR/model`` and the metrics with their
provenance are ``WORKDIR/result.json`` (a finished workdir just prints its result).
"""

from absl import app, flags, logging
from ml_collections import config_flags

from modernbert_jax import sweep

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/gliner.py:backbone=minilm", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's directory: checkpoints, metrics, model/, result.json.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> None:
    del argv
    # Orbax logs every save at INFO; keep the console to the run's own lines.
    logging.set_verbosity(logging.WARNING)
    result = sweep.run_point("gliner", _CONFIG.value, _WORKDIR.value)
    m = result["metrics"]
    print(f"wrote {_WORKDIR.value}/{sweep.RESULT}; model in {_WORKDIR.value}/model")
    splits = sorted({key.split(".")[0] for key in m if key.endswith(".micro.f1")})
    for split in splits:
        unseen = m.get(f"{split}.unseen.f1")
        print(f"{split}: micro P/R/F1 {m[f'{split}.micro.precision']:.3f}/{m[f'{split}.micro.recall']:.3f}/"
              f"{m[f'{split}.micro.f1']:.3f}  seen F1 {m[f'{split}.seen.f1']:.3f}  unseen F1 "
              f"{'n/a' if unseen is None else format(unseen, '.3f')}")


if __name__ == "__main__":
    app.run(main)
