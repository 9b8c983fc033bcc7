"""Few-shot SetFit on Debian sections: ours vs the reference ``setfit`` library, same splits and seeds.

    python -m experiments.fewshot_setfit --config=configs/setfit.py:backbone=minilm,shots=8 --workdir=/tmp/setfit8
    python -m experiments.fewshot_setfit --config=configs/setfit.py:demo=true --workdir=/tmp/setfit_demo

One point of the ``setfit`` sweep entry (``setfit_jax.fewshot.run_protocol``): each seed's row is
written to ``workdir/seeds/<seed>.json`` as it finishes (re-running the command resumes at the
first unfinished seed), and ``workdir/result.json`` (mean ± std over seeds, the resolved config
and provenance) once every seed has.
"""

from absl import app, flags
from ml_collections import config_flags

from modernbert_jax import sweep

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/setfit.py[:arg]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's directory: seeds/<seed>.json, result.json.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    cfg = _CONFIG.value
    metrics = sweep.run_point("setfit", cfg, _WORKDIR.value)["metrics"]
    line = f"ours {metrics['ours.accuracy_mean']:.2f} ± {metrics['ours.accuracy_std']:.2f}"
    if "reference.accuracy_mean" in metrics:
        line += f" | reference {metrics['reference.accuracy_mean']:.2f} ± {metrics['reference.accuracy_std']:.2f}"
    print(f"{cfg.backbone} {cfg.shots}-shot accuracy (%), {len(cfg.seeds)} seeds: {line}  "
          f"-> {_WORKDIR.value}/{sweep.RESULT}", flush=True)


if __name__ == "__main__":
    app.run(main)
