"""The floors of the code-search table: BM25 and the backbone before any fine-tuning, on one split.

    python -m experiments.code_search_floor --out=experiments/results/code_search_floor.json
    python -m experiments.code_search_floor --backbones=minilm,/tmp/mlm_tiny --split=test --out=...

Both rows are scored exactly as a fine-tuned bi-encoder is (``finetune_jax.retrieval``: every query
of the split against the split's whole corpus, exact search, nDCG@10 / MRR@10 / recall by
pytrec_eval). BM25 is ``retrieval.bm25`` (bm25s, identifiers split into words); a backbone row
is ``retrieval.evaluate`` on the backbone as ``retrieval.build`` loads it (mean pooling,
normalised), with configs/finetune.py's query and document lengths. ``--max_examples`` takes the
same fixed subsample the fine-tuning runs take (``tasks.subsample``), so the rows compare.
"""

from __future__ import annotations

import time

import jax
from absl import app, flags

from modernbert_jax import config as config_lib
from modernbert_jax import hf, provenance

_SPLIT = flags.DEFINE_enum("split", "test", ["validation", "test"], "The split scored.")
_BACKBONES = flags.DEFINE_list("backbones", ["minilm"], "minilm, or Hugging Face / pretraining-workdir directories.")
_MAX_EXAMPLES = flags.DEFINE_integer("max_examples", 0, "A fixed subsample of the split (0 = all).", lower_bound=0)
_OUT = flags.DEFINE_string("out", None, "Result JSON, e.g. experiments/results/code_search_floor.json.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a result of another commit at --out.")
flags.mark_flag_as_required("out")


def backbone_config(backbone: str):
    """configs/finetune.py for code search on ``backbone`` (``minilm`` or a directory)."""
    config = config_lib.load_config(f"configs/finetune.py:task=code_search,backbone={'minilm' if backbone == 'minilm' else 'dir'}")
    if backbone != "minilm":
        config.backbone_path = backbone
    return config


def main(argv):
    del argv
    from finetune_jax import loop, retrieval, tasks

    out = provenance.ResultFile(_OUT.value, overwrite=_OVERWRITE.value)
    task = tasks.TASKS["code_search"]
    examples = tasks.subsample(task.load(None)[_SPLIT.value], _MAX_EXAMPLES.value)
    rows, paths = {}, tasks.data_paths(task, None)
    t0 = time.perf_counter()
    rows["BM25 (bm25s, identifiers split)"] = {**retrieval.bm25(examples), "seconds": time.perf_counter() - t0}
    for backbone in _BACKBONES.value:
        config = backbone_config(backbone)
        module, params = retrieval.build(config, task, jax.random.key(config.seed))
        t0 = time.perf_counter()
        scores = retrieval.evaluate(module, params, examples, hf.load_tokenizer(loop.backbone_dir(config)), config, task)
        rows[f"{backbone}, not fine-tuned"] = {**scores, "seconds": time.perf_counter() - t0}
        paths.append(str(loop.backbone_dir(config)))
    for name, row in rows.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)
    out.write({"split": _SPLIT.value, "examples": len(examples), "rows": rows},
              config=provenance.command_line_config(), seed=0, data_paths=paths)


if __name__ == "__main__":
    app.run(main)
