"""Fine-tuning, ours vs transformers' ``Trainer``: the same examples, backbone, hyperparameters and seeds.

    python -m experiments.bench_finetune --task=debian_sections --seeds=0,1,2 \
        --out=experiments/results/bench_finetune_debian_sections.json
    python -m experiments.bench_finetune --task=pydocs_ner --seeds=0,1,2 \
        --out=experiments/results/bench_finetune_pydocs_ner.json
    python -m experiments.bench_finetune --task=pydocs_ner --backbone=workdir/demo/pretrain_<time> \
        --seeds=0,1,2 --out=...                          # another backbone: an HF directory or a pretraining workdir
    python -m experiments.bench_finetune --task=debian_sections --max_train_examples=256 \
        --max_eval_examples=128 --epochs=1 --out=/tmp/bench_finetune_smoke.json   # a smoke run, minutes on CPU

Ours is ``finetune_jax.loop.train`` with ``configs/finetune.py`` (``layer_lr_decay=1``, AdamW,
float32); the reference is ``transformers``' ``Trainer`` on ``AutoModelFor{Sequence,Token}Classification``
of the same backbone directory with the same ``TrainingArguments`` (learning rate, epochs, batch
size, warmup ratio, linear schedule, weight decay, Adam's betas and epsilon, max_grad_norm, seed,
float32 on CPU). Both read the same examples (``TASKS[task].load``, optionally a fixed subsample),
truncate to the same ``data.max_length``, label first sub-tokens only, evaluate on validation after
every epoch and report the test split of the best epoch by the task's metric, scored by the same
functions (``finetune_jax.metrics``; token classification on the words that fit, as both sides
label them). That both sides see the same tokens is checked, not assumed (``token_mismatches``).
What differs is how: ours packs several examples into a row (no compute on padding), the reference
pads each batch to its longest example (``DataCollatorWithPadding``), as transformers users run it.

Training time excludes evaluation on both sides: ours is the loop's own ``train.seconds`` (XLA
compilation included: it is what a user waits for); the reference's is ``Trainer.train`` less its
evaluations' ``eval_runtime``. ``seconds_per_step`` leaves out each run's first step (our first
compilation, torch's warm-up). XLA and torch get the same number of CPU threads (``--threads``).

The heads cannot start from the same random weights (two RNGs), so one seed says little: with
several ``--seeds`` each side's test metric has a mean and a standard deviation, and the difference
of the means is ``within_noise`` when it is at most twice its standard error. Writes the JSON at
``--out`` with the provenance block (data hash: the task's prepared dataset and the backbone);
a file there holding a result of another commit is refused before anything runs unless ``--overwrite``.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
import time
from typing import Any, Callable, Sequence

import ml_collections
from absl import app, flags, logging

from modernbert_jax import config as config_lib
from modernbert_jax import provenance
from modernbert_jax.threads import limit_threads

KINDS = ("classification", "token_classification")  # the kinds transformers' Auto* heads train here
PEERS = ("torch", "transformers", "accelerate", "scikit-learn", "seqeval")

_TASK = flags.DEFINE_enum("task", "debian_sections", ["debian_sections", "pydocs_ner"], "The task both sides train.")
_BACKBONE = flags.DEFINE_string("backbone", "minilm", "minilm (all-MiniLM-L6-v2), or a Hugging Face directory "
                                "with tokenizer.json, or a finished pretraining workdir.")
_MAX_TRAIN = flags.DEFINE_integer("max_train_examples", 0, "Train on a fixed subsample this large (0 = all).",
                                  lower_bound=0)
_MAX_EVAL = flags.DEFINE_integer("max_eval_examples", 0, "Validation and test subsamples this large (0 = all).",
                                 lower_bound=0)
_EPOCHS = flags.DEFINE_integer("epochs", 0, "Training epochs (0 = configs/finetune.py's).", lower_bound=0)
_LR = flags.DEFINE_float("learning_rate", 0.0, "Peak learning rate of both sides (0 = configs/finetune.py's).",
                         lower_bound=0.0)
_BATCH = flags.DEFINE_integer("batch_size", 0, "Examples per step of both sides (0 = configs/finetune.py's).",
                              lower_bound=0)
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Seeds; each trains both sides once.")
_THREADS = flags.DEFINE_integer("threads", 0, "CPU threads of XLA and of torch alike (0 = os.cpu_count()).",
                                lower_bound=0)
_OUT = flags.DEFINE_string("out", None, "JSON path, e.g. experiments/results/bench_finetune_debian_sections.json.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a result of another commit at --out.")
flags.mark_flag_as_required("out")


# ---- the shared setup: config, examples ----

def bench_config(task: str, backbone: str, epochs: int, max_train: int = 0, max_eval: int = 0,
                 learning_rate: float = 0.0, batch_size: int = 0) -> ml_collections.ConfigDict:
    """``configs/finetune.py`` for ``task`` on ``backbone`` as both sides run it: no layer-wise decay,
    transformers' AdamW, float32, no progress bar (the log is the bench's), and the splits' fixed
    subsamples (``data.max_*_examples``, drawn by ``tasks.subsample``, which the reference side takes too)."""
    kind = "minilm" if backbone == "minilm" else "dir"
    config = config_lib.load_config(f"configs/finetune.py:task={task},backbone={kind}")
    if backbone != "minilm":
        config.backbone_path = backbone
    if epochs:
        config.train.epochs = epochs
    if learning_rate:
        config.train.learning_rate = learning_rate
    if batch_size:
        config.train.batch_size = batch_size
    config.train.layer_lr_decay = 1.0
    config.train.optimizer = "adamw"
    config.train.bf16 = False
    config.progress_bar = False
    config.data.max_train_examples, config.data.max_eval_examples = max_train, max_eval
    if not 0 <= config.train.warmup_ratio < 1:  # TrainingArguments reads warmup_steps >= 1 as a step count
        raise ValueError(f"config.train.warmup_ratio={config.train.warmup_ratio}: the bench needs a ratio in [0, 1)")
    return config


def token_mismatches(examples: list[dict], task, tokenizer, reference: list[dict], max_length: int) -> int:
    """Examples whose token ids (and token labels) by our ``finetune_jax.data`` with ``tokenizer``
    differ from the reference's ``features`` of them: 0 when both sides train on the same inputs."""
    from finetune_jax import data

    if task.kind == "token_classification":
        ids, labels = data.encode_words(examples, tokenizer, max_length, task.label_names)
        ours = list(zip(ids, labels))
        theirs = [(list(f["input_ids"]), list(f["labels"])) for f in reference]
    else:
        ours = data.encode_texts(examples, tokenizer, max_length)
        theirs = [list(f["input_ids"]) for f in reference]
    return sum(a != b for a, b in zip(ours, theirs, strict=True))


