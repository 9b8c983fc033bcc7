"""Plot a train_gliner results JSON: the training curve and test F1 per entity type.

    python -m experiments.plot_gliner --input=experiments/results/gliner_minilm.json

Writes a PNG next to the JSON (same name, .png). Types held out of training (the zero-shot
protocol) are drawn in a second colour, so seen and unseen performance read at a glance.
"""

from __future__ import annotations

import json
from pathlib import Path

from absl import app, flags

_INPUT = flags.DEFINE_string("input", "experiments/results/gliner_minilm.json", "train_gliner results JSON")
_SPLIT = flags.DEFINE_string("split", "test", "which evaluated split to plot per type")


def main(_) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(_INPUT.value)
    data = json.loads(path.read_text())
    result = data["results"][_SPLIT.value]
    unseen = set(data["config"]["unseen_types"])
    types = sorted(result["per_type"], key=lambda t: -result["per_type"][t]["support"])
    fig, (curve, bars) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 2]})

    steps = [p["step"] for p in data["curve"]]
    curve.plot(steps, [p["loss"] for p in data["curve"]], marker=".", color="tab:blue")
    curve.set_xlabel("step")
    curve.set_ylabel("training loss (sum over spans)")
    curve.set_title(f"{data['config']['backbone']}: {data['train_seconds'] / 60:.0f} min on {data['backend']}")
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
    out = path.with_suffix(".png")
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)
