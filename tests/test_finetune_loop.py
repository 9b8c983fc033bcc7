"""finetune_jax.loop.train end to end on a tiny random BERT and an in-memory task: the loss falls,
the best epoch is kept and exported so transformers loads it, an interrupted run resumes to the
same numbers; layer-wise LR decay by path; metrics equal scikit-learn's and seqeval's."""

import json
import shutil

import jax
import numpy as np
import optax
import pytest

from finetune_jax import loop, metrics, tasks
from modernbert_jax import config as config_lib
from modernbert_jax import model as model_lib
from modernbert_jax import optim
from modernbert_jax.train import checkpoint as ckpt_lib
from setfit_jax.fewshot import minilm_path

LABELS = ("fruit", "vehicle")
FRUIT = "apple banana cherry grape lemon mango melon peach pear plum".split()
VEHICLE = "car truck bus train tram bike boat ship plane van".split()


def _split(rng, n, prefix):
    out = []
    for i in range(n):
        label = i % 2
        words = rng.choice(VEHICLE if label else FRUIT, size=int(rng.integers(2, 6)))
        out.append({"id": f"{prefix}{i}", "text": " ".join(words), "label": label})
    return out


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    """A random 2-layer BERT as a Hugging Face directory with all-MiniLM-L6-v2's tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bert")
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(path)
    shutil.copy(f"{minilm_path()}/tokenizer.json", path / "tokenizer.json")
    return path


@pytest.fixture
def config(monkeypatch, backbone, tmp_path):
    rng = np.random.default_rng(0)
    splits = {"train": _split(rng, 24, "tr"), "validation": _split(rng, 8, "va"), "test": _split(rng, 8, "te")}
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "data.json").write_text(json.dumps(splits))
    monkeypatch.setitem(tasks.TASKS, "tiny", tasks.Task(
        "tiny", "classification", LABELS, "accuracy", lambda _: splits,
        lambda _: type("Builder", (), {"data_dir": prepared})()))
    cfg = config_lib.load_config("configs/finetune.py:demo=true,backbone=dir")
    cfg.task, cfg.backbone_path, cfg.progress_bar = "tiny", str(backbone), False
    cfg.data.max_length = 16
    cfg.train.update(epochs=2, batch_size=8, learning_rate=3e-3, checkpoint_every=2, log_every=1,
                     early_stopping_patience=0)
    cfg.eval.batch_size = 8
    return cfg


def _train_log(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_train_keeps_best_resumes_and_exports(config, tmp_path, monkeypatch):
    full = tmp_path / "full"
    result = loop.train(config, str(full))
    losses = [r["loss"] for r in _train_log(full) if r["split"] == "train"]
    assert len(losses) == 6 and np.mean(losses[-3:]) < np.mean(losses[:3])  # 2 epochs of 3 steps
    history = [h["accuracy"] for h in result["history"]]
    assert result["best_epoch"] == int(np.argmax(history)) + 1  # first of the best, epochs counted from 1
    assert result["metrics"]["validation"]["accuracy"] == pytest.approx(max(history))  # test/val use the best params
    assert result["train"]["steps"] == 6

    # Interrupt after the checkpoint of step 2 (mid-epoch 1), then rerun the same command.
    interrupted = tmp_path / "interrupted"
    save = ckpt_lib.Checkpointer.save

    def save_then_die(self, step, *args, **kwargs):
        started = save(self, step, *args, **kwargs)
        if step == 2 and self.directory.endswith(loop.CHECKPOINTS):
            self.wait()
            raise KeyboardInterrupt("killed")
        return started

    monkeypatch.setattr(ckpt_lib.Checkpointer, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        loop.train(config, str(interrupted))
    monkeypatch.setattr(ckpt_lib.Checkpointer, "save", save)
    resumed = loop.train(config, str(interrupted))
    assert resumed["history"] == result["history"]
    assert resumed["metrics"] == result["metrics"]

    # The exported best model loads in transformers with our labels and gives our logits.
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from modernbert_jax import hf

    reference = AutoModelForSequenceClassification.from_pretrained(full / loop.MODEL_DIR).eval()
    assert reference.config.id2label == dict(enumerate(LABELS))
    encoded = AutoTokenizer.from_pretrained(full / loop.MODEL_DIR)(["apple pear", "bus tram van"], padding=True,
                                                                   return_tensors="pt")
    with torch.no_grad():
        want = reference(**encoded).logits.numpy()
    module, params = hf.from_pretrained(full / loop.MODEL_DIR, head="sequence_classification")
    got = module.apply({"params": params}, encoded["input_ids"].numpy(), attention_mask=encoded["attention_mask"].numpy())
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-4)


def test_layer_lr_decay_multipliers_by_path():
    cfg = config_lib.bert_config(num_layers=2, hidden_size=32, num_heads=2, intermediate_size=64, vocab_size=64)
    params = model_lib.init_params(model_lib.SequenceClassifier(cfg, 3), jax.random.key(0))
    d = 0.5
    mult = optim.layer_lr_multipliers(params, 2, d)
    assert set(jax.tree.leaves(mult["encoder"]["embeddings"])) == {d ** 3}
    assert set(jax.tree.leaves(mult["encoder"]["layers_0"])) == {d ** 2}
    assert set(jax.tree.leaves(mult["encoder"]["layers_1"])) == {d ** 1}
    assert set(jax.tree.leaves(mult["classifier"])) == {1.0}
    # Chained after SGD it is a per-parameter learning rate.
    tx = optax.chain(optax.sgd(1.0), optim.scale_per_parameter(mult))
    grads = jax.tree.map(np.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params))
    for u, m in zip(jax.tree.leaves(updates), jax.tree.leaves(mult)):
        np.testing.assert_allclose(np.asarray(u), -m)
    with pytest.raises(ValueError, match="layer 1.*num_layers=1"):
        optim.layer_lr_multipliers(params, 1, d)


def test_metrics_equal_reference_libraries():
    from seqeval import metrics as sq
    from sklearn.metrics import f1_score

    labels, predicted = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]
    got = metrics.classification(predicted, labels, ("a", "b", "c"))
    assert got["accuracy"] == pytest.approx(4 / 6)
    assert got["macro_f1"] == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert got["macro_f1"] != pytest.approx(got["micro_f1"])  # a deleted average would show
    assert got["f1/b"] == pytest.approx(f1_score(labels, predicted, average=None)[1])
    gold = [["B-func", "I-func", "O", "B-class"], ["O", "B-func"]]
    pred = [["B-func", "O", "O", "B-class"], ["O", "B-func"]]
    got = metrics.token_classification(pred, gold)
    # Entity level: the cut "func" span is wrong as a whole (token accuracy is 5/6, entity F1 2/3).
    assert got["f1"] == pytest.approx(sq.f1_score(gold, pred)) == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert got["accuracy"] == pytest.approx(5 / 6)
    reg = metrics.regression([0.1, 0.4, 0.35, 0.8], [0.0, 0.5, 0.3, 1.0])
    from scipy import stats
    assert reg["spearman"] == pytest.approx(stats.spearmanr([0.1, 0.4, 0.35, 0.8], [0.0, 0.5, 0.3, 1.0])[0])


SHARDED_RUN = """
import json, sys
from pathlib import Path
import jax
from finetune_jax import loop, tasks
from modernbert_jax import config as config_lib
splits_file, backbone, workdir = sys.argv[1:4]
splits = json.loads(Path(splits_file).read_text())
tasks.TASKS["tiny"] = tasks.Task("tiny", "classification", ("fruit", "vehicle"), "accuracy", lambda _: splits,
                                 lambda _: type("Builder", (), {"data_dir": Path(splits_file).parent})())
