"""Plot a train_gliner run: the training curve and test F1 per entity type.

    python -m experiments.plot_gliner --workdir=/tmp/gliner

Reads the run's ``result.json`` and ``metrics.jsonl`` and writes ``WORKDIR/gliner.png``. Types
held out of training (the zero-shot protocol) are drawn in a second colour, so seen and unseen
performance read at a glance.
"""

from __future__ import annotations

import json
from pathlib import Path

from absl import app, flags

from modernbert_jax.train import metrics as metrics_lib

_WORKDIR = flags.DEFINE_string("workdir", None, "a finished train_gliner run (or gliner sweep point)", required=True)
_SPLIT = flags.DEFINE_string("split", "test", "which evaluated split to plot per type")


def main(_) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workdir = Path(_WORKDIR.value)
    data = json.loads((workdir / "result.json").read_text())
    config, flat = data["provenance"]["config"], data["metrics"]
    result = _unflatten_split(flat, _SPLIT.value)
    unseen = set(config["unseen_types"])
    types = sorted(result["per_type"], key=lambda t: -result["per_type"][t]["support"])
    train = [r for r in metrics_lib.read_jsonl(str(workdir / "metrics.jsonl")) if r["split"] == "train"]
    fig, (curve, bars) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 2]})

    curve.plot([r["step"] for r in train], [r["loss"] for r in train], marker=".", color="tab:blue")
    curve.set_xlabel("step")
    curve.set_ylabel("training loss (sum over spans)")
    curve.set_title(f"{config['backbone']}: {flat['train.seconds'] / 60:.0f} min on "
                    f"{data['provenance']['devices']['platform']}")
    curve.grid(alpha=0.3)

    f1 = [result["per_type"][t]["f1"] for t in types]
    colors = ["tab:orange" if t in unseen else "tab:blue" for t in types]
    bars.bar(range(len(types)), f1, color=colors)
    bars.set_xticks(range(len(types)), [f"{t} ({result['per_type'][t]['support']})" for t in types],
                    rotation=60, ha="right", fontsize=8)
    bars.set_ylim(0, 1)
    bars.set_ylabel(f"{_SPLIT.value} F1 (exact span + type)")
    micro, seen, zero = result["micro"]["f1"], result["seen"]["f1"], (result["unseen"] or {}).get("f1", float("nan"))
    bars.set_title(f"micro F1 {micro:.3f} | seen types {seen:.3f} | unseen types (zero-shot) {zero:.3f}")
    bars.legend(handles=[plt.Rectangle((0, 0), 1, 1, color="tab:blue"), plt.Rectangle((0, 0), 1, 1, color="tab:orange")],
                labels=["seen in training", "held out (zero-shot)"], loc="upper right")
    bars.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = workdir / "gliner.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


def _unflatten_split(flat: dict, split: str) -> dict:
    """``split``'s metrics from result.json's dotted keys (a type name may itself hold dots)."""
    out: dict = {"per_type": {}, "unseen": None}
    for key, value in flat.items():
        if not key.startswith(f"{split}."):
            continue
        rest = key[len(split) + 1:]
        if rest.startswith("per_type."):
            name, _, field = rest[len("per_type."):].rpartition(".")
            out["per_type"].setdefault(name, {})[field] = value
        elif "." in rest:
            group, _, field = rest.partition(".")
            out[group] = {**(out.get(group) or {}), field: value}
    return out


if __name__ == "__main__":
    app.run(main)
