"""The Python documentation's Sphinx sources, parsed once, with two outputs.

``parse`` turns one ``.rst.txt`` page into ``Block``s: prose paragraphs (inline markup rendered
the way Sphinx shows it, with the typed span of every role; definition terms included),
headings (section titles, rubrics, directive titles), table rows, and verbatim blocks (code
samples, doctests, object signatures).
Both corpora are views of those blocks, so they can never disagree:

    to_text(source)              plain text for pretraining: every block, blank-line separated
    document_paragraphs(source)  NER: the prose ``Paragraph(text, spans)``s, spans character-exact

Roles render as on the page: ``:func:`~json.loads``` → ``loads()``, ``:meth:`title <a.b>``` →
``title``, ``:exc:`!ValueError``` → ``ValueError``, ``:pep:`8``` → ``PEP 8``; the version,
availability, audit-event and implementation-detail directives get the words Sphinx puts in
front of them ("Changed in version 3.2: ..."). What cannot be resolved from one page is shown
as written: ``:ref:``/``:doc:`` targets without a title and ``|substitution|`` names.
"""

from __future__ import annotations

import re
import textwrap
from typing import NamedTuple, Sequence

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

PROSE, HEADING, TABLE, VERBATIM = "prose", "heading", "table", "verbatim"


class Span(NamedTuple):
    start: int  # character offsets in the paragraph text, end exclusive
    end: int
    label: str


class Paragraph(NamedTuple):
    text: str
    spans: list[Span]


class Block(NamedTuple):
    kind: str  # PROSE, HEADING, TABLE or VERBATIM; only PROSE paragraphs are NER examples
    paragraph: Paragraph


# --- inline markup --------------------------------------------------------------------------------

# Python- and C-domain cross-references: ``~`` shortens to the last component.
_PY_XREF_ROLES = {"func", "meth", "class", "mod", "exc", "attr", "const", "data", "obj"}
# Sphinx's add_function_parentheses (on in the Python docs) shows these as ``name()``.
_CALLABLE_ROLES = {"func", "meth", "c:func"}
_ROLE_PREFIX = {"pep": "PEP ", "rfc": "RFC ", "issue": "bpo-", "gh": "gh-"}
_EXPLICIT_TITLE = re.compile(r"^(?P<title>.+?)\s*(?<!\\)<(?P<target>[^<]*?)>$", re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)

# Inline markup starts after whitespace or punctuation, never inside a word.
_START = r"(?<![\w\\])"
_INLINE = re.compile(
    r"(?=[:`*|\\\[\s])(?:" + "|".join([
        _START + r":(?P<role>[A-Za-z0-9]+(?::[A-Za-z0-9]+)?):`(?P<role_body>(?:[^`\\]|\\.)+)`",
        _START + r"``(?P<literal>.+?)``",
        _START + r"\*\*(?P<strong>[^*\s](?:[^*]*?[^*\s])?)\*\*(?![\w*])",
        _START + r"\*(?P<emphasis>[^*\s](?:[^*]*?[^*\s])?)\*(?![\w*])",
        _START + r"`(?P<reference>[^`]+)`__?",
        _START + r"`(?P<interpreted>[^`]+)`",
        # Footnote and citation references become superscripts: no words, no space before them.
        r"\s*\[(?:#[\w-]*|\*|\d+|[A-Za-z][\w.-]*)\]_(?!\w)",
        _START + r"\|(?P<substitution>[^|\s](?:[^|]*[^|\s])?)\|(?:__?)?(?!\w)",
        r"\\(?P<escaped>.)",
    ]) + ")",  # the lookahead skips, cheaply, every position that cannot start markup
    re.DOTALL,
)


def _unescape(text: str) -> str:
    return _ESCAPE.sub(r"\1", text)