cfg = config_lib.load_config("configs/finetune.py:demo=true,backbone=dir")
cfg.task, cfg.backbone_path, cfg.progress_bar = "tiny", backbone, False
cfg.data.max_length = 16
cfg.train.update(epochs=1, batch_size=8, learning_rate=3e-3, log_every=1)
cfg.eval.batch_size = 8
cfg.mesh.update(data=4, fsdp=2)
assert jax.device_count() == 8
print(json.dumps(loop.train(cfg, workdir)["metrics"]))
"""


def test_sharded_run_gives_the_single_device_numbers(config, backbone, tmp_path):
    """Rows split over a (data=4, fsdp=2) mesh of 8 host devices (rows padded to a multiple of 8,
    parameters placed by the sharding rules) train to the losses and metrics of one device."""
    import os
    import subprocess
    import sys

    config.train.epochs = 1
    single = loop.train(config, str(tmp_path / "single"))
    splits_file = tmp_path / "prepared" / "data.json"  # the fixture's splits
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    run = subprocess.run([sys.executable, "-c", SHARDED_RUN, str(splits_file), str(backbone), str(tmp_path / "sharded")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    sharded = json.loads(run.stdout.strip().splitlines()[-1])
    losses = {name: [r["loss"] for r in _train_log(tmp_path / name) if r["split"] == "train"]
              for name in ("single", "sharded")}
    np.testing.assert_allclose(losses["sharded"], losses["single"], rtol=1e-4)
    for split in ("validation", "test"):
        assert sharded[split]["accuracy"] == pytest.approx(single["metrics"][split]["accuracy"])
