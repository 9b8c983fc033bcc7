"""The embedded default pretraining corpus: real prose and real code that any Debian machine has.

Prose:
    * the Python documentation (Debian's ``python3.11-doc``), its Sphinx sources turned into
      plain text by ``rst_to_text`` (markup removed, code examples kept verbatim);
    * Debian package long descriptions (one document per distinct description).
Code:
    * every ``.py`` file of the Python standard library and of the installed packages
      (``sysconfig`` stdlib and purelib of the running interpreter).

Documents are ``Document(id, source, text)`` with ``source`` "prose" or "code".
``default_candidates`` lists them unread, optionally a deterministic subset (``max_documents``,
split evenly over the three origins, chosen by hash of the id so the subset is spread over the
whole collection); ``read_documents`` loads them, deduplicated by content hash; and ``split_of``
assigns each document to train or validation by its content hash, so a document's split never
depends on what else is in the corpus.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sysconfig
import textwrap
from pathlib import Path
from typing import Callable, Iterator, Sequence

from modernbert_jax.data import debian

PROSE, CODE = "prose", "code"


@dataclasses.dataclass(frozen=True)
class Document:
    id: str
    source: str  # PROSE or CODE
    text: str


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_of(text: str, validation_fraction: float) -> str:
    """"train" or "validation", decided by the document's content hash alone."""
    bucket = int(content_hash(text)[:8], 16) / 0x100000000
    return "validation" if bucket < validation_fraction else "train"


# --- reStructuredText -> plain text ------------------------------------------------------------

# Directives whose body is code or data to keep verbatim.
_LITERAL_DIRECTIVES = {"code-block", "sourcecode", "code", "doctest", "testcode", "testoutput", "productionlist", "parsed-literal"}
# Directives that carry no prose (navigation, layout, metadata).
_DROPPED_DIRECTIVES = {
    "toctree", "index", "highlight", "include", "literalinclude", "image", "figure", "raw", "tabularcolumns",
    "sectionauthor", "moduleauthor", "testsetup", "testcleanup", "only", "audit-event-table", "csv-table",
    "availability", "audit-event", "impl-detail", "c:macro", "c:type", "opcode", "cmdoption", "option",
}
_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::\s?(.*)$")
_OPTION = re.compile(r"^\s*:[\w -]+:(\s.*)?$")
_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+<>:._])\1{2,}\s*$")
_TABLE_RULE = re.compile(r"^\s*[+|]?[-=+| ]*[-=]{3,}[-=+| ]*$")
_ROLE = re.compile(r"(?::[\w.+-]+)?:([\w.+-]+):`([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")
_LINK = re.compile(r"`([^`<]+?)\s*<[^`>]*>`__?")
_REF = re.compile(r"`([^`]+)`__?")
_STRONG = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*")
_EMPH = re.compile(r"(?<![\w*\\])\*(\S(?:[^*]*?\S)?)\*(?![\w*])")
_FOOTNOTE_REF = re.compile(r"\s*\[[#*\w-]*\]_")
_SUBSTITUTION_REF = re.compile(r"\|([^|\s][^|]*)\|_{0,2}")
_MULTILINE_INLINE = re.compile(r"(?::[\w.+-]+)?:[\w.+-]+:`[^`\n]*\n[^`]{0,200}?`|(?<![`\w])``(?=\S)[^`\n]*\n[^`]{0,200}?``")
_GRID_ROW = re.compile(r"^\|.*\|$")
# Sphinx renders these with a fixed prefix; keep the words a reader of the page sees.
_ROLE_PREFIX = {"pep": "PEP ", "rfc": "RFC "}
_VERSION_DIRECTIVES = {"versionadded": "New in version", "versionchanged": "Changed in version", "deprecated": "Deprecated since version"}


def _role_text(match: re.Match) -> str:
    role, content = match.group(1), match.group(2).strip()
    titled = re.fullmatch(r"(.+?)\s*<[^<>]+>", content, re.S)
    if titled:
        return titled.group(1)
    if content.startswith("~"):
        return content[1:].rsplit(".", 1)[-1]
    return _ROLE_PREFIX.get(role, "") + content.lstrip("!")


def _inline(text: str) -> str:
    text = _ROLE.sub(_role_text, text)
    text = _FOOTNOTE_REF.sub("", text)
    text = _SUBSTITUTION_REF.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _REF.sub(r"\1", text)
    text = _STRONG.sub(r"\1", text)
    return _EMPH.sub(r"\1", text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block_end(lines: Sequence[str], start: int, base_indent: int) -> int:
    """End of the block after ``start``: blank lines or lines indented deeper than ``base_indent``."""
    j = start
    while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base_indent):
        j += 1
    while j > start and not lines[j - 1].strip():  # trailing blank lines belong to the parent
        j -= 1
    return j


def _dedent(lines: Sequence[str]) -> list[str]:
    return textwrap.dedent("\n".join(lines)).strip("\n").split("\n") if lines else []


