"""Hugging Face interop: load and save encoder checkpoints of every family in
``hf_families.SUPPORTED`` (ModernBERT, BERT, RoBERTa, XLM-RoBERTa, MPNet, DeBERTa-v2/v3) as our params.

``from_pretrained(path, head=...)`` reads ``config.json`` and ``model.safetensors`` (or
``pytorch_model.bin``, which needs torch) and returns ``(module, params)``: the bare encoder, the
MLM model, or a sequence / token classifier (``HEADS``). A task checkpoint
(``BertForSequenceClassification``, ``ModernBertForTokenClassification``, …) loads whole; on a
bare encoder or MLM checkpoint the task head tensors the checkpoint lacks are freshly initialised,
as ``transformers`` does for fine-tuning (BERT's pooler and ModernBERT's prediction head are kept
where the checkpoint has them). ``save_pretrained(path, module, params, labels=...)`` writes a
directory ``transformers`` loads back, with ``id2label`` and ``problem_type``; ``task_labels``
reads them. One table per family (``hf_families.tensor_map``) names every tensor in both
directions, so loading and saving cannot drift apart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from modernbert_jax import config as config_lib
from modernbert_jax import hf_families, safe_io, spm_checkpoint
from modernbert_jax import model as model_lib

SUPPORTED = hf_families.SUPPORTED
HEADS = hf_families.HEADS
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")
# The files ``save_pretrained`` writes, the whole of its format: no other file is ever its to replace.
CONFIG_FILE, TENSORS_FILE = "config.json", "model.safetensors"
# Tensors a checkpoint may hold that our modules have no use for (BERT's pooler, buffers, the
# tied decoder, task heads we do not load, DeBERTa's replaced-token-detection head, and the
# absolute table a DeBERTa-v3 without position_biased_input ignores, as transformers does).
_IGNORED_PREFIXES = ("pooler.", "cls.seq_relationship", "classifier.", "qa_outputs.", "mask_predictions.")
_IGNORED_SUFFIXES = ("position_ids", "decoder.weight", "decoder.bias", "embeddings.position_embeddings.weight")


def read_tensors(path: Path) -> dict[str, np.ndarray]:
    """A directory's ``model.safetensors`` (no torch needed) or ``pytorch_model.bin`` (needs torch), as float32 numpy."""
    st = path / TENSORS_FILE
    if st.exists():
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            return load_file(str(st))
        except SafetensorError as err:
            raise ValueError(f"{st}: not a readable safetensors file ({err}); it is truncated or corrupt") from err
    pt = path / "pytorch_model.bin"
    if pt.exists():
        try:
            import torch  # only for legacy .bin checkpoints
        except ImportError as err:
            raise ImportError(f"{pt} is a PyTorch pickle; install torch to read it, or convert it to safetensors") from err
        try:
            state = torch.load(str(pt), map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises whatever its unpickler or zip reader hit
            raise ValueError(f"{pt}: not a readable PyTorch checkpoint ({type(err).__name__}: {err}); "
                             "it is truncated or corrupt") from err
        return {k: v.float().numpy() for k, v in state.items()}
    raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {path}")


def _to_ours(value: np.ndarray, kind: str) -> np.ndarray:
    """Between a Hugging Face tensor's layout and ours (each layout change is its own inverse)."""
    if kind == "linear":
        return value.T
    if kind == "conv":  # torch Conv1d [out, in, K] <-> our [K, in, out]
        return np.transpose(value, (2, 1, 0))
    return value


_CLASSIFIERS = {"sequence_classification": model_lib.SequenceClassifier,
                "token_classification": model_lib.TokenClassifier}


def _module_for(cfg: ml_collections.ConfigDict, head: Optional[str], num_labels: Optional[int]) -> nn.Module:
    if head in _CLASSIFIERS:
        return _CLASSIFIERS[head](cfg, num_labels)
    return model_lib.MaskedLM(cfg) if head == "mlm" else model_lib.Encoder(cfg)


def _head_of(module: nn.Module) -> Optional[str]:
    """The ``HEADS`` entry ``module`` implements."""
    for head, cls in _CLASSIFIERS.items():
        if isinstance(module, cls):
            return head
    if isinstance(module, model_lib.MaskedLM):
        return "mlm"
    if isinstance(module, model_lib.Encoder):
        return None
    raise TypeError(f"expected an Encoder, MaskedLM, SequenceClassifier or TokenClassifier, not {type(module).__name__}")


def _full_name(name: str, prefix: str) -> str:
    """A table name (``hf_families.tensor_map``) as the checkpoint spells it."""
    return name[1:] if name.startswith("/") else prefix + name


def _classifier_tensor(cfg: ml_collections.ConfigDict, head: str, prefix: str) -> str:
    """The checkpoint name of ``head``'s final classifier weight."""
    return next(_full_name(names[0], prefix) for path, names, _ in hf_families.tensor_map(cfg, head)
                if path == ("classifier", "kernel"))


def _task_num_labels(cfg: ml_collections.ConfigDict, hf_config: dict, tensors: dict, head: str, prefix: str,
                     num_labels: Optional[int], where: str) -> int:
    """The classifier's width: the checkpoint's, or ``num_labels`` for a fresh one. Raises naming the
    tensor when the checkpoint's classifier is another head's or has another width."""
    ours = _classifier_tensor(cfg, head, prefix)
    declared = hf_families.task_class_names(cfg)
    for arch in hf_config.get("architectures") or []:
        other = declared.get(arch)
        if other not in (None, head):
            name = _classifier_tensor(cfg, other, prefix)
            shape = tuple(np.shape(tensors[name])) if name in tensors else "absent"
            raise ValueError(
                f"{where}: config.json architectures={[arch]} is a {other} checkpoint (its classifier "
                f"{name!r} has shape {shape}), not a {hf_families.class_name(cfg, head)}: head={head!r} expects "
                f"{ours!r} of shape ({num_labels or 'num_labels'}, {cfg.hidden_size}); load it with head={other!r}")
    if ours not in tensors:
        if num_labels is None:
            raise ValueError(f"{where} has no {ours!r} (a bare encoder or MLM checkpoint): head={head!r} "
                             "needs num_labels= for a freshly initialised classifier")
        return num_labels
    found = int(np.shape(tensors[ours])[0])
    if num_labels is not None and num_labels != found:
        raise ValueError(f"{where}: tensor {ours!r} has shape {tuple(np.shape(tensors[ours]))}, a classifier of "
                         f"{found} labels; num_labels={num_labels} expects ({num_labels}, {cfg.hidden_size})")
    return found


def _param_shapes(module: nn.Module) -> dict:
    ids = jnp.zeros((1, 8), jnp.int32)
    abstract = jax.eval_shape(lambda: module.init(jax.random.key(0), ids))
    return nn.meta.unbox(abstract["params"])


def _get(tree: dict, path: tuple[str, ...]):
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: dict, path: tuple[str, ...], value) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _check_head_args(head: Optional[str], num_labels: Optional[int]) -> None:
    if head not in HEADS:
        raise ValueError(f"head={head!r} is not one of {HEADS}")
    if num_labels is not None:
        if head not in hf_families.TASK_HEADS:
            raise ValueError(f"num_labels={num_labels} is for a task head ({hf_families.TASK_HEADS}), not head={head!r}")
        config_lib.check_number("num_labels", num_labels, low=1, integer=True)


