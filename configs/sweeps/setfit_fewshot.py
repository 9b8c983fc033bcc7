"""SetFit few-shot accuracy, ours vs the `setfit` library on the same splits (issue 12, table 4).

    python -m experiments.sweep --config=configs/sweeps/setfit_fewshot.py --workdir=DIR --workers=2 \
        --results_dir=experiments/results/setfit_fewshot

Each point is the whole protocol at one N (`setfit_jax.fewshot.run_protocol`): for each of 5 seeds,
N examples per Debian section drawn from the train split, both libraries trained with the same
arguments from the same all-MiniLM-L6-v2 weights (float32, one CPU thread each), accuracy on the
fixed test split. A point's seeds are resumable units, so the ± columns are the protocol's own
std over seeds. ``arg`` keys: ``seeds`` (5), ``max_steps_64`` (200: the N=64 run is capped at
200 contrastive steps, 3,200 pairs, instead of R=20's 1,280 steps, to fit a CPU session; 0 = uncapped).
"""

import ml_collections

from modernbert_jax import config as config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = config_lib.parse_arg(arg, seeds=5, max_steps_64=200)
    cfg = ml_collections.ConfigDict()
    cfg.base = f"configs/setfit.py:backbone=minilm,seeds={args.seeds}"
    cfg.entry = "setfit"
    cfg.fixed = {"reference": True, "use_amp": False, "threads": 1}
    cfg.points = [{"label": "N=8", "shots": 8},
                  {"label": "N=64", "shots": 64, **({"train.max_steps": args.max_steps_64} if args.max_steps_64 else {})}]
    cfg.metrics = ("ours.accuracy_mean", "ours.accuracy_std", "reference.accuracy_mean", "reference.accuracy_std",
                   "accuracy_gap_points", "ours.train_seconds_mean", "reference.train_seconds_mean",
                   "train_speedup", "ours.n", "reference.n")
    cfg.figure = {"kind": "bar", "metric": ["ours.accuracy_mean", "reference.accuracy_mean"],
                  "error": ["ours.accuracy_std", "reference.accuracy_std"], "ylabel": "test accuracy (%)"}
    return cfg
