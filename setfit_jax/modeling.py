"""``SetFitModel``: a sentence encoder body plus a classification head, with the reference's API.

``SetFitModel.from_pretrained(path)`` takes a sentence-transformers directory (e.g.
all-MiniLM-L6-v2, paraphrase-mpnet-base-v2, an XLM-R body), a Hugging Face directory of any
``modernbert_jax.hf.SUPPORTED`` family, or a directory this class saved.
``SetFitModel.from_encoder(module, params, tokenizer)`` wraps any ``modernbert_jax`` Encoder or
MaskedLM parameters (a pretraining checkpoint) directly.

``save_pretrained`` writes a sentence-transformers layout (``modules.json``, ``1_Pooling``,
``sentence_bert_config.json``, the transformer through ``modernbert_jax.hf.save_pretrained``,
``tokenizer.json``) plus ``config_setfit.json`` and the head: ``model_head.pkl`` (joblib, like the
reference -- loading it unpickles, so only load directories you trust) or ``model_head.npz`` for
the differentiable head.

Labels: heads work on class ids ``0..C-1``; ``labels`` maps them back, so ``predict`` returns the
values the model was trained on (strings or ints). Multi-label models return 0/1 matrices.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, Callable, Sequence

import jax.numpy as jnp
import numpy as np
import tokenizers

from modernbert_jax import config as config_lib, hf, model as model_lib, safe_io
from setfit_jax import heads
from setfit_jax.encoder import SentenceEncoder

CONFIG_NAME = "config_setfit.json"
_HEAD_NPZ, _HEAD_PKL = "model_head.npz", "model_head.pkl"  # the differentiable head, the scikit-learn one
_POOLING_KEYS = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens", "max": "pooling_mode_max_tokens"}


class SetFitModel:
    """Body (``SentenceEncoder``) + head (scikit-learn ``LogisticRegression`` or ``DifferentiableHead``)."""

    def __init__(
        self,
        model_body: SentenceEncoder,
        model_head: Any = None,
        *,
        labels: Sequence | None = None,
        multi_target_strategy: str | None = None,
        normalize_embeddings: bool = False,
        use_differentiable_head: bool = False,
        head_params: dict | None = None,
    ) -> None:
        if multi_target_strategy is not None and multi_target_strategy not in heads.MULTI_TARGET_STRATEGIES:
            raise ValueError(f"multi_target_strategy={multi_target_strategy!r}: expected one of "
                             f"{heads.MULTI_TARGET_STRATEGIES}")
        self.model_body = model_body
        self.multi_target_strategy = multi_target_strategy
        self.normalize_embeddings = normalize_embeddings
        self.labels = list(labels) if labels is not None else None
        if self.labels is not None and (not self.labels or len(set(self.labels)) != len(self.labels)):
            raise ValueError(f"labels={self.labels!r} must be distinct class names, one per class (or None: "
                             "set from the training labels)")
        self.head_params = dict(head_params or {})
        if model_head is None:
            if use_differentiable_head:
                out = len(self.labels) if self.labels else self.head_params.pop("out_features", 2)
                model_head = heads.DifferentiableHead(model_body.dim, out, multitarget=multi_target_strategy is not None,
                                                      **self.head_params)
            else:
                model_head = heads.logistic_regression(multi_target_strategy, **self.head_params)
        self.model_head = model_head
        self.fitted = False

    @property
    def has_differentiable_head(self) -> bool:
        return isinstance(self.model_head, heads.DifferentiableHead)

    @property
    def multilabel(self) -> bool:
        return self.multi_target_strategy is not None

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, max_seq_length: int | None = None, **kwargs) -> "SetFitModel":
        """Load a body (and, for our own saved models, the head and labels) from ``path``."""
        path = Path(path)
        body = SentenceEncoder.from_pretrained(path, max_seq_length=max_seq_length)
        config_file = path / CONFIG_NAME
        if not config_file.exists():
            return cls(body, **kwargs)
        saved = safe_io.read_json(config_file, what="a SetFit config")
        kwargs.setdefault("labels", saved.get("labels"))
        kwargs.setdefault("normalize_embeddings", saved.get("normalize_embeddings", False))
        kwargs.setdefault("multi_target_strategy", saved.get("multi_target_strategy"))
        head = None
        if (path / _HEAD_NPZ).exists():
            arrays = _read_head(path / _HEAD_NPZ, lambda f: dict(np.load(f)))
            if {"kernel", "bias"} - arrays.keys():
                raise ValueError(f"{path / _HEAD_NPZ}: holds {sorted(arrays)}, expected the arrays kernel and bias")
            head = heads.DifferentiableHead(int(arrays["kernel"].shape[0]), int(arrays["kernel"].shape[1]),
                                            multitarget=kwargs["multi_target_strategy"] is not None,
                                            **saved.get("head", {}))
            head.params = {k: jnp.asarray(arrays[k]) for k in ("kernel", "bias")}
        elif (path / _HEAD_PKL).exists():
            import joblib
            head = _read_head(path / _HEAD_PKL, joblib.load)
        model = cls(body, head, **kwargs)
        model.fitted = head is not None
        return model

    @classmethod
    def from_encoder(cls, module, params, tokenizer: tokenizers.Tokenizer | str | os.PathLike, *,
                     max_seq_length: int | None = None, pooling: str = "mean", normalize: bool = False,
                     **kwargs) -> "SetFitModel":
        """Wrap ``modernbert_jax`` Encoder or MaskedLM parameters (the MLM head is dropped).

        ``max_seq_length`` defaults to 512 tokens or the model's usable positions if fewer; a
        larger explicit value is an error."""
        if isinstance(module, model_lib.MaskedLM):
            module, params = model_lib.Encoder(module.config), params["encoder"]
        elif not isinstance(module, model_lib.Encoder):
            raise TypeError(f"from_encoder takes a modernbert_jax Encoder or MaskedLM, not {type(module).__name__}")
        if not isinstance(tokenizer, tokenizers.Tokenizer):
            tokenizer = hf.load_tokenizer(tokenizer)
        if max_seq_length is None:
            max_seq_length = min(512, config_lib.max_length(module.config))
        body = SentenceEncoder(module, params, tokenizer, max_seq_length, pooling, normalize)
        return cls(body, **kwargs)

    # -- inference -------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], body_params=None) -> np.ndarray:
        """Sentence embeddings ``[N, D]`` (normalised if the model or ``normalize_embeddings`` says so)."""
        emb = self.model_body.encode(_text_list(texts, "encode"), params=body_params)
        if self.normalize_embeddings:
            emb = emb / np.maximum(np.linalg.norm(emb, axis=-1, keepdims=True), 1e-12)
        return emb

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("the head is not trained: call Trainer(model, ...).train() first")

    def _sklearn_head(self, method: str, emb: np.ndarray) -> Any:
        """``model_head.<method>(emb)``. scikit-learn refuses zero rows, so for no texts the head
        answers one zero row and that answer is cut to zero rows: the right shape and dtype."""
        if emb.shape[0]:
            return getattr(self.model_head, method)(emb)
        out = getattr(self.model_head, method)(np.zeros((1, emb.shape[1]), emb.dtype))
        return [o[:0] for o in out] if isinstance(out, list) else out[:0]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities ``[N, C]`` (columns in ``labels`` order); ``[0, C]`` for no texts."""
        texts = _text_list(texts, "predict_proba")
        self._check_fitted()
        emb = self.encode(texts)
        if self.has_differentiable_head:
            return np.asarray(self.model_head.probabilities(self.model_head.params, jnp.asarray(emb)))
        probs = self._sklearn_head("predict_proba", emb)
        if isinstance(probs, list):  # multi-output: one [N, 2] array per label
            probs = np.stack([p[:, 1] for p in probs], axis=-1)
        return np.asarray(probs)

    def predict(self, texts: Sequence[str], use_labels: bool = True) -> np.ndarray | list:
        """Predicted labels (as trained: strings or ints), or class ids with ``use_labels=False``;
        no texts give no predictions (an empty list, or an empty array of ids or 0/1 rows)."""
        texts = _text_list(texts, "predict")
        self._check_fitted()
        if self.multilabel:
            if self.has_differentiable_head:
                return (self.predict_proba(texts) >= 0.5).astype(np.int64)
            return np.asarray(self._sklearn_head("predict", self.encode(texts))).astype(np.int64)
        if self.has_differentiable_head:
            ids = self.predict_proba(texts).argmax(-1)
        else:
            ids = np.asarray(self._sklearn_head("predict", self.encode(texts)))
        if not use_labels or self.labels is None:
            return ids
        return [self.labels[i] for i in ids]

    def __call__(self, texts: Sequence[str]):
        return self.predict(texts)

    # -- persistence -----------------------------------------------------------------------------
    def save_pretrained(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write a directory that ``from_pretrained`` (and sentence-transformers, for the body) loads.

        Only the files of this layout are written, all staged before any replaces its old version
        (``safe_io.write_files``): other files in ``path`` are kept, and an interrupted save leaves
        the previous model loadable. Refuses to replace any of them unless ``overwrite=True``. The
        one file removed is an earlier save's head that this save does not write (``model_head.pkl``
        or ``model_head.npz``; both for an unfitted model), so the loader cannot pick it up.
        """
        body = self.model_body
        files = hf.checkpoint_files(body.module, body.params)
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        if body.normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": "sentence_transformers.models.Normalize"})
        pooling = {"word_embedding_dimension": body.dim, **{k: m == body.pooling for m, k in _POOLING_KEYS.items()}}
        files.update({
            "tokenizer.json": body.tokenizer.to_str(pretty=True),
            "modules.json": json.dumps(modules, indent=2),
            "sentence_bert_config.json": json.dumps({"max_seq_length": body.max_seq_length, "do_lower_case": False}),
            "1_Pooling/config.json": json.dumps(pooling, indent=2),
        })
        config = {"labels": self.labels, "normalize_embeddings": self.normalize_embeddings,
                  "multi_target_strategy": self.multi_target_strategy}
        if self.fitted and self.has_differentiable_head:
            files[_HEAD_NPZ] = _to_bytes(lambda f: np.savez(f, **self.model_head.to_numpy()))
            config["head"] = {"temperature": self.model_head.temperature, "eps": self.model_head.eps}
        elif self.fitted:
            import joblib
            files[_HEAD_PKL] = _to_bytes(lambda f: joblib.dump(self.model_head, f))
        files[CONFIG_NAME] = json.dumps(config, indent=2, default=_json_default)
        path = safe_io.write_files(path, files, overwrite=overwrite, stale=(_HEAD_NPZ, _HEAD_PKL))
        if body.normalize:  # sentence-transformers expects the (empty) module directory
            (path / "2_Normalize").mkdir(exist_ok=True)
        return path


def _read_head(path: Path, load: Callable[[Path], Any]) -> Any:
    """``load(path)``, with a ValueError naming the file when it is truncated or corrupt."""
    try:
        return load(path)
    # What numpy's zip reader and the unpickler raise on a cut or garbled file (not on a version mismatch).
    except (OSError, EOFError, ValueError, KeyError, struct.error, zipfile.BadZipFile, pickle.UnpicklingError) as err:
        raise ValueError(f"{path}: not a readable SetFit head ({type(err).__name__}: {err}); "
                         "it is truncated or corrupt") from err


def _to_bytes(write: Callable[[io.BytesIO], Any]) -> bytes:
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def _text_list(texts: Sequence[str], caller: str) -> list[str]:
    """``texts`` as a list; a bare string (it would iterate as characters) or a non-iterable is a
    TypeError. Items are checked where they are tokenised (``SentenceEncoder.tokenize``)."""
    if isinstance(texts, str):
        raise TypeError(f"{caller} takes a list of texts, not a single string")
    try:
        return list(texts)
    except TypeError:
        raise TypeError(f"{caller} takes a list of texts, got {type(texts).__name__}") from None


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot save label {value!r} of type {type(value).__name__} in {CONFIG_NAME}")