def render_role(role: str, body: str) -> str:
    """The text Sphinx shows for ``:role:`body```."""
    role = role.lower().removeprefix("py:")  # role names are case-insensitive
    body = re.sub(r"\\\s", "", body)  # an escaped line break joins the lines
    titled = _EXPLICIT_TITLE.match(body)
    if titled:  # an explicit title is shown as written, whatever the role
        return _unescape(titled.group("title"))
    if role in ("samp", "file"):  # {placeholders} are shown (emphasised) without their braces
        return re.sub(r"\\(.)|[{}]", lambda m: m.group(1) or "", body)
    text = _unescape(body)
    if text.startswith("!"):  # "!" suppresses the link only
        text = text[1:]
    elif role in _PY_XREF_ROLES or role.startswith("c:"):
        text = text.lstrip(".") if role in _PY_XREF_ROLES else text
        if text.startswith("~"):
            text = text[1:].rsplit(".", 1)[-1]
    if role in _CALLABLE_ROLES:
        text = text.removesuffix("()") + "()"
    if role == "abbr":  # the explanation is a tooltip
        return re.sub(r"\s*\(.*\)$", "", text, flags=re.DOTALL)
    if role in ("guilabel", "menuselection"):  # "&" marks the keyboard accelerator
        text = re.sub(r"&(&?)", r"\1", text)
        return text.replace("-->", "\N{TRIANGULAR BULLET}") if role == "menuselection" else text
    return _ROLE_PREFIX.get(role, "") + text


def render_inline(raw: str) -> Paragraph:
    """The text a reader sees for inline reStructuredText, whitespace collapsed, and the span of
    every role that has an entity type in ``ROLE_TYPES``."""
    pieces: list[str] = []
    roles: list[Span] = []
    length = pos = 0
    for match in _INLINE.finditer(raw):
        kind = match.lastgroup
        if kind == "role_body":
            shown = render_role(match.group("role"), match.group("role_body")).strip()
        elif kind == "reference":
            titled = _EXPLICIT_TITLE.match(match.group("reference"))
            shown = titled.group("title") if titled else match.group("reference")
        elif kind == "escaped":
            shown = "" if match.group("escaped").isspace() else match.group("escaped")
        elif kind is None:  # footnote reference
            shown = ""
        else:
            shown = match.group(kind)
        before = raw[pos: match.start()]
        pieces += [before, shown]
        start = length + len(before)
        length = start + len(shown)
        pos = match.end()
        label = ROLE_TYPES.get(match.group("role").lower().removeprefix("py:")) if kind == "role_body" else None
        if label and shown:
            roles.append(Span(start, length, label))
    pieces.append(raw[pos:])
    return _collapse_whitespace("".join(pieces), roles)


def _collapse_whitespace(text: str, spans: list[Span]) -> Paragraph:
    """``text`` with runs of whitespace made one space and the ends stripped, spans moved along."""

    def moved(position: int) -> int:
        head = text[:position]
        collapsed = len(" ".join(head.split()))
        # A space before a span's start survives as the separator, unless nothing precedes it.
        return collapsed + 1 if head[-1:].isspace() and collapsed else collapsed

    return Paragraph(" ".join(text.split()), [Span(moved(s.start), moved(s.end), s.label) for s in spans])


# --- blocks -------------------------------------------------------------------------------------

_DIRECTIVE = re.compile(r"^\s*\.\.\s+(?P<name>[\w:-]+)::(?:\s+(?P<args>.*)|$)")
_EXPLICIT_MARKUP = re.compile(r"^\s*\.\.(\s|$)")  # comments, link targets, substitution definitions
_FIELD = re.compile(r"^\s*:(?P<name>(?![: ])(?:[^:\\`]|\\.)+?)(?<! ):(?:\s+|$)(?P<rest>.*)$")
_ADORNMENT = re.compile(r"^\s*([=\-~^\"'`#*+<>_.:])\1{2,}\s*$")
_GRID_BORDER = re.compile(r"^\s*\+[-=]+\+(?:[-=]+\+)*\s*$")
_SIMPLE_RULE = re.compile(r"^\s*[=-]+(?:\s+[=-]+)+\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|#\.|\d+[.)]|\(\w\))\s+(?=\S)")

