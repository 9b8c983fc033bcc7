"""The python_code_search builder: query/document extraction, filtering, dedup, split by package,
exclusion of the pretraining code, determinism, array_record read without TensorFlow."""

import ast
import sys
import textwrap
from pathlib import Path

from modernbert_jax.data import debian
from finetune_jax.datasets import code_search

MODULE = textwrap.dedent('''\
    import functools


    def plain(x, y):
        """Add two numbers and double the result.

        More text that is not the query.
        """
        total = x + y
        return 2 * total


    class Tree:
        """A class docstring is not a pair."""

        @functools.lru_cache(maxsize=None)
        @staticmethod
        def depth(node):
            """Return the depth of the :class:`Tree` rooted at ``node``. Leaves have depth one."""

            # a comment stays
            if not node.children:
                return 1
            return 1 + max(Tree.depth(c) for c in node.children)

        async def fetch(self, url):
            """Fetch the page at url asynchronously."""
            async with self.session.get(url) as response:
                return await response.text()

        def outer(self):
            """Build a counter closure for this tree."""
            count = 0

            def inner(step):
                """Advance the counter by one step."""
                nonlocal count
                count += step
                return count
            return inner

        def text(self):
            """Render the tree as an indented block of text."""
            return """first
    second line of a literal at column zero
    """


    def stub(self):
        """Compute something clever in subclasses."""
        raise NotImplementedError


    def tiny(self):
        """Return the stored value directly."""
        return self.value


    def test_something():
        """Check that something works as expected."""
        assert plain(1, 2) == 6
        assert plain(0, 0) == 0


    def short_query(a, b):
        """Adds."""
        c = a + b
        return c


    def todo(a, b):
        """TODO write this docstring properly."""
        c = a + b
        return c


    def signature(a, b):
        """signature(a, b) -> int"""
        c = a * b
        return c
''')


def _pairs(source=MODULE, package="pkg", path="mod.py"):
    stats = code_search.Stats()
    return {p.id.rsplit(":", 1)[1]: p for p in code_search.module_pairs(source, package, path, stats)}, stats


def test_query_and_document_extraction_is_exact():
    pairs, stats = _pairs()
    assert list(pairs) == ["plain", "Tree.depth", "Tree.fetch", "Tree.outer", "Tree.outer.<locals>.inner",
                           "Tree.text"]
    assert pairs["plain"].id == "pkg:mod.py:plain" and pairs["plain"].package == "pkg"
    assert pairs["plain"].query == "Add two numbers and double the result."
    assert pairs["plain"].document == "def plain(x, y):\n    total = x + y\n    return 2 * total\n"
    # Decorators and comments kept, docstring and the blank line after it gone, roles and
    # backquotes removed, the query cut at the first sentence.
    assert pairs["Tree.depth"].query == "Return the depth of the Tree rooted at node."
    assert pairs["Tree.depth"].document == (
        "@functools.lru_cache(maxsize=None)\n@staticmethod\ndef depth(node):\n    # a comment stays\n"
        "    if not node.children:\n        return 1\n    return 1 + max(Tree.depth(c) for c in node.children)\n")
    assert pairs["Tree.fetch"].document.startswith("async def fetch(self, url):\n    async with")
    assert pairs["Tree.outer.<locals>.inner"].document == (
        "def inner(step):\n    nonlocal count\n    count += step\n    return count\n")
    # Only the function's own docstring goes: a nested function keeps its own.
    assert '"""Build' not in pairs["Tree.outer"].document and '"""Advance' in pairs["Tree.outer"].document
    # A literal's continuation line left of the def keeps its text (dedent by the def's indent only).
    assert "\nsecond line of a literal at column zero\n" in pairs["Tree.text"].document
    for pair in pairs.values():
        tree = ast.parse(pair.document)  # still valid Python
        assert ast.get_docstring(tree.body[0]) is None
        assert "  \n" not in pair.document and not pair.document.startswith(" ")
    assert stats == {"stub": 1, "short_document": 1, "test_function": 1, "short_query": 1, "not_a_summary": 2}


def test_code_key_ignores_formatting_and_comments_but_not_names():
    a = ast.parse("def f(x):\n    '''Doc.'''\n    # note\n    return (x +\n      1)\n").body[0]
    b = ast.parse("def f(x):\n    return x + 1\n").body[0]
    c = ast.parse("def g(x):\n    return x + 1\n").body[0]
    assert code_search.code_key(a) == code_search.code_key(b) != code_search.code_key(c)


def _pair(package, name, query, body="y = x * 2\n    return y"):
    source = f'def {name}(x):\n    """{query}"""\n    {body}\n'
    (pair,) = code_search.module_pairs(source, package, "m.py", code_search.Stats())
    return pair


