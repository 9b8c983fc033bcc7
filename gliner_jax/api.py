"""``GLiNER``: load, predict and save, with the reference library's interface.

``GLiNER.from_pretrained(path)`` reads a directory written by us or by the reference
``gliner`` library; ``predict_entities(text, labels, threshold=0.5, flat_ner=True,
multi_label=False)`` returns ``[{"start", "end", "text", "label", "score"}]`` with character
offsets. Texts longer than the window (``max_len`` words, or the encoder's token limit)
are split into overlapping word windows whose candidate spans are merged before the greedy
selection; label lists whose prompt would crowd out the text are split across passes.
A word the tokenizer erases gets no span and shifts no other word, and a word longer than a
window is cut into one-token pieces (``processor.model_pieces``): on ordinary text, the
reference's answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gliner_jax import checkpoint, decoding, processor
from gliner_jax.config import GLiNERConfig
from gliner_jax.model import GLiNERModel, check_batch
from gliner_jax.words import split_words
from modernbert_jax import config as config_lib
from modernbert_jax import hf, precision, safe_io
from modernbert_jax.model import Encoder

MAX_TOKENS = 512  # the reference tokenizer's truncation length (model_max_length of the released backbones)


def normalize_labels(labels: str | Sequence[str]) -> list[str]:
    """Deduplicate (keeping order) and check labels; an empty list is allowed (no entities)."""
    if isinstance(labels, str):
        labels = [labels]
    if not isinstance(labels, (list, tuple)):
        raise TypeError(f"labels must be a str or a list of str, got {type(labels).__name__}")
    for i, label in enumerate(labels):
        if not isinstance(label, str):
            raise TypeError(f"labels[{i}] must be a str, got {type(label).__name__}")
        if not label.strip():
            raise ValueError(f"labels[{i}]={label!r} is empty; every entity type needs a name")
    return list(dict.fromkeys(labels))


class GLiNER:
    """A GLiNER span model on an encoder of any family in ``hf.SUPPORTED``, ready for inference."""

    def __init__(self, config: GLiNERConfig, encoder_config: ml_collections.ConfigDict, params: dict,
                 tokenizer, *, max_tokens: int | None = None, tokenizer_config: dict | None = None,
                 matmul_dtype: str | None = None):
        """``matmul_dtype="bfloat16"`` runs the encoder's and head's matmuls on bfloat16 inputs with
        float32 accumulation (fast on CPUs with AMX/AVX512-BF16); scores then differ from float32
        in the third decimal, so spans within that distance of the threshold can flip. ``None``
        keeps ``encoder_config.matmul_dtype`` (float32 matmuls by default)."""
        config.validate()
        if matmul_dtype is not None:
            encoder_config = config_lib.replaced(encoder_config, matmul_dtype=matmul_dtype)
        # Hugging Face's tokenizer_config.json travels with the checkpoint so that the
        # reference library (AutoTokenizer) can read our directories too.
        self.tokenizer_config = tokenizer_config
        self.config = config
        self.encoder_config = encoder_config
        self.params = params
        self.tokenizer = tokenizer
        vocab = params["encoder"]["embeddings"]["tok_embeddings"]["embedding"].shape[0]
        if tokenizer.get_vocab_size(with_added_tokens=True) > vocab:
            raise ValueError(f"tokenizer has {tokenizer.get_vocab_size(with_added_tokens=True)} tokens "
                             f"but the embedding table only {vocab} rows")
        self.max_tokens = max_tokens or min(MAX_TOKENS, config_lib.max_length(encoder_config))
        self.module = GLiNERModel(encoder_config, config)
        self._probs = jax.jit(lambda p, b: jax.nn.sigmoid(self.module.apply({"params": p}, b)[0]))
        self._cast_params: tuple[dict, dict] | None = None  # (self.params, their bf16-kernel copy)
        # What the tokenizer wraps every input in ([CLS] ... [SEP], <s> ... </s>): outside the word budget.
        self._special_tokens = tokenizer.num_special_tokens_to_add(is_pair=False)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_backbone(cls, backbone: str | Path, config: GLiNERConfig, seed: int = 0) -> "GLiNER":
        """A new model: pretrained encoder at ``backbone`` (a Hugging Face directory of a family in
        ``hf.SUPPORTED`` with its tokenizer, or a finished pretraining workdir), randomly initialised head.

        As the reference, the token table is resized to the tokenizer's size once the prompt tokens
        are added: grown for BERT-sized vocabularies, cut for tables padded past the tokenizer (DeBERTa-v3
        ships 128,100 rows for 128,001 tokens)."""
        backbone = hf.resolve_dir(backbone)
        encoder, enc_params = hf.from_pretrained(backbone)
        tok = hf.load_tokenizer(backbone, processor.prompt_tokens(config.ent_token, config.sep_token))
        new_vocab = tok.get_vocab_size(with_added_tokens=True)
        rng_embed, rng_head = jax.random.split(jax.random.key(seed))
        enc_params = resize_embeddings(enc_params, new_vocab, rng_embed)
        encoder_config = config_lib.replaced(encoder.config, vocab_size=new_vocab)
        config.class_token_index = tok.token_to_id(config.ent_token)
        config.vocab_size = new_vocab
        config.model_name = str(backbone)
        module = GLiNERModel(encoder_config, config)
        tok_config = _read_json(backbone / "tokenizer_config.json")
        batch = processor.collate(processor.encode_batch(tok, [["a"]], [["x"]]), pad_id=encoder_config.pad_token_id)
        params = module.init(rng_head, batch)["params"]
        params = dict(params)
        params["encoder"] = enc_params
        return cls(config, encoder_config, params, tok, tokenizer_config=tok_config)

    @classmethod
    def from_pretrained(cls, path: str | Path, matmul_dtype: str | None = None) -> "GLiNER":
        """Load a GLiNER directory (ours or the reference library's); ``matmul_dtype`` as in ``__init__``."""
        path = Path(path)
        config_file = path / "gliner_config.json"
        if not config_file.exists():
            raise FileNotFoundError(f"no gliner_config.json in {path}")
        values = safe_io.read_json(config_file, what="a GLiNER config")
        checkpoint.check_backbone(values.get("encoder_config"), str(path))
        config = GLiNERConfig.from_dict(values)
        tensors = hf.read_tensors(path)
        encoder, enc_params = checkpoint.load_encoder(values["encoder_config"], tensors)
        has_projection = config.hidden_size != encoder.config.hidden_size
        params = checkpoint.head_from_torch(tensors, config.num_rnn_layers, has_projection)
        params["encoder"] = enc_params
        params = jax.tree.map(jnp.asarray, params)
        tok_dir, tok = _load_tokenizer((path, Path(config.model_name)), config)
        if config.class_token_index not in (-1, tok.token_to_id(config.ent_token)):
            raise ValueError(f"{path}: class_token_index={config.class_token_index} but the tokenizer puts "
                             f"{config.ent_token} at {tok.token_to_id(config.ent_token)}")
        return cls(config, encoder.config, params, tok, tokenizer_config=_read_json(tok_dir / "tokenizer_config.json"),
                   matmul_dtype=matmul_dtype)

    def save_pretrained(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the reference layout: gliner_config.json, model.safetensors, tokenizer.json (and
        tokenizer_config.json when the model has one).

        Only those files are written, each atomically (``safe_io.write_files``): other files in
        ``path`` are kept and an interrupted save leaves the previous one loadable. Refuses to
        replace any of them unless ``overwrite=True``.
        """
        from safetensors.numpy import save_file

        encoder_hf, tensors = checkpoint.encoder_tensors(Encoder(self.encoder_config), self.params["encoder"])
        tensors.update(checkpoint.head_to_torch({k: v for k, v in self.params.items() if k != "encoder"}))
        values = self.config.to_dict()
        values.update(encoder_config=encoder_hf, model_type="gliner", fine_tune=True, fuse_layers=False,
                      post_fusion_schema="", span_encoder_config=None)
        files: dict[str, safe_io.Content] = {
            "model.safetensors": lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}),
            "tokenizer.json": self.tokenizer.to_str(pretty=True),
        }
        if self.tokenizer_config is not None:
            files["tokenizer_config.json"] = json.dumps(self.tokenizer_config, indent=2)
        files["gliner_config.json"] = json.dumps(values, indent=2)  # last: what marks a GLiNER directory
        return safe_io.write_files(path, files, overwrite=overwrite)

    # ------------------------------------------------------------------ inference

    def predict_entities(self, text: str, labels: str | Sequence[str], threshold: float = 0.5,
                         flat_ner: bool = True, multi_label: bool = False, batch_size: int = 8) -> list[dict[str, Any]]:
        """Entities in ``text`` as ``{"start", "end", "text", "label", "score"}`` (character offsets)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self.batch_predict_entities([text], labels, threshold, flat_ner, multi_label, batch_size)[0]

    def batch_predict_entities(self, texts: Sequence[str], labels: str | Sequence[str], threshold: float = 0.5,
                               flat_ner: bool = True, multi_label: bool = False,
                               batch_size: int = 8) -> list[list[dict[str, Any]]]:
        """``predict_entities`` for each text, batching windows ``batch_size`` at a time."""
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise TypeError(f"texts must be a list of str, got {type(texts).__name__}")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
        for name, value in (("flat_ner", flat_ner), ("multi_label", multi_label)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
        _check_scoring_args(threshold, batch_size)
        labels = normalize_labels(labels)
        words = [split_words(t) for t in texts]
        pieces, candidates = self._score([[w.text for w in ws] for ws in words], labels, threshold, batch_size)
        results = []
        for text, ws, units, spans in zip(texts, words, pieces, candidates):
            entities = []
            for i in decoding.greedy_search(spans, flat_ner, multi_label).tolist():
                first, last = units[spans.start[i]], units[spans.end[i]]
                start, end = ws[first.word].start + first.start, ws[last.word].start + last.end
                entities.append({"start": start, "end": end, "text": text[start:end],
                                 "label": labels[spans.label[i]], "score": float(spans.score[i])})
            results.append(entities)
        return results

    def score_candidates(self, texts: Sequence[Sequence[str]], labels: list[str], threshold: float,
                         batch_size: int = 8) -> list[decoding.Candidates]:
        """Candidate spans above ``threshold`` per text (word indices, label indices into ``labels``),
        over all windows and label passes. A span that starts or ends inside a word cut into pieces
        (see ``processor.model_pieces``) counts as the span of the words it touches."""
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise TypeError(f"texts must be a list of word lists, got {type(texts).__name__}")
        for i, words in enumerate(texts):
            if isinstance(words, str) or not isinstance(words, (list, tuple)) or not all(
                    isinstance(w, str) for w in words):
                raise TypeError(f"texts[{i}] must be a list of str (words), got {type(words).__name__}")
        _check_scoring_args(threshold, batch_size)
        pieces, found = self._score(texts, labels, threshold, batch_size)
        out = []
        for units, spans in zip(pieces, found):
            word_of = np.asarray([p.word for p in units], np.int64)
            out.append(decoding.merge([spans._replace(start=word_of[spans.start], end=word_of[spans.end])]))
        return out

    def _score(self, texts: Sequence[Sequence[str]], labels: list[str], threshold: float,
               batch_size: int) -> tuple[list[list[processor.Piece]], list[decoding.Candidates]]:
        """Each text's pieces (``processor.model_pieces``) and its candidate spans above ``threshold``
        as indices into them."""
        passes = self._passes(labels)
        # Every pass must see the same pieces: a word stays whole if it fits the smallest budget.
        pieces = processor.model_pieces(self.tokenizer, texts, min((b for _, b in passes), default=self.max_tokens))
        jobs = []  # (text index, first piece, piece texts, labels, index of the first label)
        offset = 0
        for label_chunk, budget in passes:
            for i, (words, units) in enumerate(zip(texts, pieces)):
                unit_texts = [words[p.word][p.start: p.end] for p in units]
                for first, last in self._windows([p.tokens for p in units], budget):
                    jobs.append((i, first, unit_texts[first:last], label_chunk, offset))
            offset += len(label_chunk)
        parts: list[list[decoding.Candidates]] = [[] for _ in texts]
        encoded = processor.encode_batch(self.tokenizer, [j[2] for j in jobs], [j[3] for j in jobs],
                                         ent_token=self.config.ent_token, sep_token=self.config.sep_token,
                                         embed_ent_token=self.config.embed_ent_token)
        for indices in self._plan_batches([len(e.input_ids) for e in encoded], batch_size):
            chunk = [jobs[i] for i in indices]
            rows = 1 << (len(chunk) - 1).bit_length()  # batch sizes are powers of two: few compilations
            batch = check_batch(self.encoder_config, processor.collate(
                [encoded[i] for i in indices], batch_size=rows, pad_id=self.encoder_config.pad_token_id))
            probs = np.asarray(self._probs(self._inference_params(), batch))
            for b, (i, first, words, label_chunk, label_offset) in enumerate(chunk):
                found = decoding.candidate_spans(probs[b, :, :, : len(label_chunk)], len(words), threshold, label_offset)
                parts[i].append(found._replace(start=found.start + first, end=found.end + first))
        return pieces, [decoding.merge(p) for p in parts]

    def _inference_params(self) -> dict:
        """``self.params``; with bfloat16 matmuls, a copy whose Dense kernels are stored in bfloat16,
        made once per ``self.params`` (training may assign new ones)."""
        if self.encoder_config.matmul_dtype != "bfloat16":
            return self.params
        if self._cast_params is None or self._cast_params[0] is not self.params:
            self._cast_params = (self.params, precision.bf16_kernels(self.params))
        return self._cast_params[1]

    @staticmethod
    def _plan_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
        """Group jobs by length so padding stays small: sorted by token count, a batch closes at
        ``batch_size`` rows or when its padded size would pass ``batch_size * 128`` tokens."""
        budget = batch_size * 128
        batches: list[list[int]] = []
        current: list[int] = []
        for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
            rows = 1 << len(current).bit_length()  # padded rows once this job joins
            if current and (len(current) == batch_size or rows * processor.bucket(lengths[i]) > budget):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _count_tokens(self, words: Sequence[str]) -> int:
        return len(self.tokenizer.encode(list(words), is_pretokenized=True, add_special_tokens=False).ids)

    def _passes(self, labels: list[str]) -> list[tuple[list[str], int]]:
        """``(label chunk, token budget of the text)`` per pass: what the chunk's prompt and the
        tokenizer's wrapping leave of ``max_tokens``."""
        return [(chunk, self.max_tokens - self._special_tokens - self._count_tokens(
            processor.build_prompt(chunk, self.config.ent_token, self.config.sep_token)))
            for chunk in self._label_chunks(labels)]

    def _label_chunks(self, labels: list[str]) -> list[list[str]]:
        """Split labels so each pass's prompt uses at most half of the token budget."""
        if not labels:
            return []
        budget = self.max_tokens // 2
        chunks: list[list[str]] = [[]]
        used = 1  # <<SEP>>
        for label in labels:
            tokens = self._count_tokens([label])
            if not tokens:  # its <<ENT>> would be followed by the next one: no type name at all
                raise ValueError(f"label {label!r} tokenises to nothing (only characters the tokenizer drops)")
            cost = 1 + tokens
            if cost + 1 > budget:
                raise ValueError(f"label {label!r} alone needs {cost} tokens; the limit is {budget - 1}")
            if chunks[-1] and used + cost > budget:
                chunks.append([])
                used = 1
            chunks[-1].append(label)
            used += cost
        return chunks

    def _windows(self, counts: Sequence[int], token_budget: int) -> list[tuple[int, int]]:
        """Windows ``[first, last)`` of at most ``max_len`` pieces and ``token_budget`` tokens, where
        piece ``i`` takes ``counts[i]`` tokens.

        Consecutive windows overlap by ``max_width`` pieces so every span of up to ``max_width``
        pieces lies wholly inside some window.
        """
        n = len(counts)
        max_len = self.config.max_len
        overlap = self.config.max_width
        windows, first = [], 0
        while first < n:
            last, used = first, 0
            while last < n and last - first < max_len and used + counts[last] <= token_budget:
                used += counts[last]
                last += 1
            if last == first:  # model_pieces cuts such words; only a tokenizer that grows a piece gets here
                raise ValueError(f"piece {first} ({counts[first]} tokens) alone exceeds the token budget of "
                                 f"{token_budget}")
            windows.append((first, last))
            if last == n:
                break
            first = max(first + 1, last - overlap)
        return windows


def _check_scoring_args(threshold: float, batch_size: int) -> None:
    """``threshold`` a number in [0, 1] and ``batch_size`` an int >= 1, as inference takes them."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise TypeError(f"threshold must be a number in [0, 1], got {type(threshold).__name__} {threshold!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold={threshold} must be in [0, 1]")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int >= 1, got {type(batch_size).__name__} {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")


def _read_json(path: Path) -> dict | None:
    return safe_io.read_json(path) if path.exists() else None


def _load_tokenizer(dirs: Sequence[Path], config: GLiNERConfig) -> tuple[Path, Any]:
    """``(directory, tokenizer)`` from the first of ``dirs`` that holds a tokenizer ``hf.load_tokenizer`` reads."""
    for directory in dirs:
        try:
            return directory, hf.load_tokenizer(directory, processor.prompt_tokens(config.ent_token, config.sep_token))
        except FileNotFoundError:
            continue
    raise FileNotFoundError(f"no tokenizer in {dirs[0]} or in model_name={str(dirs[1])!r}")


def resize_embeddings(enc_params: dict, vocab_size: int, rng: jax.Array) -> dict:
    """The token table with exactly ``vocab_size`` rows, as the reference's ``resize_token_embeddings``:
    new rows are drawn around the old rows' mean; rows past ``vocab_size`` (no token reaches them) are cut."""
    table = enc_params["embeddings"]["tok_embeddings"]["embedding"]
    extra = vocab_size - table.shape[0]
    if extra == 0:
        return enc_params
    if extra < 0:
        resized = table[:vocab_size]
    else:
        mean, std = table.mean(axis=0), table.std(axis=0)
        resized = jnp.concatenate([table, mean + std * jax.random.normal(rng, (extra, table.shape[1]), table.dtype)])
    out = jax.tree.map(lambda x: x, enc_params)
    out["embeddings"]["tok_embeddings"]["embedding"] = resized
    return out