def from_tensors(
    hf_config: dict, tensors: dict[str, np.ndarray], head: Optional[str] = None, *,
    num_labels: Optional[int] = None, rng: Optional[jax.Array] = None, where: str = "checkpoint",
) -> tuple[nn.Module, dict]:
    """``(module, params)`` from a ``config.json`` dict and HF-named tensors, in memory.

    A task head (``head`` in ``hf_families.TASK_HEADS``) takes its classifier's width from the
    checkpoint, or ``num_labels`` where it has none; head tensors the checkpoint lacks are
    initialised from ``rng``. ``where`` names the source in errors. Raises a ValueError naming the
    tensor when names or shapes do not match the config or ``num_labels``.
    """
    _check_head_args(head, num_labels)
    cfg = hf_families.config_from_hf(hf_config)
    task = head in hf_families.TASK_HEADS
    enc_path = () if head is None else ("encoder",)

    # Encoders saved without a head have no prefix; those saved with one (BertForMaskedLM,
    # ModernBertForSequenceClassification) prefix the encoder, so accept either for an encoder or
    # a task head (fine-tuning starts from either); the MLM head needs its MLM checkpoint.
    candidates = [hf_families.encoder_prefix(cfg, head)] if head == "mlm" else ["", hf_families.encoder_prefix(cfg, "mlm")]
    prefix = next((p for p in candidates if any(k.startswith(p + "embeddings.") for k in tensors)), None)
    if prefix is None:
        raise ValueError(f"{where}: no embedding tensors found under prefixes {candidates}; is this a {cfg.architecture} checkpoint?")
    if task:
        num_labels = _task_num_labels(cfg, hf_config, tensors, head, prefix, num_labels, where)
    module = _module_for(cfg, head, num_labels)
    shapes = _param_shapes(module)

    params: dict = {}
    used = set()
    fresh = []  # task-head params the checkpoint lacks
    for our_path, names, kind in hf_families.tensor_map(cfg, head):
        full = [_full_name(n, prefix) for n in names]
        beside = our_path[0] in hf_families.HEAD_PARAMS
        target = our_path if beside else enc_path + our_path
        missing = [name for name in full if name not in tensors]
        if missing and task and beside:
            fresh.append(target)
            continue
        if missing:
            raise ValueError(f"{where}: tensor {missing[0]!r} is missing from the checkpoint")
        arrays = [np.asarray(tensors[n], dtype=np.float32) for n in full]
        value = _to_ours(np.concatenate(arrays, axis=0) if len(arrays) > 1 else arrays[0], kind)
        expected = _get(shapes, target).shape
        if value.shape != tuple(expected):
            raise ValueError(
                f"{where}: tensor {' + '.join(full)} has shape {tuple(arrays[0].shape)}"
                f"{' (each)' if len(arrays) > 1 else ''}, which gives {value.shape} for {'/'.join(target)}; "
                f"the config expects {tuple(expected)}"
            )
        _set(params, target, jnp.asarray(value))
        used.update(full)
    if fresh:
        if rng is None:
            raise ValueError(f"{where} has no {hf_families.class_name(cfg, head)} head tensors for "
                             f"{['/'.join(t) for t in fresh][:3]}: pass rng= (a jax.random key) to initialise them")
        initial = model_lib.init_head_params(module, rng)
        for target in fresh:
            _set(params, target, _get(initial, target))
    unexpected = [
        k for k in tensors
        if k not in used
        and not k.startswith(tuple(prefix + p for p in _IGNORED_PREFIXES) + _IGNORED_PREFIXES)
        and not k.endswith(_IGNORED_SUFFIXES)
        # An encoder or task head may start from any checkpoint of the family: its other heads are not ours.
        and (head == "mlm" or k.startswith(prefix))
    ]
    if unexpected:
        raise ValueError(f"{where}: unexpected tensor(s) not in a {cfg.architecture} model of this config: {unexpected[:5]}")
    return module, params