def _convert(lines: Sequence[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            out.append("")
            i += 1
            continue
        indent = _indent(line)
        directive = _DIRECTIVE.match(line)
        if directive:
            name, args = directive.group(2), directive.group(3).strip()
            end = _block_end(lines, i + 1, indent)
            body = list(lines[i + 1 : end])
            while body and _OPTION.match(body[0]):
                body.pop(0)
            if name in _LITERAL_DIRECTIVES:
                out.extend(["", *_dedent(body), ""])
            elif name in _VERSION_DIRECTIVES:
                out.append(f"{_VERSION_DIRECTIVES[name]} {_inline(args)}" + (":" if body else "."))
                out.extend(_convert(_dedent(body)))
            elif name not in _DROPPED_DIRECTIVES and not name.startswith("c:"):
                if args:
                    out.append(_inline(args))
                out.extend(_convert(_dedent(body)))
            i = end
            continue
        if stripped.startswith(".."):  # comment, hyperlink target, substitution definition
            i = _block_end(lines, i + 1, indent)
            continue
        if _ADORNMENT.match(stripped) or _TABLE_RULE.match(stripped) or _GRID_ROW.match(stripped):
            i += 1
            continue
        if stripped.endswith("::"):
            head = stripped[:-2].rstrip()
            if head and not stripped.endswith(" ::"):
                head += ":"
            if head:
                out.append(_inline(head))
            end = _block_end(lines, i + 1, indent)
            out.extend(["", *_dedent(lines[i + 1 : end]), ""])
            i = end
            continue
        out.append(_inline(stripped))
        i += 1
    return out


def rst_to_text(rst: str) -> str:
    """Plain text of a Sphinx source: roles/emphasis/links reduced to their text, headings'
    underlines and directive options dropped, literal (code) blocks kept verbatim."""
    # Roles and inline literals may wrap onto the next line; join them so the line-based pass sees them whole.
    rst = _MULTILINE_INLINE.sub(lambda m: " ".join(m.group(0).split()), rst)
    text = "\n".join(_convert(rst.splitlines()))
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


# --- document origins --------------------------------------------------------------------------


def python_doc_documents(cache: str | os.PathLike | None = None) -> list[tuple[str, Callable[[], str]]]:
    """(id, loader) for every page of the Python documentation, as plain text."""
    root = debian.python_doc_root(cache=cache) / "_sources"
    return [
        (f"pydoc:{path.relative_to(root).as_posix()}", lambda path=path: rst_to_text(path.read_text(encoding="utf-8")))
        for path in debian.python_doc_sources(cache=cache)
    ]


def debian_description_documents(cache: str | os.PathLike | None = None) -> list[tuple[str, Callable[[], str]]]:
    """(id, loader) for every Debian package with a long description."""
    return [
        (f"debian:{p.name}", lambda text=p.description: text + "\n")
        for p in debian.debian_packages(cache) if p.description
    ]


def python_code_roots() -> dict[str, Path]:
    """Where the running interpreter keeps the standard library and installed packages."""
    paths = sysconfig.get_paths()
    return {"stdlib": Path(paths["stdlib"]), "site-packages": Path(paths["purelib"])}


def python_code_documents(
    roots: dict[str, Path] | None = None, max_file_bytes: int = 1 << 20
) -> list[tuple[str, Callable[[], str]]]:
    """(id, loader) for every UTF-8 ``.py`` file under the roots (generated giants above
    ``max_file_bytes`` skipped). Nested roots are walked once: stdlib excludes site-packages."""
    roots = python_code_roots() if roots is None else roots
    resolved = {name: Path(r).resolve() for name, r in roots.items()}
    others = set(resolved.values())
    items = []
    for name, root in sorted(resolved.items()):
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            dirnames[:] = sorted(
                d for d in dirnames
                if (here / d).resolve() not in others and d not in ("site-packages", "dist-packages", "__pycache__")
            )
            for fname in sorted(filenames):
                path = here / fname
                if fname.endswith(".py") and path.is_file() and 0 < path.stat().st_size <= max_file_bytes:
                    items.append((f"code:{name}/{path.relative_to(root).as_posix()}", lambda path=path: _read_utf8(path)))
    return items


def _read_utf8(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ""  # not UTF-8: not part of the corpus


def _subset(items: list[tuple[str, Callable[[], str]]], limit: int | None) -> list[tuple[str, Callable[[], str]]]:
    """All items, or ``limit`` of them chosen by hash of the id (deterministic, spread out)."""
    if limit is None or limit >= len(items):
        return items
    return sorted(items, key=lambda item: hashlib.sha256(item[0].encode()).hexdigest())[:limit]


Candidate = tuple[str, str, Callable[[], str]]  # (source, id, loader)


def default_candidates(
    max_documents: int | None = None,
    *,
    cache: str | os.PathLike | None = None,
    code_roots: dict[str, Path] | None = None,
) -> list[Candidate]:
    """The documents of the default corpus, not yet read: ``(source, id, loader)``.

    ``max_documents`` caps the candidates, split evenly over Python docs, Debian descriptions
    and code files; deduplication in ``read_documents`` may drop a few more.
    """
    per_origin = None if max_documents is None else max(1, max_documents // 3)
    origins = [
        (PROSE, python_doc_documents(cache)),
        (PROSE, debian_description_documents(cache)),
        (CODE, python_code_documents(code_roots)),
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