# ---- ours ----

def run_ours(config: ml_collections.ConfigDict, seed: int, workdir: str) -> dict[str, Any]:
    """Our loop from scratch in ``workdir``: test metrics of the best epoch and the training record."""
    from finetune_jax import loop

    config = ml_collections.ConfigDict(config.to_dict())
    config.seed = seed
    result = loop.train(config, workdir)
    train = result["train"]
    return {"test": result["metrics"]["test"], "validation": result["metrics"]["validation"],
            "best_epoch": result["best_epoch"], "train_seconds": train["seconds"],
            "seconds_per_step": train["seconds_per_step"], "steps": train["steps"]}


# ---- the reference ----

def features(examples: list[dict], kind: str, tokenizer, label_names: Sequence[str], max_length: int) -> list[dict]:
    """transformers' recipe: truncate to ``max_length``; a token-classification example's word tags on
    each word's first sub-token, -100 elsewhere (run_ner's ``label_all_tokens=False``)."""
    if kind == "classification":
        encoded = tokenizer([ex["text"] for ex in examples], truncation=True, max_length=max_length)
        return [{**{k: v[i] for k, v in encoded.items()}, "labels": ex["label"]} for i, ex in enumerate(examples)]
    index = {name: i for i, name in enumerate(label_names)}
    out = []
    for ex in examples:
        enc = tokenizer(ex["words"], is_split_into_words=True, truncation=True, max_length=max_length)
        labels, previous = [], None
        for word in enc.word_ids():
            labels.append(index[ex["tags"][word]] if word is not None and word != previous else -100)
            previous = word
        out.append({**enc, "labels": labels})
    return out


