"""The side-by-side fine-tuning bench (``experiments.bench_finetune``) and the results-table sweep.

What makes the comparison fair is checked here without training: the reference side's inputs
(transformers' tokenizer, first-sub-token labels) are the tokens ours trains on, its scoring masks
the same positions as ``seqeval`` is given by hand, "within noise" follows the standard error, and
the sweep gives every task x backbone row its task's metric. The real run is the bench itself.
"""

import types

import numpy as np
import pytest
from seqeval import metrics as seqeval_metrics

from experiments import bench_finetune
from finetune_jax import tasks
from modernbert_jax import hf, sweep
from setfit_jax.fewshot import minilm_path

TAGS = ("O", "B-function", "I-function", "B-module", "I-module")
NER_TASK = tasks.Task("ner", "token_classification", TAGS, "f1", load=None, prepare=None)
EXAMPLES = [
    {"id": "a", "words": ["Call", "os.path.join", "from", "pathlib"], "tags": ["O", "B-function", "O", "B-module"]},
    {"id": "b", "words": ["Unrecognisably", "long", "words", "tokenise"], "tags": ["B-module", "I-module", "O", "O"]},
]


@pytest.fixture(scope="module")
def reference_tokenizer():
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(minilm_path())


def test_reference_labels_first_sub_tokens_of_the_tokens_ours_trains_on(reference_tokenizer):
    features = bench_finetune.features(EXAMPLES, "token_classification", reference_tokenizer, TAGS, max_length=8)
    ours = hf.load_tokenizer(minilm_path())
    assert bench_finetune.token_mismatches(EXAMPLES, NER_TASK, ours, features, max_length=8) == 0
    shifted = [{**f, "labels": [-100, *f["labels"][:-1]]} for f in features]  # a label on the wrong token
    assert bench_finetune.token_mismatches(EXAMPLES, NER_TASK, ours, shifted, max_length=8) == 2
    for ex, feature in zip(EXAMPLES, features):
        word_ids = reference_tokenizer(ex["words"], is_split_into_words=True, truncation=True,
                                       max_length=8).word_ids()
        assert len(feature["labels"]) == len(feature["input_ids"]) <= 8
        firsts = [i for i, w in enumerate(word_ids) if w is not None and w != (word_ids[i - 1] if i else None)]
        assert [feature["labels"][i] for i in firsts] == [TAGS.index(ex["tags"][word_ids[i]]) for i in firsts]
        assert all(label == -100 for i, label in enumerate(feature["labels"]) if i not in firsts)
    # "os.path.join" is several sub-tokens, so first-sub-token labelling leaves some -100 inside a word.
    assert sum(label == -100 for label in features[0]["labels"]) > 2


def test_reference_scores_only_the_labelled_positions():
    labels = np.array([[-100, 1, -100, 0, 3, -100], [-100, 3, 4, -100, -100, -100]])
    chosen = np.array([[0, 1, 2, 0, 0, 0], [3, 3, 0, 4, 4, 4]])  # the class each position's logits favour
    logits = np.eye(len(TAGS))[chosen] * 5.0
    got = bench_finetune.reference_metrics("token_classification", TAGS)(
        types.SimpleNamespace(predictions=logits, label_ids=labels))
    gold = [["B-function", "O", "B-module"], ["B-module", "I-module"]]
    predicted = [["B-function", "O", "O"], ["B-module", "O"]]
    assert got["f1"] == pytest.approx(seqeval_metrics.f1_score(gold, predicted))
    assert got["recall"] == pytest.approx(1 / 3)


def _side(values, seconds):
    return {"test.accuracy": bench_finetune._mean_std(values), "train_seconds": bench_finetune._mean_std(seconds)}


def test_within_noise_follows_the_standard_error_of_the_difference():
    close = bench_finetune.compare(_side([0.80, 0.82, 0.84], [10, 10, 10]), _side([0.81, 0.83, 0.85], [20, 20, 20]),
                                   "accuracy", seeds=3)
    assert close["difference"] == pytest.approx(-0.01)
    assert close["within_noise"] is True
    assert close["train_seconds_ratio"] == pytest.approx(0.5)
    far = bench_finetune.compare(_side([0.70, 0.71, 0.72], [10, 10, 10]), _side([0.81, 0.83, 0.85], [20, 20, 20]),
                                 "accuracy", seeds=3)
    assert far["within_noise"] is False
    one_seed = bench_finetune.compare(_side([0.8], [1]), _side([0.9], [1]), "accuracy", seeds=1)
    assert one_seed["within_noise"] is None and one_seed["standard_error"] is None


def test_subsample_is_fixed_and_keeps_split_order():
    examples = [{"id": str(i)} for i in range(50)]
    picked = tasks.subsample(examples, 10)
    assert picked == tasks.subsample(examples, 10) and len(picked) == 10
    assert [int(ex["id"]) for ex in picked] == sorted(int(ex["id"]) for ex in picked)
    assert tasks.subsample(examples, 0) == examples == tasks.subsample(examples, 99)


def test_results_sweep_has_every_task_and_backbone_with_its_own_metric():
    sw = sweep.load_sweep("configs/sweeps/finetune_tasks.py:modernbert=/tmp/backbone,seeds=2,epochs=1")
    rows = {(p.config.task, p.config.backbone, p.config.backbone_path) for p in sw.points}
    assert rows == {(name, backbone, path) for name in tasks.TASKS
                    for backbone, path in (("minilm", ""), ("dir", "/tmp/backbone"))}
    assert len(sw.points) == 2 * len(rows) and {p.config.train.epochs for p in sw.points} == {1}
    for point in sw.points:
        metric = tasks.TASKS[point.config.task].metric
        assert f"({metric})" in point.label and f"metrics.test.{metric}" in sw.metrics