# Directive families by what Sphinx shows for them.
_OBJECT_DIRECTIVES = {  # a signature, then a prose description
    "function", "method", "class", "attribute", "data", "exception", "decorator", "decoratormethod",
    "classmethod", "staticmethod", "abstractmethod", "coroutinefunction", "coroutinemethod",
    "awaitablefunction", "awaitablemethod", "describe", "object", "cmdoption", "option", "envvar",
    "opcode", "pdbcommand", "2to3fixer",
}
_CODE_DIRECTIVES = {"code-block", "sourcecode", "code", "doctest", "testcode", "testoutput"}
_ADMONITIONS = {  # no arguments: text on the directive line is the start of the content
    "note", "warning", "seealso", "important", "caution", "tip", "hint", "attention", "danger",
    "error", "epigraph", "glossary", "impl-detail",
}
_HIDDEN_DIRECTIVES = {  # navigation, metadata, build-time content: nothing a reader sees as text
    "toctree", "index", "highlight", "include", "literalinclude", "image", "figure", "raw",
    "tabularcolumns", "sectionauthor", "moduleauthor", "testsetup", "testcleanup", "only",
    "audit-event-table", "limited-api-list", "miscnews", "module", "currentmodule", "program", "contents",
    "default-role", "math", "csv-table",
}
_VERSION_LABELS = {
    "versionadded": "New in version {}",
    "versionchanged": "Changed in version {}",
    "deprecated": "Deprecated since version {}",
    "deprecated-removed": "Deprecated since version {}, will be removed in version {}",
}
_AUDIT_EVENT = ("Raises an auditing event {} with no arguments.", "Raises an auditing event {} with argument {}.",
                "Raises an auditing event {} with arguments {}.")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _body_end(lines: Sequence[str], start: int, indent: int) -> int:
    """First line from ``start`` on that is not blank and not indented deeper than ``indent``."""
    j = start
    while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > indent):
        j += 1
    return j


def _dedent(lines: Sequence[str]) -> list[str]:
    return textwrap.dedent("\n".join(lines)).split("\n") if lines else []


def _plain(kind: str, text: str) -> Block:
    return Block(kind, Paragraph(text, []))


def _verbatim(lines: Sequence[str]) -> Block:
    return _plain(VERBATIM, "\n".join(_dedent(lines)).strip("\n"))


def _lead(label: str, blocks: list[Block]) -> list[Block]:
    """Sphinx's "label: first paragraph" (or "label." alone) for version-like directives."""
    if blocks and blocks[0].kind == PROSE:
        first, shift = blocks[0].paragraph, len(label) + 2
        spans = [Span(s.start + shift, s.end + shift, s.label) for s in first.spans]
        return [Block(PROSE, Paragraph(f"{label}: {first.text}", spans)), *blocks[1:]]
    return [_plain(PROSE, label + "."), *blocks]


def _split_directive(args: str, body: list[str], takes_arguments: bool) -> tuple[list[str], list[str]]:
    """(argument lines, content lines), split as docutils does: arguments and options run to the
    first blank line; a directive without arguments starts its content there instead."""
    blank = next((k for k, line in enumerate(body) if not line.strip()), len(body))
    head = ([args] if args else []) + body[:blank]
    options = next((k for k, line in enumerate(head) if _FIELD.match(line)), len(head))
    if not takes_arguments:
        return [], head[:options] + body[blank:]
    return head[:options], body[blank + 1:]