def reference_metrics(kind: str, label_names: Sequence[str]) -> Callable[[Any], dict[str, float]]:
    """``compute_metrics`` for the Trainer, scoring as our ``classification.evaluate`` does: argmax
    classes, or the tags at the labelled (first sub-token) positions."""
    from finetune_jax import metrics

    def compute(prediction) -> dict[str, float]:
        logits, labels = prediction.predictions, prediction.label_ids
        if kind == "classification":
            return metrics.classification(logits.argmax(-1), labels, label_names)
        predicted, gold = [], []
        for row_logits, row_labels in zip(logits, labels):
            labelled = row_labels != -100
            predicted.append([label_names[t] for t in row_logits[labelled].argmax(-1)])
            gold.append([label_names[t] for t in row_labels[labelled]])
        return metrics.token_classification(predicted, gold)

    return compute


def _step_timer():
    """A TrainerCallback summing the seconds of each optimiser step after the first, and of the evaluations."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.seconds, self.steps, self.eval_seconds, self._start = 0.0, 0, 0.0, None

        def on_step_begin(self, args, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step > 1:
                self.seconds += time.perf_counter() - self._start
                self.steps += 1

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            self.eval_seconds += metrics["eval_runtime"]

    return StepTimer()


def run_reference(config: ml_collections.ConfigDict, task, backbone: str, tokenizer,
                  splits: dict[str, list[dict]], seed: int, workdir: str) -> dict[str, Any]:
    """``Trainer`` with ``config``'s hyperparameters from ``backbone`` on ``splits`` (``features`` of
    each split, by ``tokenizer``); metrics as ``run_ours`` reports them."""
    import transformers

    t, kind = config.train, task.kind
    transformers.set_seed(seed)  # before the model: its fresh head is drawn from torch's RNG
    auto = (transformers.AutoModelForTokenClassification if kind == "token_classification"
            else transformers.AutoModelForSequenceClassification)
    model = auto.from_pretrained(backbone, num_labels=len(task.label_names),
                                 id2label=dict(enumerate(task.label_names)),
                                 label2id={name: i for i, name in enumerate(task.label_names)})
    collator = (transformers.DataCollatorForTokenClassification(tokenizer) if kind == "token_classification"
                else transformers.DataCollatorWithPadding(tokenizer))
    args = transformers.TrainingArguments(
        output_dir=workdir, seed=seed, num_train_epochs=t.epochs, per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=config.eval.batch_size, learning_rate=t.learning_rate,
        lr_scheduler_type=t.schedule, warmup_steps=t.warmup_ratio, weight_decay=t.weight_decay,
        adam_beta1=t.adam_beta1, adam_beta2=t.adam_beta2, adam_epsilon=t.adam_epsilon, max_grad_norm=t.max_grad_norm,
        use_cpu=True, bf16=False, fp16=False, eval_strategy="epoch", save_strategy="epoch",
        save_total_limit=t.keep_checkpoints, load_best_model_at_end=True, metric_for_best_model=task.metric,
        greater_is_better=True, logging_strategy="no", report_to="none", disable_tqdm=True)
    timer = _step_timer()
    callbacks = [timer]
    if t.early_stopping_patience:
        callbacks.append(transformers.EarlyStoppingCallback(t.early_stopping_patience))
    trainer = transformers.Trainer(model=model, args=args, data_collator=collator, train_dataset=splits["train"],
                                   eval_dataset=splits["validation"], callbacks=callbacks,
                                   compute_metrics=reference_metrics(kind, task.label_names))
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # the bench prints its own summary
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0 - timer.eval_seconds
    score = reference_metrics(kind, task.label_names)
    evaluated = {split: score(trainer.predict(splits[split])) for split in ("validation", "test")}
    best = trainer.state.best_global_step
    steps_per_epoch = math.ceil(len(splits["train"]) / t.batch_size)
    return {"test": evaluated["test"], "validation": evaluated["validation"],
            "best_epoch": best // steps_per_epoch if best else None, "train_seconds": seconds,
            "seconds_per_step": timer.seconds / timer.steps if timer.steps else None,
            "steps": trainer.state.global_step}


# ---- the comparison ----

def _mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def side_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds of every scalar test metric (per-class ones left out) and of the timings."""
    metrics = [k for k in runs[0]["test"] if "/" not in k]
    out = {f"test.{k}": _mean_std([r["test"][k] for r in runs]) for k in metrics}
    for key in ("train_seconds", "seconds_per_step"):
        if all(r[key] is not None for r in runs):
            out[key] = _mean_std([r[key] for r in runs])
    out["steps"] = runs[0]["steps"]
    return out


