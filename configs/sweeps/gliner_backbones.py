"""GLiNER on the Python-docs NER corpus: all-MiniLM-L6-v2 vs our pretrained ModernBERT, 3 seeds (issue 12, table 3).

    # the ModernBERT backbone: the demo pretraining run (tiny model, 300 steps on the offline corpus)
    python -m experiments.run_point --entry=pretrain --config=configs/pretrain.py:variant=demo \
        --config.progress_bar=false --workdir=DIR/backbone
    python -m experiments.sweep --config=configs/sweeps/gliner_backbones.py:modernbert=DIR/backbone \
        --workdir=DIR --results_dir=experiments/results/gliner_backbones

Each point trains GLiNER (`gliner_jax.experiment.train`) with the zero-shot protocol of
``configs/gliner.py`` (four types removed from training: ``UNSEEN_TYPES``) and evaluates on the
whole validation and test splits: micro P/R/F1, seen vs unseen types, F1 per type. ``arg`` keys:
``modernbert`` (the pretraining workdir or HF directory), ``steps`` (training steps per point;
300 fits a 2-core CPU session, the config's own 2,000 is the full recipe), ``seeds`` (3).
"""

import ml_collections

from modernbert_jax import sweep
from modernbert_jax import config as config_lib
from modernbert_jax.data.rst import ROLE_TYPES


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = config_lib.parse_arg(arg, modernbert="", steps=300, seeds=3)
    if not args.modernbert:
        raise ValueError("gliner_backbones needs modernbert=<pretraining workdir or HF directory>")
    cfg = ml_collections.ConfigDict()
    cfg.base = "configs/gliner.py:backbone=minilm"
    cfg.entry = "gliner"
    # One evaluation, at the end, on the whole splits.
    cfg.fixed = {"train": {"num_steps": args.steps, "eval_every": 0}}
    backbones = [{"label": "all-MiniLM-L6-v2", "backbone": "minilm"},
                 {"label": "our ModernBERT (tiny, demo pretraining)", "backbone": "modernbert",
                  "backbone_path": args.modernbert}]
    # Seed-major: both backbones' first seed before any second seed, so a sweep cut short still pairs them.
    cfg.points = sweep.product(sweep.sweep(sweep.SEED, range(args.seeds)), backbones)
    groups = ("micro", "seen", "unseen")
    cfg.metrics = (*(f"test.{g}.{m}" for g in groups for m in ("f1", "precision", "recall")),
                   *(f"validation.{g}.f1" for g in groups), "train.loss", "train.seconds",
                   *(f"test.per_type.{t}.f1" for t in sorted(ROLE_TYPES.values())))
    cfg.figure = {"kind": "bar", "metric": [f"test.{g}.f1" for g in groups], "ylabel": "test F1"}
    return cfg