def _directive(name: str, args: str, body: list[str]) -> list[Block]:
    if name in _HIDDEN_DIRECTIVES:
        return []
    if name in _ADMONITIONS:
        _, content = _split_directive(args, body, takes_arguments=False)
        blocks = _blocks(content)
        return _lead("CPython implementation detail", blocks) if name == "impl-detail" else blocks
    arguments, content = _split_directive(args, body, takes_arguments=True)
    argument = " ".join(line.strip() for line in arguments)
    if name in _CODE_DIRECTIVES:
        return [_verbatim(content)]
    if name == "productionlist":  # the grammar is the argument; `name` links show as the name
        rules = arguments[1:] if arguments and ":" not in arguments[0] else arguments  # a group name, not a rule
        return [_verbatim([rule.replace("`", "") for rule in rules])]
    if name == "parsed-literal":  # verbatim layout, rendered markup
        rendered = [line[: _indent(line)] + render_inline(line).text for line in _dedent(content)]
        return [_verbatim(rendered)]
    if name in _VERSION_LABELS:
        count = _VERSION_LABELS[name].count("{}")
        versions = argument.split(None, count)  # the versions, then any text on the directive line
        if len(versions) < count:
            raise ValueError(f".. {name}:: needs {count} version(s), got {argument!r}")
        return _lead(_VERSION_LABELS[name].format(*versions[:count]), _blocks(versions[count:] + content))
    if name == "availability":
        return _lead("Availability", _blocks([argument, *content]))
    if name == "audit-event":  # content, if any, replaces the standard sentence
        if not argument:
            raise ValueError(".. audit-event:: needs an event name")
        if content:
            return _blocks(content)
        event, *rest = argument.split(None, 2)
        names = [a.strip() for a in rest[0].strip("'\"").split(",") if a.strip()] if rest else []
        return [_plain(PROSE, _AUDIT_EVENT[min(2, len(names))].format(event, ", ".join(names)))]
    if name in _OBJECT_DIRECTIVES or name.startswith("c:"):
        return [_plain(VERBATIM, "\n".join(line.strip() for line in arguments)), *_blocks(content)]
    title = [Block(HEADING, render_inline(argument))] if argument else []
    blocks = _blocks(content)
    if name == "list-table":
        blocks = [b._replace(kind=TABLE) for b in blocks]
    # rubric, topic, sidebar, admonition, table, and directives this corpus does not use.
    return title + blocks


def _row_text(cells: Sequence[str]) -> str:
    return " | ".join(text for text in (render_inline(cell).text for cell in cells) if text)


def _grid_table(lines: Sequence[str]) -> Block:
    """A grid table: cells lie between the ``|`` that line up with the top border's ``+``."""
    stops = [k for k, ch in enumerate(lines[0]) if ch == "+"]
    rows: list[list[str]] = []
    row: list[str] = []
    for line in lines[1:]:
        if line.lstrip().startswith("+"):  # a border closes the row
            rows, row = rows + [row], []
            continue
        seps = [k for k in stops if k < len(line) and line[k] == "|"]
        cells = [line[a + 1: b] for a, b in zip(seps, seps[1:])]
        # A row spans several lines: join them cell by cell.
        if len(row) == len(cells):
            row = [f"{old} {new}" for old, new in zip(row, cells)]
        else:
            rows, row = rows + [row], cells
    texts = [_row_text(r) for r in rows + [row]]
    return _plain(TABLE, "\n".join(t for t in texts if t))


def _simple_table(lines: Sequence[str], i: int, blocks: list[Block]) -> int:
    """Append the simple table whose top rule is line ``i``; return the line after it.

    The table ends at a rule followed by a blank line; a lone rule without one is dropped."""
    end = i + 1
    while end < len(lines) and not (_SIMPLE_RULE.match(lines[end]) and (end + 1 == len(lines) or not lines[end + 1].strip())):
        end += 1
    if end == len(lines):
        return i + 1
    starts = [m.start() for m in re.finditer(r"[=-]+", lines[i])]
    columns = list(zip(starts, [*starts[1:], None]))
    rows: list[list[str]] = []
    for line in lines[i + 1: end]:
        if not line.strip() or _SIMPLE_RULE.match(line):
            continue
        cells = [line[a:b] for a, b in columns]
        if rows and not cells[0].strip():  # an empty first column continues the row above
            rows[-1] = [f"{old} {new}" for old, new in zip(rows[-1], cells)]
        else:
            rows.append(cells)
    blocks.append(_plain(TABLE, "\n".join(t for t in map(_row_text, rows) if t)))
    return end + 1