def resolve_dir(path: str | os.PathLike) -> Path:
    """The Hugging Face directory at ``path``: ``path`` itself, or the ``hf/`` export that a
    finished pretraining run (``python -m experiments.pretrain --workdir=path``) leaves in its workdir."""
    path = Path(path)
    # A pretraining workdir first: run as a sweep point, it holds a config.json of its own (the
    # experiment's config), which is no model config.
    if (path / "checkpoints").is_dir() and (path / "hf" / "config.json").exists():
        return path / "hf"
    if (path / "config.json").exists():
        return path
    if (path / "hf" / "config.json").exists():
        return path / "hf"
    if (path / "checkpoints").is_dir():
        raise FileNotFoundError(
            f"{path} is a pretraining workdir without an hf/ export: the run has not finished "
            "(the export is written at the end; rerun the same command to resume and finish)")
    raise FileNotFoundError(f"no config.json in {path} (nor in {path / 'hf'}, a pretraining workdir's export)")


def from_pretrained(
    path: str | os.PathLike, head: Optional[str] = None, num_labels: Optional[int] = None,
    rng: Optional[jax.Array] = None,
) -> tuple[nn.Module, dict]:
    """Load a Hugging Face directory of any family in ``SUPPORTED`` (or a pretraining workdir's
    export, see ``resolve_dir``) as ``(module, params)``.

    ``head=None`` gives an ``Encoder`` (last hidden states); ``head="mlm"`` a ``MaskedLM``;
    ``"sequence_classification"`` / ``"token_classification"`` a ``SequenceClassifier`` /
    ``TokenClassifier`` whose ``apply`` returns the logits. A task checkpoint loads whole (its
    width is ``num_labels`` when given, else the checkpoint's); a bare encoder or MLM checkpoint
    needs ``num_labels`` and ``rng`` for the head tensors it lacks. A classifier of another width
    or another head is a ValueError naming the tensor.
    """
    _check_head_args(head, num_labels)
    path = resolve_dir(path)
    config_file = path / CONFIG_FILE
    hf_config = safe_io.read_json(config_file, required=("model_type",), what="a Hugging Face model config")
    try:  # an unsupported architecture or a missing field is named before any weights are read
        hf_families.config_from_hf(hf_config)
    except KeyError as err:
        raise ValueError(f"{config_file}: required field {err.args[0]!r} is missing "
                         f"(model_type={hf_config['model_type']!r})") from err
    except ValueError as err:
        raise ValueError(f"{config_file}: {err}") from err
    return from_tensors(hf_config, read_tensors(path), head, num_labels=num_labels, rng=rng, where=str(path))