def compare(ours: dict[str, Any], reference: dict[str, Any], metric: str, seeds: int) -> dict[str, Any]:
    """Ours less the reference on the task's metric, whether that lies within noise, and time ratios."""
    key = f"test.{metric}"
    difference = ours[key]["mean"] - reference[key]["mean"]
    # The standard error of a difference of two independent means over `seeds` runs each.
    error = math.sqrt((ours[key]["std"] ** 2 + reference[key]["std"] ** 2) / seeds) if seeds > 1 else None
    out = {"metric": metric, "difference": difference, "standard_error": error,
           "within_noise": abs(difference) <= 2 * error if error is not None else None}
    for timing in ("train_seconds", "seconds_per_step"):
        if timing in ours and timing in reference:
            out[f"{timing}_ratio"] = ours[timing]["mean"] / reference[timing]["mean"]  # < 1: ours is faster
    return out


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO; the log is the bench's lines
    out = provenance.ResultFile(_OUT.value, overwrite=_OVERWRITE.value)
    seeds = [int(s) for s in _SEEDS.value]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds={_SEEDS.value}: give distinct integer seeds")
    threads = _THREADS.value or os.cpu_count()
    limit_threads(threads)  # before XLA's backend starts
    import torch

    torch.set_num_threads(threads)
    from finetune_jax import loop, tasks

    config = bench_config(_TASK.value, _BACKBONE.value, _EPOCHS.value, _MAX_TRAIN.value, _MAX_EVAL.value,
                          _LR.value, _BATCH.value)
    loop.validate(config)
    task = tasks.for_config(config)
    if task.kind not in KINDS:
        raise ValueError(f"task {task.name!r} is of kind {task.kind!r}; the bench compares {KINDS}")
    backbone = str(loop.backbone_dir(config))
    data = task.load(config.data.data_dir or None)
    splits = {"train": tasks.subsample(data["train"], config.data.max_train_examples),
              **{s: tasks.subsample(data[s], config.data.max_eval_examples) for s in ("validation", "test")}}
    import transformers

    from modernbert_jax import hf

    transformers.logging.set_verbosity_error()  # the fresh head's load report is expected, not news
    tokenizer = transformers.AutoTokenizer.from_pretrained(backbone)
    encoded = {split: features(examples, task.kind, tokenizer, task.label_names, config.data.max_length)
               for split, examples in splits.items()}
    mismatches = token_mismatches(splits["train"], task, hf.load_tokenizer(backbone), encoded["train"],
                                  config.data.max_length)
    runs: dict[str, list[dict]] = {"ours": [], "reference": []}
    with tempfile.TemporaryDirectory(prefix="bench_finetune_") as scratch:
        for seed in seeds:
            runs["reference"].append({"seed": seed, **run_reference(config, task, backbone, tokenizer, encoded, seed,
                                                                    os.path.join(scratch, f"reference_{seed}"))})
            runs["ours"].append({"seed": seed, **run_ours(config, seed, os.path.join(scratch, f"ours_{seed}"))})
            print(f"seed {seed}: " + " | ".join(
                f"{side} test {task.metric} {r[-1]['test'][task.metric]:.4f}, train {r[-1]['train_seconds']:.1f}s"
                for side, r in runs.items()), flush=True)
    summary = {side: side_summary(r) for side, r in runs.items()}
    summary["comparison"] = compare(summary["ours"], summary["reference"], task.metric, len(seeds))
    result = {"task": task.name, "kind": task.kind, "metric": task.metric, "backbone": _BACKBONE.value,
              "backbone_dir": backbone, "seeds": seeds,
              "examples": {split: len(examples) for split, examples in splits.items()},
              "train_config": config.train.to_dict(), "max_length": config.data.max_length,
              "threads": {"xla": threads, "torch": torch.get_num_threads(), "cpu_count": os.cpu_count()},
              "token_mismatches": mismatches, "load_average": os.getloadavg(), "runs": runs, "summary": summary}
    out.write(result, config=provenance.command_line_config(), seed=None,
              data_paths=[*tasks.data_paths(task, config.data.data_dir or None), backbone], peers=PEERS)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    app.run(main)
