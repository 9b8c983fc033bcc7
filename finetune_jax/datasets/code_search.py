"""TFDS builder ``python_code_search``: CodeSearchNet-style code retrieval over real Python source.

Each example pairs a natural-language query with the code it describes:

* ``query``: the summary of a function's docstring (its first sentence, reST roles and backquotes
  removed, whitespace collapsed);
* ``document``: the function's exact source (decorators and comments kept, dedented) with the
  docstring, and the blank lines right after it, removed: it is still valid Python, and it carries
  no trace of where the docstring was;
* ``package``: the Debian package it came from; ``id``: ``package:path:qualname``.

Sources are pure-Python libraries from Debian at pinned versions (``PACKAGES``), none of them part
of the pretraining corpus (``modernbert_jax.data.corpus.CODE_PACKAGES``). The split is by package,
fixed by hand in ``PACKAGES`` so that no test or validation function's package is ever seen in
training, and related projects (one author, one code base) share a split.

Construction (deterministic: the same pinned ``.deb`` files give byte-identical examples):

* every ``.py`` file under ``usr/lib/python3/dist-packages``, in path order, except vendored copies
  of other projects (``VENDORED_DIRS``) and test suites (``TEST_DIRS``, ``test_*.py``);
* every function and method with a docstring; dropped, each rule counted in ``Stats``:
  test functions, queries under ``MIN_QUERY_WORDS`` words or that are no summary (a field list
  such as ``:param x:``, TODO, a signature line, a section heading, a deprecation notice),
  documents under ``MIN_LINES`` lines
  (from the ``def`` line on) or over ``MAX_LINES``, stubs (a body of only ``pass``/``...``/
  ``raise NotImplementedError``), and a second function of the same qualified name in one file;
* deduplicated in id order: one function per normalised code (``code_key``: the AST without
  docstring, so formatting and comments do not count), over all packages at once, so the same
  code never lands in two splits; one function per (normalised query, package);
* no leakage into pretraining: a function is dropped when its normalised code, or its normalised
  query, is that of any function in the pretraining corpus's code files (the standard library
  and the packages of ``corpus.CODE_PACKAGES``, read by ``corpus.python_code_documents``). Vendored
  copies (pip and setuptools carry the standard library's and requests' code) are caught here
  even where a directory rule misses them.

Stored as ``array_record`` and read with ``tfds.data_source``, no TensorFlow needed;
``builder.info.metadata`` records every source (package, version, .deb sha256, split), the
pretraining packages checked against, and how many functions each rule dropped (``rules``).

    from finetune_jax.datasets import code_search
    splits = code_search.load_splits()   # {"train": [{"id", "query", "document", "package"}, ...], ...}
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import hashlib
import os
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import tensorflow_datasets as tfds

from modernbert_jax.data import corpus, debian, tfds_builder

NAME = "python_code_search"
SPLITS = ("train", "validation", "test")

# Pure-Python libraries with documented functions, each pinned and assigned to one split.
# Families stay together: flask/werkzeug/click (Pallets), sympy/mpmath (sympy uses mpmath's code
# style and docs), the scientific stack (numpy, scipy, pandas, matplotlib, astropy) in train.
# Sizes after the rules: 18,328 train, 2,214 validation, 3,363 test pairs.
PACKAGES: tuple[tuple[debian.DebPin, str], ...] = (
    (debian.DebPin("python3-sympy", "1.11.1-1"), "train"),
    (debian.DebPin("python3-mpmath", "1.2.1-2"), "train"),
    (debian.DebPin("python3-numpy", "1:1.24.2-1+deb12u1"), "train"),
    (debian.DebPin("python3-scipy", "1.10.1-2"), "train"),
    (debian.DebPin("python3-pandas", "1.5.3+dfsg-2"), "train"),
    (debian.DebPin("python3-matplotlib", "3.6.3-1+b1"), "train"),
    (debian.DebPin("python3-astropy", "5.2.1-2+deb12u1"), "train"),
    (debian.DebPin("python3-django", "3:3.2.25-0+deb12u7"), "train"),
    (debian.DebPin("python3-sqlalchemy", "1.4.46+ds1-1"), "train"),
    (debian.DebPin("python3-setuptools", "66.1.1-1+deb12u2"), "train"),
    (debian.DebPin("python3-pip", "23.0.1+dfsg-1"), "train"),
    (debian.DebPin("python3-sphinx", "5.3.0-4"), "validation"),
    (debian.DebPin("python3-babel", "2.10.3-1"), "validation"),
    (debian.DebPin("python3-tornado", "6.2.0-3+deb12u4"), "validation"),
    (debian.DebPin("python3-pytest", "7.2.1-2"), "validation"),
    (debian.DebPin("python3-hypothesis", "6.67.1-1"), "validation"),
    (debian.DebPin("python3-astroid", "2.14.2-1"), "validation"),
    (debian.DebPin("python3-networkx", "2.8.8-1"), "test"),
    (debian.DebPin("python3-nltk", "3.8-1"), "test"),
    (debian.DebPin("python3-flask", "2.2.2-3"), "test"),
    (debian.DebPin("python3-werkzeug", "2.2.2-3+deb12u1"), "test"),
    (debian.DebPin("python3-click", "8.1.3-2"), "test"),
)

MIN_QUERY_WORDS = 3
MIN_LINES = 3   # non-blank lines from the ``def`` line on: a signature and at least two lines of body
MAX_LINES = 100
VENDORED_DIRS = frozenset({"_vendor", "vendor", "_vendored", "extern", "externals", "_distutils"})
TEST_DIRS = frozenset({"test", "tests", "testing"})
LIBRARY_DIR = Path("usr") / "lib" / "python3" / "dist-packages"

_ROLE = re.compile(r":[\w.+-]+(?::[\w.+-]+)*:`~?([^`]*)`")           # :func:`~a.b` -> a.b
_LINK = re.compile(r"`([^`<]+?)(?:\s*<[^`>]*>)?`_{1,2}")            # `text <target>`_, `text`_ -> text
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_PLACEHOLDER = re.compile(r"\b(todo|fixme|xxx|auto-?generated|docstring for)\b|\bdeprecated\b|^\.\.|---|===", re.I)
_SIGNATURE = re.compile(r"^[\w.]+\(.*\)\s*(->.*)?$")                   # "f(x, y) -> z", a signature, not prose


@dataclasses.dataclass(frozen=True)
class Pair:
    """One retrieval example before the corpus-level rules (dedup, leakage)."""

    id: str
    query: str
    document: str
    package: str
    code_key: str

    def example(self) -> dict[str, str]:
        return {"id": self.id, "query": self.query, "document": self.document, "package": self.package}


Stats = Counter  # rule name -> functions it dropped ("kept" counts what survives)


# --- one function ---------------------------------------------------------------------------------

def summary(docstring: str) -> str:
    """The query a docstring gives: its first paragraph's first sentence, in plain words."""
    paragraph = re.split(r"\n\s*\n", docstring.strip())[0]
    text = " ".join(paragraph.split())
    text = _SENTENCE_END.split(text, maxsplit=1)[0]
    text = _LINK.sub(r"\1", _ROLE.sub(r"\1", text))
    return text.replace("``", "").replace("`", "").strip()


