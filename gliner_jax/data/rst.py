"""Sphinx reStructuredText → plain-text paragraphs with character-exact typed spans.

The Python documentation marks code entities by hand with roles (``:func:`len```,
``:class:`~collections.OrderedDict```, ``:pep:`8```, ``:envvar:`PYTHONPATH```...). This
module turns each prose paragraph into the text a reader sees — roles rendered the way
Sphinx renders them (``~a.b`` → ``b``, ``title <target>`` → ``title``, ``!x`` → ``x``,
``:pep:`8``` → ``PEP 8``), inline literals, emphasis, links and escapes unwrapped — and
records where each typed role landed. Code samples, doctests, tables, directive headers
and section underlines are not prose and are skipped.
"""

from __future__ import annotations

import re
from typing import Iterator, NamedTuple

# Role → natural-language entity type (what a user would type as a GLiNER label).
ROLE_TYPES = {
    "func": "function",
    "meth": "method",
    "class": "class",
    "mod": "module",
    "exc": "exception",
    "attr": "attribute",
    "const": "constant",
    "data": "variable",
    "envvar": "environment variable",
    "pep": "PEP",
    "rfc": "RFC",
    "term": "glossary term",
    "keyword": "keyword",
    "option": "command-line option",
    "file": "file path",
    "program": "program",
    "c:func": "C function",
    "c:type": "C type",
    "c:macro": "C macro",
    "c:member": "C struct member",
    "c:data": "C variable",
    "opcode": "bytecode instruction",
    "mailheader": "mail header",
    "mimetype": "MIME type",
}

# Directives whose indented body is code or data, not prose.
NON_PROSE_DIRECTIVES = {
    "code-block", "sourcecode", "code", "doctest", "testcode", "testoutput", "testsetup", "testcleanup",
    "productionlist", "csv-table", "table", "list-table", "literalinclude", "include", "image", "figure",
    "toctree", "raw", "highlight", "index", "only", "math", "graphviz", "opcodesummary", "c:macro",
    "audit-event-table", "moduleauthor", "sectionauthor", "tabularcolumns", "digraph",
}


class Span(NamedTuple):
    start: int  # character offsets in the plain text, end exclusive
    end: int
    label: str


class Paragraph(NamedTuple):
    text: str
    spans: list[Span]


_ROLE = r":(?P<role>(?:[a-z]+:)?[a-z]+):`(?P<role_body>(?:[^`\\]|\\.)+)`"
_INLINE = re.compile(
    "|".join([
        _ROLE,
        r"``(?P<literal>.+?)``",
        r"\*\*(?P<strong>[^*]+?)\*\*",
        r"(?<![\w*])\*(?P<emph>[^*\s][^*]*?)\*(?![\w*])",
        r"`(?P<link>[^`]+?)`__?",
        r"`(?P<default>[^`]+?)`(?!_)",
        r"\[(?:#[\w-]*|\d+|\*)\]_",  # footnote and citation references render as superscripts
        r"\|(?P<subst>[\w ./-]+)\|_?",
        r"\\(?P<escaped>.)",
    ]),
    re.DOTALL,
)
_TITLE_TARGET = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^<>]+)>$", re.DOTALL)


def render_role(role: str, body: str) -> str:
    """The text Sphinx shows for ``:role:`body```."""
    body = re.sub(r"\\(.)", r"\1", body)
    match = _TITLE_TARGET.match(body)
    if match and match.group("title"):
        return match.group("title")
    if match:
        body = match.group("target")
    if body.startswith("!"):
        return body[1:]
    if body.startswith("~"):
        body = body[1:]
        # Shortened form: the last dotted component, keeping a trailing call "()".
        return body.rsplit(".", 1)[-1]
    if role == "pep":
        return "PEP " + body.split("#")[0]
    if role == "rfc":
        return "RFC " + body.split("#")[0]
    if role == "issue":
        return "bpo-" + body
    if role == "gh":
        return "gh-" + body
    if role == "samp":
        return re.sub(r"[{}]", "", body)
    return body