def _label_fields(head: Optional[str], num_labels: Optional[int], labels: tuple[str, ...],
                  problem_type: Optional[str]) -> dict:
    """``id2label``/``label2id`` (transformers' ``LABEL_i`` where ``labels`` is empty) and ``problem_type``."""
    if head not in hf_families.TASK_HEADS:
        if labels or problem_type is not None:
            raise ValueError(f"labels and problem_type describe a task head's classes; head={head!r} has none")
        return {}
    labels = tuple(labels) or tuple(f"LABEL_{i}" for i in range(num_labels))
    if len(labels) != num_labels:
        raise ValueError(f"{len(labels)} labels {list(labels)[:5]} for a classifier of num_labels={num_labels}")
    bad = [label for label in labels if not isinstance(label, str) or not label]
    if bad or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be distinct non-empty strings (label2id needs them); got {list(labels)}")
    allowed = PROBLEM_TYPES if head == "sequence_classification" else ()
    if problem_type is not None and problem_type not in allowed:
        raise ValueError(f"problem_type={problem_type!r} for head={head!r}: expected None or one of {allowed}")
    out = {"id2label": {str(i): label for i, label in enumerate(labels)},
           "label2id": {label: i for i, label in enumerate(labels)}}
    return {**out, "problem_type": problem_type} if problem_type is not None else out


def to_tensors(module: nn.Module, params: dict, *, labels: tuple[str, ...] = (),
               problem_type: Optional[str] = None) -> tuple[dict, dict[str, np.ndarray]]:
    """``(config.json dict, HF-named float32 tensors)`` for any module of ``HEADS``, in memory.

    ``labels`` (class names in id order) and ``problem_type`` go into a task head's config.
    """
    head = _head_of(module)
    enc = params if head is None else params["encoder"]
    cfg = module.config
    label_fields = _label_fields(head, getattr(module, "num_labels", None), labels, problem_type)
    prefix = hf_families.encoder_prefix(cfg, head)
    tensors: dict[str, np.ndarray] = {}
    mapped = {our_path if our_path[0] in hf_families.HEAD_PARAMS else (("encoder",) if head else ()) + our_path
              for our_path, _, _ in hf_families.tensor_map(cfg, head)}
    unmapped = ["/".join(str(k.key) for k in path) for path, _ in jax.tree_util.tree_leaves_with_path(params)
                if tuple(str(k.key) for k in path) not in mapped]
    if unmapped:  # a parameter with no Hugging Face name would silently vanish from the export
        raise ValueError(f"parameter(s) {unmapped[:5]} have no {cfg.architecture} tensor name; the export would drop them")
    for our_path, names, kind in hf_families.tensor_map(cfg, head):
        value = _to_ours(np.asarray(_get(params if our_path[0] in hf_families.HEAD_PARAMS else enc, our_path), np.float32), kind)
        parts = np.split(value, len(names), axis=0) if len(names) > 1 else [value]
        for name, part in zip(names, parts):
            tensors[_full_name(name, prefix)] = np.ascontiguousarray(part)
    if head == "mlm":  # the tied decoder, written out so loaders that expect it find it
        for name, source in hf_families.tied_decoder(cfg).items():
            tensors[name] = tensors[source]
    return {**hf_families.config_to_hf(cfg, head), **label_fields}, tensors


def checkpoint_files(module: nn.Module, params: dict, *, labels: tuple[str, ...] = (),
                     problem_type: Optional[str] = None) -> dict[str, safe_io.Content]:
    """``{"model.safetensors": ..., "config.json": ...}`` for ``safe_io.write_files``: what
    ``save_pretrained`` writes, for savers that write a checkpoint and files of their own in one go."""
    from safetensors.numpy import save_file

    hf_config, tensors = to_tensors(module, params, labels=labels, problem_type=problem_type)
    return {TENSORS_FILE: lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}),
            CONFIG_FILE: json.dumps(hf_config, indent=2)}