def query_problem(query: str) -> str | None:
    """Why ``query`` is not a usable search query (a drop rule's name), or None."""
    if len(query.split()) < MIN_QUERY_WORDS:
        return "short_query"
    if _SIGNATURE.match(query) or _PLACEHOLDER.search(query) or not query[0].isalpha():
        return "not_a_summary"
    return None


def query_key(query: str) -> str:
    """Queries that differ only in case, spacing or a final full stop are the same query."""
    return " ".join(query.lower().split()).rstrip(".")


def _without_docstring(node: ast.AST) -> ast.AST:
    body = node.body[1:] if ast.get_docstring(node, clean=False) is not None else node.body
    stripped = copy.copy(node)
    stripped.body = body
    return stripped


def code_key(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The normalised code of a function: a hash of its AST without docstring (positions,
    comments and formatting do not count; names and decorators do)."""
    return hashlib.sha256(ast.dump(_without_docstring(node)).encode("utf-8")).hexdigest()


def functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method in source order, with its ``__qualname__``."""
    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, ast.AST]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                yield name, child
                yield from walk(child, name + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
            else:  # functions defined under if/try/with keep the enclosing prefix, as at run time
                yield from walk(child, prefix)
    yield from walk(tree, "")


def _utf8_slice(line: str, end: int) -> str:
    # ast's column offsets count UTF-8 bytes, not characters.
    return line.encode("utf-8")[:end].decode("utf-8")


def document(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The function's source (``lines``: its module's, split at newlines only) without its docstring,
    dedented; None when the docstring shares a line with other code (``def f(): "doc"; return 1``),
    where no line cut can remove it."""
    doc = node.body[0]
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    if doc.lineno == node.lineno or doc.end_lineno in {n.lineno for n in node.body[1:2]}:
        return None
    segment = lines[first - 1:node.end_lineno]
    segment[-1] = _utf8_slice(segment[-1], node.end_col_offset)  # "def f(): ...; x = 1" ends mid-line
    cut, after = doc.lineno - first, doc.end_lineno - first + 1
    while after < len(segment) and not segment[after].strip():
        after += 1  # the blank lines after a docstring would tell where it was
    keep = segment[:cut] + segment[after:]
    # Dedent by the def's indentation only: a string literal's continuation lines may sit further left.
    indent = len(keep[0]) - len(keep[0].lstrip())
    out = [line[min(indent, len(line) - len(line.lstrip())):].rstrip() for line in keep]
    return "\n".join(out) + "\n"


def source_lines(source: str) -> list[str]:
    """Lines as ``ast`` numbers them: split at newlines only, not at the form feeds and other
    separators that ``str.splitlines`` also breaks on."""
    return re.split(r"\r\n|\r|\n", source)


def _is_stub(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A body (after the docstring) of only ``pass``, ``...`` or ``raise NotImplementedError``."""
    def trivial(stmt: ast.stmt) -> bool:
        if isinstance(stmt, ast.Pass):
            return True
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            return True
        if isinstance(stmt, ast.Raise) and stmt.exc is not None:
            exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
            return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
        return False
    return all(trivial(stmt) for stmt in _without_docstring(node).body)


def _code_lines(text: str) -> int:
    """Non-blank lines from the ``def`` line on (decorators do not make a body)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\s*(async\s+)?def\b", line))
    return sum(1 for line in lines[start:] if line.strip())


def _parse(source: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in old code are SyntaxWarnings
            return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def module_pairs(source: str, package: str, path: str, stats: Stats) -> list[Pair]:
    """The pairs of one module (``path`` relative to ``dist-packages``) that pass the per-function rules."""
    tree = _parse(source)
    if tree is None:
        stats["unparsable_file"] += 1
        return []
    lines = source_lines(source)
    pairs, seen = [], set()
    for qualname, node in functions(tree):
        docstring = ast.get_docstring(node, clean=True)
        if docstring is None:
            continue
        query = summary(docstring)
        text = document(lines, node)
        if qualname in seen:
            rule = "same_qualname"
        elif any(part.lower().startswith("test") for part in qualname.split(".")):
            rule = "test_function"
        elif (rule := query_problem(query)) is not None:
            pass
        elif _is_stub(node):
            rule = "stub"
        elif text is None or _parse(text) is None:
            rule = "docstring_not_removable"
        elif _code_lines(text) < MIN_LINES:
            rule = "short_document"
        elif len(text.splitlines()) > MAX_LINES:
            rule = "long_document"
        seen.add(qualname)
        if rule is not None:
            stats[rule] += 1
            continue
        pairs.append(Pair(f"{package}:{path}:{qualname}", query, text, package, code_key(node)))
    return pairs


# --- the corpus -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Pretraining:
    """What the pretraining corpus's code holds: normalised code and queries of its functions."""

    code_keys: frozenset[str]
    query_keys: frozenset[str]

    @classmethod
    def from_sources(cls, sources: Iterable[str]) -> "Pretraining":
        codes, queries = set(), set()
        for source in sources:
            tree = _parse(source)
            for _, node in functions(tree) if tree is not None else ():
                codes.add(code_key(node))
                docstring = ast.get_docstring(node, clean=True)
                if docstring is not None:
                    queries.add(query_key(summary(docstring)))
        return cls(frozenset(codes), frozenset(queries))


def pretraining_code() -> Pretraining:
    """The functions of every code file the pretraining corpus reads (files it leaves out read as "")."""
    return Pretraining.from_sources(load() for _, load in corpus.python_code_documents())


def _skipped(relative: Path) -> bool:
    parts = relative.parts
    return (any(part in VENDORED_DIRS or part in TEST_DIRS for part in parts[:-1])
            or parts[-1].startswith("test_") or parts[-1] == "conftest.py")


def package_sources(pin: debian.DebPin) -> Iterator[tuple[str, Callable[[], str | None]]]:
    """(path under ``dist-packages``, loader) of every ``.py`` file of ``pin`` this corpus reads,
    in path order; the loader gives None for a file that is not UTF-8."""
    root = debian.extract_pinned(pin) / LIBRARY_DIR
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()  # os.walk's order is the file system's; the corpus's must not be
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            relative = path.relative_to(root)
            if fname.endswith(".py") and path.is_file() and not _skipped(relative):
                yield relative.as_posix(), lambda path=path: _read_utf8(path)


def _read_utf8(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def build_examples(pairs: Iterable[Pair], split_of: Mapping[str, str], pretraining: Pretraining,
                   stats: Stats) -> dict[str, list[dict[str, str]]]:
    """Deduplicate ``pairs`` (by code over all packages, by query within a package), drop those the
    pretraining code holds, and group them by their package's split, each split in id order."""
    examples: dict[str, list[dict[str, str]]] = {split: [] for split in SPLITS}
    seen_code, seen_query = set(), set()
    for pair in sorted(pairs, key=lambda p: p.id):
        qkey = query_key(pair.query)
        if pair.code_key in seen_code:
            rule = "duplicate_code"
        elif (qkey, pair.package) in seen_query:
            rule = "duplicate_query"
        elif pair.code_key in pretraining.code_keys:
            rule = "pretraining_code"
        elif qkey in pretraining.query_keys:
            rule = "pretraining_query"
        else:
            rule = None
        seen_code.add(pair.code_key)
        seen_query.add((qkey, pair.package))
        if rule is not None:
            stats[rule] += 1
            continue
        stats["kept"] += 1
        examples[split_of[pair.package]].append(pair.example())
    return examples


def corpus_examples(stats: Stats) -> dict[str, list[dict[str, str]]]:
    """Every split of the corpus from ``PACKAGES``, with ``stats`` counting each rule's drops."""
    split_of = {pin.package: split for pin, split in PACKAGES}
    pairs = []
    for pin, _ in PACKAGES:
        for path, load in package_sources(pin):
            source = load()
            if source is None:
                stats["not_utf8_file"] += 1
                continue
            pairs += module_pairs(source, pin.package, path, stats)
    return build_examples(pairs, split_of, pretraining_code(), stats)


class PythonCodeSearch(tfds.core.GeneratorBasedBuilder):
    """Docstring summaries paired with the code they document, from pinned Debian packages."""

    name = NAME
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "22 pinned Debian packages split by package; deduplicated; no pretraining code."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({key: tfds.features.Text()
                                                 for key in ("id", "query", "document", "package")}),
            homepage="https://packages.debian.org/bookworm/",
            metadata=tfds.core.MetadataDict(),  # "sources", "pretraining_sources", "dropped": filled while building
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the sources come from apt, not a URL
        stats = Stats()
        examples = corpus_examples(stats)
        self.info.metadata["sources"] = [debian.deb_record(pin) | {"split": split} for pin, split in PACKAGES]
        self.info.metadata["pretraining_sources"] = [debian.deb_record(pin) for pin in corpus.CODE_PACKAGES]
        self.info.metadata["rules"] = dict(sorted(stats.items()))
        return {split: self._generate_examples(rows) for split, rows in examples.items()}

    def _generate_examples(self, rows):
        for row in rows:
            yield row["id"], row


def prepare(data_dir: str | os.PathLike | None = None) -> tfds.core.DatasetBuilder:
    """Build the dataset under ``data_dir`` once (array_record) and return its builder."""
    return tfds_builder.prepare_tfds(NAME, data_dir)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def load_splits(data_dir: str | os.PathLike | None = None) -> dict[str, list[dict[str, str]]]:
    """Every split as ``{"id", "query", "document", "package"}`` examples, in id order."""
    builder = prepare(data_dir)
    out = {}
    for split in SPLITS:
        source = builder.as_data_source(split=split)
        rows = [{key: _text(value) for key, value in source[i].items()} for i in range(len(source))]
        out[split] = sorted(rows, key=lambda row: row["id"])
    return out
