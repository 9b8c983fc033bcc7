"""How a trained GLiNER's F1 depends on how many negative types share the prompt.

    python -m experiments.gliner_prompt_sweep --model=DIR [--model=DIR2 ...] [--negatives=0,3,8,all] \
        --out=experiments/results/gliner_prompt_sweep.json

Each test paragraph is prompted with its own gold types plus ``k`` other types of the split
(drawn at random, seeded, order shuffled); ``k=all`` is the evaluation protocol of
``experiments.train_gliner`` (every type in the prompt). ``k=0`` leaks which types are present and
is not a result to report; the curve from ``k=0`` to ``all`` shows whether a model finds the
spans but cannot choose among many prompted types. Writes the JSON at ``--out`` (required; with
the provenance block, whose data hash covers the test split and every model directory) and a PNG
beside it (F1 against ``k``, one line per model, seen and held-out types apart). A JSON there
holding a result of another commit is refused before anything runs unless ``--overwrite``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tqdm
from absl import app, flags

from gliner_jax import GLiNER, decoding, metrics
from gliner_jax.data import pydocs, tfds_pydocs
from modernbert_jax import provenance

_MODELS = flags.DEFINE_multi_string("model", None, "trained GLiNER directories (a train_gliner workdir's model/)")
_NAMES = flags.DEFINE_list("names", [], "legend names, one per --model ('' = the directory names)")
_NEGATIVES = flags.DEFINE_list("negatives", ["0", "1", "3", "8", "all"], "negative types per prompt ('all' = every type)")
_EXAMPLES = flags.DEFINE_integer("examples", 300, "test paragraphs (a seeded sample)", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "sample and negative-type seed", lower_bound=0)
_OUT = flags.DEFINE_string("out", None, "results JSON, PNG beside it (experiments/results/gliner_prompt_sweep.json)")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "replace a result of another commit at --out")
flags.mark_flags_as_required(["model", "out"])


def sweep(model: GLiNER, examples: list[dict], all_types: list[str], negatives: list[str], seed: int) -> dict:
    out = {}
    for k in negatives:
        rng = np.random.default_rng(seed)
        gold, pred = [], []
        for ex in tqdm.tqdm(examples, desc=f"k={k}", mininterval=10):
            own = sorted({label for _, _, label in ex["ner"]})
            others = [t for t in all_types if t not in own]
            chosen = others if k == "all" else [others[i] for i in rng.permutation(len(others))[: int(k)]]
            types = own + chosen
            types = [types[i] for i in rng.permutation(len(types))]
            found = model.score_candidates([ex["tokenized_text"]], types, 0.5, 1)[0]
            pred.append([(int(found.start[i]), int(found.end[i]), types[found.label[i]])
                         for i in decoding.greedy_search(found, True, False)])
            gold.append([tuple(span) for span in ex["ner"]])
        result = metrics.score(gold, pred, all_types, pydocs.UNSEEN_TYPES)
        out[k] = {group: result[group] for group in ("micro", "seen", "unseen")}
    return out


def plot(results: dict, negatives: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (name, by_k), color in zip(results.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        for group, style in (("seen", "-"), ("unseen", ":")):
            ax.plot(range(len(negatives)), [by_k[k][group]["f1"] for k in negatives], style, marker="o", color=color,
                    label=f"{name}: {'seen' if group == 'seen' else 'held-out'} types")
    ax.set_xticks(range(len(negatives)), negatives)
    ax.set_xlabel("negative types in the prompt besides the gold ones ('all' = evaluation protocol)")
    ax.set_ylabel("test F1 (exact span + type)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(_) -> None:
    out = provenance.ResultFile(_OUT.value, overwrite=_OVERWRITE.value)
    names = _NAMES.value or [Path(m).name for m in _MODELS.value]
    if len(names) != len(_MODELS.value):
        raise ValueError(f"--names has {len(names)} entries for {len(_MODELS.value)} --model directories")
    for k in _NEGATIVES.value:
        if k != "all" and not k.isdigit():
            raise ValueError(f"--negatives entry {k!r} must be a count or 'all'")
    test = tfds_pydocs.load_split("test")
    examples = [test[i] for i in np.random.default_rng(_SEED.value).permutation(len(test))[: _EXAMPLES.value]]
    all_types = sorted({label for ex in test for _, _, label in ex["ner"]})
    results = {name: sweep(GLiNER.from_pretrained(path), examples, all_types, _NEGATIVES.value, _SEED.value)
               for name, path in zip(names, _MODELS.value)}
    out.write({"models": dict(zip(names, _MODELS.value)), "examples": len(examples), "types": all_types,
               "results": results}, config=provenance.command_line_config(), seed=_SEED.value,
              data_paths=[tfds_pydocs.prepare().data_dir, *_MODELS.value])
    plot(results, _NEGATIVES.value, out.path.with_suffix(".png"))
    for name, by_k in results.items():
        print(name, {k: round(v["micro"]["f1"], 3) for k, v in by_k.items()})
    print(f"wrote {out.path} and {out.path.with_suffix('.png')}")


if __name__ == "__main__":
    app.run(main)
