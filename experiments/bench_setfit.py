"""Training time and prediction throughput: setfit_jax vs the reference ``setfit`` library.

    python -m experiments.bench_setfit --shots=8 --steps=160 --repeats=2 [--threads=0] \
        [--backbone=mpnet|xlm-roberta|...|<sentence-transformers dir>] --out=experiments/results/bench_setfit.json

Same machine, same data (``debian_sections``, ``shots`` per class, seed 0), same backbone
directory (``--backbone``: all-MiniLM-L6-v2 by default; a sentence-transformers directory; or an
arch of ``experiments.backbones.ARCHS``, e.g. ``mpnet`` for SetFit's default body shape
paraphrase-mpnet-base-v2 -- a random ``--backbone_size`` encoder with the MiniLM tokenizer, wrapped
as a sentence-transformers directory with mean pooling and no Normalize, as that model is; its
accuracy is then that of random features, its timings those of the real architecture), same training arguments (batch 16, CosineSimilarityLoss, ``steps`` steps,
logistic-regression head). Each round trains the reference, ours in float32 and ours with
``use_amp=True`` (bfloat16-input matmuls, float32 accumulation), in one process, and records wall
time and process CPU time. Training time includes everything ``Trainer.train`` does, our XLA
compilation included: JAX's persistent compilation cache starts empty (a fresh directory), so
round 0 of ours is a cold start and later rounds are warm, as every seed after the first is in the
paper's multi-seed protocol. Prediction throughput is measured on the fixed test split after one
identical warm-up call. Accuracy is recorded so speed is compared at equal accuracy. Writes the
JSON at ``--out`` (required) with the provenance block, whose data hash covers the Debian-sections
dataset and the backbone's weights; a file there holding a result of another commit is refused
before anything runs unless ``--overwrite``.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile

import numpy as np
from absl import app, flags

from experiments import backbones
from experiments.timing import Timing, measure
from modernbert_jax import provenance
from modernbert_jax.data import tfds_builder
from modernbert_jax.threads import limit_threads
from setfit_jax import fewshot

_SHOTS = flags.DEFINE_integer("shots", 8, "Training examples per class.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 80, "Stage-1 steps (max_steps) for both libraries.", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 2, "Alternating ours/reference rounds.", lower_bound=1)
_THREADS = flags.DEFINE_integer("threads", 0, "CPU threads for each library (0 = library defaults).", lower_bound=0)
_BACKBONE = flags.DEFINE_string("backbone", "", "A sentence-transformers directory, or an arch of "
                                 f"{backbones.ARCHS} (random weights); empty = all-MiniLM-L6-v2.")
_BACKBONE_SIZE = flags.DEFINE_enum("backbone_size", "base", ["base", "tiny"], "Shape of a random --backbone arch.")
_OUT = flags.DEFINE_string("out", None, "JSON path, e.g. experiments/results/bench_setfit.json.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a result of another commit at --out.")
flags.mark_flag_as_required("out")


def once(fn, warmup: int = 0) -> Timing:
    """One timed call: a training run is a round of its own (cold in round 0, warm later)."""
    return measure({"call": fn}, repeats=1, warmup=warmup)["call"]


def random_sentence_transformer(arch: str, directory: str, size: str) -> str:
    """A random ``arch`` body as a sentence-transformers directory: [Transformer, mean Pooling]."""
    backbones.write_random_backbone(arch, directory, size=size, seed=0)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    with open(os.path.join(directory, "modules.json"), "w") as f:
        json.dump(modules, f, indent=2)
    with open(os.path.join(directory, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 512, "do_lower_case": False}, f)  # paraphrase-mpnet-base-v2's
    with open(os.path.join(directory, "config.json")) as f:
        dim = json.load(f)["hidden_size"]
    os.makedirs(os.path.join(directory, "1_Pooling"))
    with open(os.path.join(directory, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": dim, "pooling_mode_mean_tokens": True}, f, indent=2)
    return directory


def resolve_backbone(flag: str, size: str, scratch: str) -> str:
    """The backbone directory both libraries load: MiniLM, a given directory, or a random arch."""
    if not flag:
        return fewshot.minilm_path()
    if flag in backbones.ARCHS:
        return random_sentence_transformer(flag, os.path.join(scratch, flag), size)
    if not os.path.isdir(flag):
        raise ValueError(f"--backbone={flag!r} is neither a directory nor one of {backbones.ARCHS}")
    return flag


def bench_ours(backbone: str, train, test, steps: int, use_amp: bool) -> dict:
    from setfit_jax import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(backbone)
    args = TrainingArguments(seed=0, batch_size=16, max_steps=steps, use_amp=use_amp)
    t_train = once(Trainer(model, args=args, train_dataset={"text": train[0], "label": train[1]}).train)
    preds = []  # one warm-up call compiles the shapes the timed call uses; accuracy is the timed call's
    t_pred = once(lambda: preds.append(model.predict(test[0])), warmup=1)
    return _row(t_train, t_pred, preds[-1], test)


def bench_reference(backbone: str, train, test, steps: int) -> dict:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(backbone, device="cpu")
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, seed=0, batch_size=16, max_steps=steps, report_to="none",
                                 save_strategy="no", show_progress_bar=False, logging_strategy="no")
        trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": train[0], "label": train[1]}))
        t_train = once(trainer.train)
    preds = []
    t_pred = once(lambda: preds.append(model.predict(test[0], as_numpy=True)), warmup=1)
    return _row(t_train, t_pred, preds[-1], test)


# Per-library numbers of a round; the summary takes their median over rounds.
MEASURES = ("train_wall_s", "train_cpu_s", "predict_wall_s", "predict_cpu_s", "predict_sentences_per_s", "accuracy")


def _row(t_train: Timing, t_pred: Timing, pred, test) -> dict:
    n = len(test[0])
    return {"train_wall_s": t_train.median_s, "train_cpu_s": t_train.median_cpu_s,
            "predict_wall_s": t_pred.median_s, "predict_cpu_s": t_pred.median_cpu_s,
            "predict_sentences_per_s": n / t_pred.median_s,
            "accuracy": float(np.mean([p == y for p, y in zip(pred, test[1])])),
            "load_average_before": list(t_train.load_average_before),
            "load_average_after": list(t_pred.load_average_after)}


def main(argv):
    del argv
    out = provenance.ResultFile(_OUT.value, overwrite=_OVERWRITE.value)
    limit_threads(_THREADS.value)
    if _THREADS.value > 0:  # the reference's torch pool, pinned alike
        import torch

        torch.set_num_threads(_THREADS.value)
    from setfit_jax import data

    load_at_start = os.getloadavg()
    pool, test = fewshot.load_splits()
    idx = data.sample_per_class(pool[1], _SHOTS.value, 0)
    train = ([pool[0][i] for i in idx], [pool[1][i] for i in idx])
    import jax

    jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="bench_setfit_xla_cache_"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    scratch = tempfile.mkdtemp(prefix="bench_setfit_backbone_")
    backbone = resolve_backbone(_BACKBONE.value, _BACKBONE_SIZE.value, scratch)
    rounds = []
    for r in range(_REPEATS.value):
        row = {"reference": bench_reference(backbone, train, test, _STEPS.value),
               "ours": bench_ours(backbone, train, test, _STEPS.value, use_amp=False),
               "ours_amp": bench_ours(backbone, train, test, _STEPS.value, use_amp=True)}
        rounds.append(row)
        print(f"round {r}: {json.dumps(row, indent=1)}", flush=True)

    ref_train = float(np.median([x["reference"]["train_wall_s"] for x in rounds]))
    summary = {"reference": {key: float(np.median([x["reference"][key] for x in rounds])) for key in MEASURES}}
    for lib in ("ours", "ours_amp"):
        for phase, chosen in (("cold", rounds[:1]), ("warm", rounds[1:])):
            if not chosen:
                continue
            stats = {key: float(np.median([x[lib][key] for x in chosen])) for key in MEASURES}
            stats["train_speedup"] = ref_train / stats["train_wall_s"]
            stats["predict_speedup"] = summary["reference"]["predict_wall_s"] / stats["predict_wall_s"]
            summary[f"{lib}_{phase}"] = stats
    result = {"backbone": _BACKBONE.value or "all-MiniLM-L6-v2",
              "backbone_size": _BACKBONE_SIZE.value if _BACKBONE.value in backbones.ARCHS else None,
              "shots": _SHOTS.value, "train_size": len(idx), "test_size": len(test[0]), "steps": _STEPS.value,
              "threads": _THREADS.value, "cpu_count": os.cpu_count(), "load_average_at_start": load_at_start,
              "machine": platform.processor() or platform.machine(), "rounds": rounds, "summary": summary}
    out.write(result, config=provenance.command_line_config(), seed=0,
              data_paths=[tfds_builder.prepare_tfds("debian_sections").data_dir, backbone],
              peers=("torch", "transformers", "sentence-transformers", "setfit"))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    app.run(main)
