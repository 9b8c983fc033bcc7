"""Labelled examples through tokenisation and packing (finetune_jax.data / classification.batches):
labels follow their example into its slot, first-subtoken token labels as transformers' recipe
makes them, and bad input named by example id."""

import types

import numpy as np
import pytest

from finetune_jax import classification, data, tasks
from modernbert_jax import config as config_lib
from modernbert_jax import hf
from setfit_jax.fewshot import minilm_path

TAGS = ("O", "B-func", "I-func")


@pytest.fixture(scope="module")
def tokenizer():
    return hf.load_tokenizer(minilm_path())


def _config(task_name, *, batch_size=4, max_length=16):
    cfg = config_lib.load_config("configs/finetune.py:demo=true")
    cfg.task = task_name
    cfg.data.max_length = max_length
    cfg.train.batch_size = batch_size
    return cfg


def _register(monkeypatch, kind, labels):
    task = tasks.Task("tiny", kind, labels, "accuracy", lambda _: {}, lambda _: None)
    monkeypatch.setitem(tasks.TASKS, "tiny", task)
    return task


MODULE = types.SimpleNamespace(config=config_lib.bert_config(num_layers=1, hidden_size=32, num_heads=2,
                                                             intermediate_size=64))


def test_labels_follow_their_example_through_packing(monkeypatch, tokenizer):
    _register(monkeypatch, "classification", ("a", "b", "c"))
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    examples = [{"id": f"ex{i}", "text": " ".join(words[: 1 + i]), "label": i % 3} for i in range(10)]
    batches = classification.batches(examples, tokenizer, MODULE, _config("tiny"), seed=3, epoch=1)
    seen = {}
    for batch in batches:
        flat_ids, slot = batch["input_ids"].reshape(-1), batch["token_slot"].reshape(-1)
        for s in np.flatnonzero(batch["slot_valid"]):
            tokens = flat_ids[slot == s]
            text = tokenizer.decode(tokens.tolist())
            seen[text] = int(batch["label"][s])
    # One shape per epoch (the step compiles once): the rows the fullest batch needs, no more.
    assert len({b["input_ids"].shape for b in batches}) == 1
    assert batches[0]["input_ids"].shape[0] == max(int(b["segment_ids"].max(axis=1).astype(bool).sum()) for b in batches)
    # Every example exactly once, each with its own label, whatever row and slot it was packed into.
    assert seen == {ex["text"]: ex["label"] for ex in examples}
    other = classification.batches(examples, tokenizer, MODULE, _config("tiny"), seed=3, epoch=2)
    assert any((a["label"] != b["label"]).any() for a, b in zip(batches, other))  # reshuffled per epoch
    again = classification.batches(examples, tokenizer, MODULE, _config("tiny"), seed=3, epoch=1)
    assert all((a["input_ids"] == b["input_ids"]).all() for a, b in zip(batches, again))  # same (seed, epoch)


def test_first_subtoken_labels_match_transformers_recipe(tokenizer):
    from transformers import AutoTokenizer

    examples = [{"id": "w", "words": ["Tokenization", "uses", "str.maketrans", "here"],
                 "tags": ["O", "O", "B-func", "O"]},
                {"id": "v", "words": ["call", "os.path.join", "now"], "tags": ["O", "B-func", "O"]}]
    ids, labels = data.encode_words(examples, tokenizer, 64, TAGS)
    reference = AutoTokenizer.from_pretrained(minilm_path())
    for ex, our_ids, our_labels in zip(examples, ids, labels):
        enc = reference(ex["words"], is_split_into_words=True)
        want, previous = [], None  # run_ner's tokenize_and_align_labels, label_all_tokens=False
        for word in enc.word_ids():
            want.append(-100 if word is None or word == previous else TAGS.index(ex["tags"][word]))
            previous = word
        assert our_ids == enc["input_ids"]
        assert our_labels == want
    assert sum(label != -100 for label in labels[0]) == 4  # one label per word, sub-tokens ignored

    batch = data.pack_batch(ids, row_len=64, num_slots=2, pad_id=0, token_labels=labels)
    flat = batch["token_labels"].reshape(-1)
    for i, lab in enumerate(labels):
        start = batch["slot_first"][i]
        assert flat[start: start + len(lab)].tolist() == lab
    assert (flat != -100).sum() == sum(len(ex["words"]) for ex in examples)


def test_bad_input_names_the_example(monkeypatch, tokenizer):
    _register(monkeypatch, "classification", ("a", "b"))
    cfg = _config("tiny")
    with pytest.raises(ValueError, match=r"example 'bad7'.*label 2.*\[0, 2\)"):
        classification.batches([{"id": "ok", "text": "x", "label": 1}, {"id": "bad7", "text": "y", "label": 2}],
                               tokenizer, MODULE, cfg, seed=0, epoch=0)
    with pytest.raises(ValueError, match=r"example 'e0'.*'text' is empty"):
        classification.batches([{"id": "e0", "text": "  ", "label": 0}], tokenizer, MODULE, cfg, seed=0, epoch=0)
    with pytest.raises(ValueError, match=r"example 'm'.*label 5"):
        data.sequence_targets([{"id": "m", "labels": [0, 5]}], "multi_label", 3)
    with pytest.raises(ValueError, match=r"example 't1'.*tag 'B-class' is not one of"):
        data.encode_words([{"id": "t1", "words": ["a", "b"], "tags": ["O", "B-class"]}], tokenizer, 16, TAGS)
    with pytest.raises(ValueError, match=r"example 't2'.*1 tags for 2 words"):
        data.encode_words([{"id": "t2", "words": ["a", "b"], "tags": ["O"]}], tokenizer, 16, TAGS)