def _blocks(lines: Sequence[str]) -> list[Block]:
    blocks: list[Block] = []
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        stripped = line.strip()
        indent = _indent(line)
        if not stripped:
            i += 1
            continue
        directive = _DIRECTIVE.match(line)
        if directive or _EXPLICIT_MARKUP.match(line):
            end = _body_end(lines, i + 1, indent)
            if directive:
                blocks += _directive(directive.group("name"), (directive.group("args") or "").strip(),
                                     _dedent(lines[i + 1: end]))
            i = end
            continue
        if stripped.startswith(">>>") or _GRID_BORDER.match(line):  # doctest block or grid table
            end = next((j for j in range(i, n) if not lines[j].strip()), n)
            blocks.append(_verbatim(lines[i:end]) if stripped.startswith(">>>") else _grid_table(lines[i:end]))
            i = end
            continue
        if _SIMPLE_RULE.match(line):
            i = _simple_table(lines, i, blocks)
            continue
        if _ADORNMENT.match(line):
            # An overline: the title sits between two adornment lines; otherwise a transition.
            if i + 2 < n and lines[i + 1].strip() and _ADORNMENT.match(lines[i + 2]):
                blocks.append(Block(HEADING, render_inline(lines[i + 1])))
                i += 3
            else:
                i += 1
            continue
        item = _LIST_ITEM.match(line)
        field = _FIELD.match(line)
        if item or field:
            end = _body_end(lines, i + 1, indent)
            if item:  # the item's text starts at its content column, which nested blocks are relative to
                body = _dedent([" " * item.end() + line[item.end():], *lines[i + 1: end]])
            else:  # a field body may be indented any amount: "name: body"
                body = [f"{field.group('name')}: {field.group('rest')}", *_dedent(lines[i + 1: end])]
            blocks += _blocks(body)
            i = end
            continue
        i = _paragraph(lines, i, blocks)
    return blocks


def _paragraph(lines: Sequence[str], i: int, blocks: list[Block]) -> int:
    """Append the paragraph (or section title, or definition) starting at line ``i``; return the line after it."""
    n, indent = len(lines), _indent(lines[i])
    if i + 1 < n and _ADORNMENT.match(lines[i + 1]):  # a section title and its underline
        blocks.append(Block(HEADING, render_inline(lines[i])))
        return i + 2
    if i + 1 < n and lines[i + 1].strip() and _indent(lines[i + 1]) > indent:  # definition list item
        end = _body_end(lines, i + 1, indent)
        blocks.append(Block(PROSE, render_inline(lines[i])))  # the term, often a typed name
        blocks += _blocks(_dedent(lines[i + 1: end]))
        return end
    end = i + 1
    while end < n and lines[end].strip() and _indent(lines[end]) == indent:
        end += 1
    raw = "\n".join(line.strip() for line in lines[i:end])
    literal = raw.endswith("::")
    if literal:  # "Text::" shows as "Text:", "Text ::" as "Text", a lone "::" as nothing
        raw = raw[:-2].rstrip() + (":" if raw[:-2] and not raw[:-2][-1].isspace() else "")
    paragraph = render_inline(raw)
    if paragraph.text:
        blocks.append(Block(PROSE, paragraph))
    if literal:
        start = end
        while start < n and not lines[start].strip():
            start += 1
        if start < n and _indent(lines[start]) > indent:
            end = _body_end(lines, start, indent)
            blocks.append(_verbatim(lines[start:end]))
    return end


def parse(source: str) -> list[Block]:
    """The blocks of one Sphinx source page, in reading order."""
    if not isinstance(source, str):
        raise TypeError(f"source must be the text of an .rst page (str), got {type(source).__name__}")
    return [b for b in _blocks(source.expandtabs(8).splitlines()) if b.paragraph.text.strip()]


def to_text(source: str) -> str:
    """Plain text of a page for pretraining: prose rendered, markup dropped, code kept verbatim."""
    return "\n\n".join(b.paragraph.text for b in parse(source)) + "\n"


def document_paragraphs(source: str) -> list[Paragraph]:
    """The rendered prose paragraphs of a page, each with its typed spans (the NER view)."""
    return [b.paragraph for b in parse(source) if b.kind == PROSE]
