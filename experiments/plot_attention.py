"""Plot a bench_attention JSON: forward+backward time per token against sequence length.

    python -m experiments.plot_attention --input=experiments/results/bench_attention_gpu.json

Writes a PNG next to the JSON (same name, .png). Local (w=64) and global attention side by
side; every backend that ran is a line, so O(T·w) against O(T²) is visible at a glance.
"""

from __future__ import annotations

import json
from pathlib import Path

from absl import app, flags

COLORS = {"xla": "tab:red", "blocked": "tab:blue", "pallas": "tab:green", "flex": "tab:orange"}
_INPUT = flags.DEFINE_string("input", "experiments/results/bench_attention_gpu.json", "bench_attention JSON")


def main(_) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(_INPUT.value)
    data = json.loads(path.read_text())
    rows = [r for r in data["results"] if r.get("fwd_bwd_s")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, local in zip(axes, (True, False)):
        for impl in sorted({r["impl"] for r in rows}):
            pts = sorted(
                (r["T"], r["fwd_bwd_s"] / (r["B"] * r["T"]) * 1e9)
                for r in rows if r["impl"] == impl and (r["window"] is not None) == local
            )
            if pts:
                ax.plot(*zip(*pts), marker="o", label=impl, color=COLORS.get(impl))
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_title("local attention, w=64" if local else "global attention")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("forward+backward ns per token (all heads)")
    fig.suptitle(f"{data['device']}, {rows[0]['dtype']}, H={rows[0]['H']}, D={rows[0]['D']} (lower is better)")
    fig.tight_layout()
    out = path.with_suffix(".png")
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)