def save_pretrained(path: str | os.PathLike, module: nn.Module, params: dict, *, overwrite: bool = False,
                    labels: tuple[str, ...] = (), problem_type: Optional[str] = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` that ``transformers`` loads back.

    A classifier's config names its class (``architectures``, e.g. ``BertForSequenceClassification``),
    its classes (``id2label``/``label2id`` from ``labels`` in id order; ``LABEL_i`` when empty) and
    ``problem_type`` (one of ``PROBLEM_TYPES``, sequence classification only; None leaves
    transformers' inference from the labels' dtype). Only those two files are written, each
    atomically (``safe_io.write_files``): other files in ``path`` (a tokenizer, notes, runs) are
    kept, and an interrupted save leaves the previous checkpoint as it was. Refuses to replace an
    existing ``config.json`` or ``model.safetensors`` unless ``overwrite=True``.
    """
    files = checkpoint_files(module, params, labels=labels, problem_type=problem_type)
    return safe_io.write_files(path, files, overwrite=overwrite)


def task_labels(path: str | os.PathLike) -> tuple[tuple[str, ...], Optional[str]]:
    """``(labels in id order, problem_type)`` of a Hugging Face directory (see ``resolve_dir``):
    its ``config.json``'s ``id2label`` (``()`` when it has none) and ``problem_type`` (or None)."""
    config_file = resolve_dir(path) / CONFIG_FILE
    hf_config = safe_io.read_json(config_file, what="a Hugging Face model config")
    id2label = hf_config.get("id2label") or {}
    try:
        by_id = {int(k): str(v) for k, v in id2label.items()}
    except (AttributeError, TypeError, ValueError) as err:
        raise ValueError(f"{config_file}: id2label {str(id2label)[:80]} is not a map from integer ids to labels") from err
    if sorted(by_id) != list(range(len(by_id))):
        raise ValueError(f"{config_file}: id2label ids {sorted(by_id)[:10]} are not 0..{len(by_id) - 1}")
    return tuple(by_id[i] for i in range(len(by_id))), hf_config.get("problem_type")


def load_tokenizer(path: str | os.PathLike, special_tokens: tuple[str, ...] = ()) -> "tokenizers.Tokenizer":
    """The checkpoint's own ``tokenizer.json`` through ``tokenizers``, truncation and padding off.

    ``path`` is a directory holding ``tokenizer.json`` (a Hugging Face or GLiNER checkpoint) or a
    pretraining workdir (see ``resolve_dir``). A checkpoint with no ``tokenizer.json`` but a
    sentencepiece model (DeBERTa-v3's ``spm.model``, XLM-RoBERTa's ``sentencepiece.bpe.model``) gets
    the tokenizer ``transformers`` builds from it (``spm_checkpoint``). Truncation and padding are
    switched off because a Hugging Face file may ship e.g. a 128-token limit that would silently cut
    texts: each caller sets its own (SetFit truncates to ``max_seq_length``, GLiNER windows long texts).
    ``special_tokens`` that the vocabulary lacks are added, in order (GLiNER's prompt markers).
    """
    from tokenizers import Tokenizer

    path = Path(path)
    absent = f"no tokenizer.json (nor a sentencepiece {' or '.join(spm_checkpoint.SPM_FILES)})"
    directory = path
    if not ((path / "tokenizer.json").exists() or spm_checkpoint.find_spm_file(path)):
        try:
            directory = resolve_dir(path)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{absent} in {path}: {err}") from err
    if (directory / "tokenizer.json").exists():
        try:
            tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except Exception as err:  # tokenizers raises a bare Exception carrying serde's message
            raise ValueError(f"{directory / 'tokenizer.json'}: not a readable tokenizer ({err}); "
                             "it is truncated or malformed") from err
    elif spm_checkpoint.find_spm_file(directory):
        tok = spm_checkpoint.from_spm_checkpoint(directory)
    else:
        raise FileNotFoundError(f"{absent} in {directory}")
    tok.no_truncation()
    tok.no_padding()
    missing = [t for t in special_tokens if tok.token_to_id(t) is None]
    if missing:
        tok.add_special_tokens(missing)
    return tok