def test_dedup_split_by_package_and_pretraining_exclusion():
    pretraining = code_search.Pretraining.from_sources([
        'def seen(x):\n    "Other words entirely here."\n    y = x * 3\n    return y\n',
        'def other(x):\n    "Return the cached answer now."\n    return x\n',
    ])
    pairs = [
        _pair("b", "copy", "Double the input value."),            # same code as a:copy: one kept (a's, by id)
        _pair("a", "copy", "Twice the input value here."),
        _pair("a", "same_query", "double the input value", "z = x + x\n    return z"),  # not a's query yet
        _pair("a", "same_query2", "Double the input value.", "w = x + x\n    return w"),  # duplicate of ^
        _pair("c", "seen", "A query of its own here.", "y = x * 3\n    return y"),     # pretraining code
        _pair("c", "cached", "Return the cached answer now.", "v = x - 1\n    return v"),  # pretraining query
        _pair("c", "fresh", "Triple the input value.", "y = x * 5\n    return y"),
    ]
    stats = code_search.Stats()
    split_of = {"a": "train", "b": "test", "c": "validation"}
    got = code_search.build_examples(pairs, split_of, pretraining, stats)
    assert {split: [r["id"] for r in rows] for split, rows in got.items()} == {
        "train": ["a:m.py:copy", "a:m.py:same_query"], "validation": ["c:m.py:fresh"], "test": []}
    assert stats == {"kept": 3, "duplicate_code": 1, "duplicate_query": 1, "pretraining_code": 1,
                     "pretraining_query": 1}
    assert all(split_of[r["package"]] == split for split, rows in got.items() for r in rows)
    # Deterministic whatever the input order.
    assert code_search.build_examples(pairs[::-1], split_of, pretraining, code_search.Stats()) == got


def _fake_packages(tmp_path, monkeypatch):
    """Three fake .deb trees (with a vendored copy and a test suite to skip) and a pretraining file."""
    pins = [debian.DebPin("python3-alpha", "1.0-1"), debian.DebPin("python3-beta", "2.0-1"),
            debian.DebPin("python3-gamma", "3.0-1")]
    shared = 'def shared(x):\n    """Shared helper in two packages."""\n    y = x - 1\n    return y\n'
    for i, pin in enumerate(pins):
        lib = tmp_path / "trees" / pin.package / code_search.LIBRARY_DIR / pin.package[8:]
        for sub in ("", "_vendor", "tests"):
            (lib / sub).mkdir(parents=True, exist_ok=True)
        own = f'def own{i}(x):\n    """Scale by a factor of this package."""\n    y = x * {i + 7}\n    return y\n'
        (lib / "core.py").write_text(MODULE.replace("def plain(", f"def plain{i}(") + shared + own)
        (lib / "_vendor" / "copied.py").write_text(MODULE.replace("def plain(", "def vendored("))
        (lib / "tests" / "helpers.py").write_text(MODULE.replace("def plain(", "def helper("))
        (lib / "latin1.py").write_bytes(b"# \xe9\n")
    monkeypatch.setattr(code_search, "PACKAGES", tuple(zip(pins, ("train", "validation", "test"))))
    monkeypatch.setattr(code_search.debian, "extract_pinned", lambda pin, cache=None: tmp_path / "trees" / pin.package)
    monkeypatch.setattr(code_search.debian, "deb_record",
                        lambda pin, cache=None: {"package": pin.package, "version": pin.version, "sha256": "0" * 64})
    # gamma's plain2 under another docstring: the code, not the docstring, makes it pretraining's
    pretraining = 'def plain2(x, y):\n    """Other words."""\n    total = x + y\n    return 2 * total\n'

    monkeypatch.setattr(code_search.corpus, "python_code_documents", lambda cache=None: [("code:x", lambda: pretraining)])


def test_corpus_from_packages_is_deterministic_and_leak_free(tmp_path, monkeypatch):
    _fake_packages(tmp_path, monkeypatch)
    stats = code_search.Stats()
    examples = code_search.corpus_examples(stats)
    ids = {split: [r["id"].split(":", 1)[1] for r in rows] for split, rows in examples.items()}
    # Every package loses its nested-function copies of the same code to the first package's, so
    # only alpha keeps Tree.*; gamma's plain2 is pretraining code; vendored and test files are skipped.
    assert ids == {
        "train": ["alpha/core.py:" + q for q in ("Tree.depth", "Tree.fetch", "Tree.outer", "Tree.outer.<locals>.inner",
                                                 "Tree.text", "own0", "plain0", "shared")],
        "validation": ["beta/core.py:own1", "beta/core.py:plain1"],
        "test": ["gamma/core.py:own2"],
    }
    assert stats["not_utf8_file"] == 3 and stats["pretraining_code"] == 1 and stats["duplicate_code"] == 12
    documents = [r["document"] for rows in examples.values() for r in rows]
    assert len(documents) == len(set(documents))
    assert code_search.corpus_examples(code_search.Stats()) == examples  # same sources, same examples


def test_array_record_without_tensorflow(tmp_path, monkeypatch):
    _fake_packages(tmp_path, monkeypatch)
    data_dir = tmp_path / "tfds"
    got = code_search.load_splits(data_dir)
    assert got == code_search.corpus_examples(code_search.Stats())
    assert all(isinstance(v, str) for rows in got.values() for r in rows for v in r.values())
    assert "tensorflow" not in sys.modules
    info = code_search.prepare(data_dir).info
    assert [s["package"] for s in info.metadata["sources"]] == ["python3-alpha", "python3-beta", "python3-gamma"]
    assert info.metadata["rules"]["kept"] == 11
    # A rebuild from the same sources writes the same bytes.
    again = code_search.prepare(tmp_path / "tfds2").data_dir
    files = sorted(p.name for p in Path(info.data_dir).glob("*.array_record*"))
    assert len(files) == 3 and files == sorted(p.name for p in Path(again).glob("*.array_record*"))
    assert all((Path(info.data_dir) / f).read_bytes() == (Path(again) / f).read_bytes() for f in files)
