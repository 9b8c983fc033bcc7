"""The embedded default pretraining corpus: real prose and real code, from pinned Debian packages.

Prose:
    * the Python documentation (``debian.PYTHON_DOC``), its Sphinx sources turned into plain
      text by ``rst.to_text`` (markup removed, code examples kept verbatim);
    * Debian package long descriptions (one document per distinct description).
Code:
    * every ``.py`` file of ``CODE_PACKAGES``: the standard library (Debian ships it as
      ``libpython3.11-minimal`` and ``-stdlib``) and a few pure-Python packages, each at a pinned
      version, so the corpus is the same on every machine whose mirror serves those versions.

Nothing held out by a downstream corpus built from the same sources is a candidate, not even for
pretraining validation (``modernbert_jax.data.splits``): the Python-docs pages outside GLiNER's
train split, the packages outside SetFit's, and the package groups outside the train split of
the fine-tuning classification corpus (``splits.DEBIAN_PACKAGES``). Held-out text that recurs
elsewhere is left out too: a held-out package's description carried by another package, and a
train page's paragraphs that repeat a held-out page's words (``HeldOutText``).

Documents are ``Document(id, source, text)`` with ``source`` "prose" or "code".
``default_candidates`` lists them unread, optionally a deterministic subset (``max_documents``,
split evenly over the three origins, chosen by hash of the id so the subset is spread over the
whole collection); ``read_documents`` loads them, deduplicated by content hash;
``source_records`` is what the corpus records of its sources (package, version, .deb sha256).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from modernbert_jax.data import debian, rst, splits

PROSE, CODE = "prose", "code"

# Source code at pinned versions (look new ones up with `apt-cache policy`; pin by editing here).
CODE_PACKAGES = (
    debian.DebPin("libpython3.11-minimal", "3.11.2-6+deb12u8"),
    debian.DebPin("libpython3.11-stdlib", "3.11.2-6+deb12u8"),
    debian.DebPin("python3-docutils", "0.19+dfsg-6"),
    debian.DebPin("python3-pygments", "2.14.0+dfsg-1"),
    debian.DebPin("python3-jinja2", "3.1.2-1+deb12u3"),
    debian.DebPin("python3-requests", "2.28.1+dfsg-1"),
)


@dataclasses.dataclass(frozen=True)
class Document:
    id: str
    source: str  # PROSE or CODE
    text: str


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- document origins --------------------------------------------------------------------------

SHARED_WORDS = 8  # this many words in a row shared with a held-out page is a leak, not a common phrase


class HeldOutText:
    """The word runs of held-out documents, to cut the blocks that repeat them from other documents.

    The Python docs quote themselves (``howto/enum`` and ``library/enum`` share paragraphs; a
    "Changed in version" note recurs on several pages), each time with a different lead-in, so a
    block (blank-line separated: a paragraph or a code example) goes if it shares any run of
    ``SHARED_WORDS`` words with a held-out page. That costs 2.6% of the train pages' words.
    """

    def __init__(self, texts: Iterable[str]):
        self._runs: set[tuple[str, ...]] = set()
        for text in texts:
            self._runs.update(_word_runs(text.split()))

    def remove_from(self, text: str) -> str:
        """``text`` without its blocks that share a run of words with a held-out document."""
        return "\n\n".join(block for block in text.split("\n\n") if self._runs.isdisjoint(_word_runs(block.split())))


class HeldOutPassages:
    """Whole held-out passages, to find the documents that quote one (whitespace aside).

    A Debian plugin's description often opens with its host's, built from another source package
    (``caja-mediainfo`` repeats Caja's), so a description that contains a held-out one is left
    out. Cutting shared blocks instead (``HeldOutText``) would also cut the boilerplate paragraphs
    that whole language ecosystems share (11% of the descriptions' words). Passages are looked up
    by their first ``SHARED_WORDS`` words; shorter ones are phrases, not leaks.
    """

    def __init__(self, passages: Iterable[str]):
        self._by_opening: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for passage in passages:
            words = passage.split()
            if len(words) >= SHARED_WORDS:
                self._by_opening[tuple(words[:SHARED_WORDS])].add(" ".join(words))

    def quoted_in(self, text: str) -> bool:
        """Whether ``text`` contains one of the passages."""
        words = text.split()
        normalised = " ".join(words)
        return any(passage in normalised
                   for opening in self._by_opening.keys() & set(_word_runs(words)) for passage in self._by_opening[opening])


def _word_runs(words: Sequence[str]) -> Iterator[tuple[str, ...]]:
    return zip(*(words[i:] for i in range(SHARED_WORDS)))


def python_doc_pages(cache: str | os.PathLike | None = None) -> dict[str, Path]:
    """Every page of the Python docs by its key in the splits (its path under ``_sources``)."""
    root = debian.python_doc_root(cache) / "_sources"
    return {path.relative_to(root).as_posix(): path for path in debian.python_doc_sources(cache=cache)}


@functools.cache
def _held_out_text(cache: str | os.PathLike | None) -> HeldOutText:
    """The text of GLiNER's held-out pages (~100 pages, rendered once per process)."""
    return HeldOutText(
        rst.to_text(path.read_text(encoding="utf-8"))
        for key, path in python_doc_pages(cache).items() if splits.PYTHON_DOCS_NER.held_out(key)
    )


def python_doc_documents(cache: str | os.PathLike | None = None) -> list[tuple[str, Callable[[], str]]]:
    """(id, loader) for every page of GLiNER's train split, as plain text without held-out text."""
    return [
        (f"pydoc:{key}", lambda path=path: _held_out_text(cache).remove_from(rst.to_text(path.read_text(encoding="utf-8"))))
        for key, path in python_doc_pages(cache).items() if not splits.PYTHON_DOCS_NER.held_out(key)
    ]


def debian_description_documents(cache: str | os.PathLike | None = None) -> list[tuple[str, Callable[[], str]]]:
    """(id, loader) for every package with a long description that neither SetFit nor the
    fine-tuning classification corpus holds out, unless another package that SetFit holds out
    carries the same description, or the description quotes one that the fine-tuning corpus
    holds out (its package groups already join packages sharing a description verbatim; the
    loader gives "" for a quoting one, which ``read_documents`` drops)."""
    packages = debian.debian_packages(cache)
    group = splits.debian_package_groups(packages)
    packages = [p for p in packages if p.description]
    held_out = {p.description for p in packages if splits.debian_package_held_out(p.name, p.section)}
    fine_tuning = {p.name for p in packages if splits.DEBIAN_PACKAGES.held_out(group[p.name])}
    quoted = HeldOutPassages(p.description for p in packages if p.name in fine_tuning)
    return [
        (f"debian:{p.name}", lambda text=p.description: "" if quoted.quoted_in(text) else text + "\n")
        for p in packages if p.description not in held_out and p.name not in fine_tuning
    ]


def python_code_documents(
    cache: str | os.PathLike | None = None, max_file_bytes: int = 1 << 20
) -> list[tuple[str, Callable[[], str]]]:
    """(id, loader) for every UTF-8 ``.py`` file of ``CODE_PACKAGES`` (generated giants above
    ``max_file_bytes`` skipped), in path order; ids name the package and the path under ``usr/lib``."""
    items = []
    for pin in CODE_PACKAGES:
        lib = debian.extract_pinned(pin, cache) / "usr" / "lib"
        for dirpath, dirnames, filenames in os.walk(lib):
            dirnames.sort()  # os.walk's order is the file system's; the corpus's must not be
            here = Path(dirpath)
            for fname in sorted(filenames):
                path = here / fname
                if fname.endswith(".py") and path.is_file() and 0 < path.stat().st_size <= max_file_bytes:
                    items.append((f"code:{pin.package}/{path.relative_to(lib).as_posix()}",
                                  lambda path=path: _code_text(path, cache)))
    return items


def _code_text(path: Path, cache: str | os.PathLike | None) -> str:
    """The file's text, or "" (not part of the corpus) when it is not UTF-8 or quotes a held-out page:
    the standard library carries docs text (``pydoc_data/topics.py`` is the rendered language
    reference, docstrings repeat library pages), and cutting blocks out of code would break it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ""
    return text if _held_out_text(cache).remove_from(text) == text else ""


def source_records(cache: str | os.PathLike | None = None) -> list[dict]:
    """What the corpus records of its sources: each package's version and .deb sha256, and the
    hashes of the package lists that the descriptions came from."""
    return [
        debian.deb_record(debian.PYTHON_DOC, cache),
        debian.package_lists_record(cache),
        *(debian.deb_record(pin, cache) for pin in CODE_PACKAGES),
    ]


def _subset(items: list[tuple[str, Callable[[], str]]], limit: int | None) -> list[tuple[str, Callable[[], str]]]:
    """All items, or ``limit`` of them chosen by hash of the id (deterministic, spread out)."""
    if limit is None or limit >= len(items):
        return items
    return sorted(items, key=lambda item: hashlib.sha256(item[0].encode()).hexdigest())[:limit]


Candidate = tuple[str, str, Callable[[], str]]  # (source, id, loader)


def default_candidates(max_documents: int | None = None, *, cache: str | os.PathLike | None = None) -> list[Candidate]:
    """The documents of the default corpus, not yet read: ``(source, id, loader)``.

    ``max_documents`` caps the candidates, split evenly over Python docs, Debian descriptions
    and code files; deduplication in ``read_documents`` may drop a few more.
    """
    per_origin = None if max_documents is None else max(1, max_documents // 3)
    origins = [
        (PROSE, python_doc_documents(cache)),
        (PROSE, debian_description_documents(cache)),
        (CODE, python_code_documents(cache)),
    ]
    return [(source, doc_id, load) for source, items in origins for doc_id, load in _subset(items, per_origin)]


def read_documents(candidates: Sequence[Candidate]) -> Iterator[Document]:
    """Load candidates in order, dropping empty texts and exact duplicates (by content hash)."""
    seen: set[str] = set()
    for source, doc_id, load in candidates:
        text = load()
        digest = content_hash(text)
        if not text.strip() or digest in seen:
            continue
        seen.add(digest)
        yield Document(doc_id, source, text)