def render_inline(raw: str) -> Paragraph:
    """Plain text and typed spans for one paragraph of inline reStructuredText."""
    out: list[str] = []
    spans: list[Span] = []
    length = 0
    pos = 0

    def emit(piece: str) -> None:
        nonlocal length
        out.append(piece)
        length += len(piece)

    for m in _INLINE.finditer(raw):
        emit(raw[pos: m.start()])
        pos = m.end()
        kind = m.lastgroup
        if m.group("role") is not None:
            role = m.group("role")
            role = role[3:] if role.startswith("py:") else role
            shown = render_role(role, m.group("role_body")).strip()
            start = length
            emit(shown)
            label = ROLE_TYPES.get(role)
            if label and shown:
                spans.append(Span(start, length, label))
        elif kind == "link":
            body = m.group("link")
            title = _TITLE_TARGET.match(body)
            emit(title.group("title") if title and title.group("title") else body)
        elif kind in ("literal", "strong", "emph", "default", "subst", "escaped"):
            piece = m.group(kind)
            emit("" if kind == "escaped" and piece == " " else piece)
        # footnote references render as nothing
    emit(raw[pos:])
    text = "".join(out)
    # Collapse whitespace, shifting spans with it.
    clean: list[str] = []
    new_index = []
    for ch in text:
        new_index.append(len(clean))
        if ch.isspace():
            if clean and clean[-1] != " ":
                clean.append(" ")
        else:
            clean.append(ch)
    new_index.append(len(clean))
    result = "".join(clean)
    lead = len(result) - len(result.lstrip())
    result = result.strip()
    moved = []
    for s in spans:
        a, b = new_index[s.start] - lead, new_index[s.end] - lead
        b = min(b, len(result))
        while b > a and result[b - 1] == " ":
            b -= 1
        if 0 <= a < b:
            moved.append(Span(a, b, s.label))
    return Paragraph(result, moved)


_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\.\s+(?P<name>[\w:-]+)::(?P<rest>.*)$")
_COMMENT_OR_TARGET = re.compile(r"^\s*\.\.(\s|$)")
_UNDERLINE = re.compile(r"^\s*([=\-~^\"'`#*+<>_.:])\1{2,}\s*$")
_TABLE = re.compile(r"^\s*(\+[-=+]+\+|\|.*\|)\s*$")
_BULLET = re.compile(r"^(?:[-*+•]|#\.|\d+[.)]|\([a-z0-9]+\))\s+")
_FIELD = re.compile(r"^\s*:[\w ]+:(\s|$)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def paragraphs(source: str) -> Iterator[str]:
    """Raw prose paragraphs of an ``.rst`` file (inline markup still in place)."""
    lines = source.splitlines()
    i, n = 0, len(lines)
    block: list[str] = []

    def flush() -> Iterator[str]:
        if block:
            text = " ".join(line.strip() for line in block)
            text = _BULLET.sub("", text)
            block.clear()
            if text:
                yield text

    def skip_body(base: int, start: int) -> int:
        """Index of the first line after the block indented deeper than ``base``."""
        j = start
        while j < n and (not lines[j].strip() or _indent(lines[j]) > base):
            j += 1
        return j

    while i < n:
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            yield from flush()
            i += 1
            continue
        directive = _DIRECTIVE.match(line)
        if directive:
            yield from flush()
            base = _indent(line)
            if directive.group("name") in NON_PROSE_DIRECTIVES:
                i = skip_body(base, i + 1)
                continue
            i += 1
            # Directive arguments continue on deeper-indented lines; options follow as fields.
            while i < n and lines[i].strip() and (_FIELD.match(lines[i]) or _indent(lines[i]) > base + 3):
                i += 1
            continue
        if _COMMENT_OR_TARGET.match(line):  # comments, link targets, substitution definitions
            yield from flush()
            i = skip_body(_indent(line), i + 1)
            continue
        if _UNDERLINE.match(line) or _TABLE.match(line) or stripped.startswith(">>>"):
            if _UNDERLINE.match(line) and block:
                block.clear()  # the preceding line was a section title, not prose
            yield from flush()
            i += 1
            if stripped.startswith(">>>"):  # doctest block: until a blank line
                while i < n and lines[i].strip():
                    i += 1
            continue
        if _FIELD.match(line):
            yield from flush()
            i += 1
            continue
        block.append(line)
        i += 1
        if stripped.endswith("::"):
            # "Paragraph::" introduces a literal block: keep the prose, drop the code.
            last = block[-1].rstrip()
            block[-1] = last[:-2].rstrip() + (":" if not last.endswith(" ::") and len(last) > 2 else "")
            base = _indent(line)
            yield from flush()
            j = i
            while j < n and not lines[j].strip():
                j += 1
            if j < n and _indent(lines[j]) > base:
                i = skip_body(base, j)
    yield from flush()


def document_paragraphs(source: str) -> list[Paragraph]:
    """Rendered prose paragraphs of one document."""
    return [p for p in (render_inline(raw) for raw in paragraphs(source)) if p.text]
