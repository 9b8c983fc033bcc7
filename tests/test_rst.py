"""One reStructuredText parser, two outputs: plain text for pretraining, typed spans for NER."""

import html
import re
import shutil
from pathlib import Path

import pytest

from modernbert_jax.data import debian, rst

needs_apt = pytest.mark.skipif(shutil.which("apt-get") is None, reason="the Python docs come from apt")

# A small page exercising every kind of block; test_gliner_data.py builds examples from it too.
SOURCE = (Path(__file__).parent / "data" / "json_page.rst.txt").read_text(encoding="utf-8")


def _shown(paragraph: rst.Paragraph) -> list[tuple[str, str]]:
    return [(paragraph.text[s.start: s.end], s.label) for s in paragraph.spans]


def test_paragraphs_render_roles_with_exact_spans():
    paragraphs = rst.document_paragraphs(SOURCE)
    texts = [p.text for p in paragraphs]
    assert texts[0] == ("Use loads() or JSONDecoder.decode and catch ValueError; see PEP 8, literal and "
                        "emphasis, a link. Set PYTHONPATH first.")
    assert "Example:" in texts
    assert all("not prose" not in t and "nope" not in t for t in texts)  # code is not prose
    assert texts[-1] == "The dict keeps order."
    assert _shown(paragraphs[0]) == [("loads()", "function"), ("JSONDecoder.decode", "method"),
                                     ("ValueError", "exception"), ("PEP 8", "PEP"),
                                     ("PYTHONPATH", "environment variable")]


def test_plain_text_keeps_code_verbatim_and_the_prose_of_the_ner_view():
    text = rst.to_text(SOURCE)
    assert 'json.loads(":func:`not prose`")' in text and ">>> print(:class:`nope`)" in text
    assert "json --- JSON encoder" in text  # the title is text, not an NER paragraph
    assert "json --- JSON encoder" not in [p.text for p in rst.document_paragraphs(SOURCE)]
    assert "====" not in text and ".. note::" not in text and ":synopsis:" not in text


@pytest.mark.parametrize("role, body, shown", [
    ("func", "len", "len()"),
    ("func", "len()", "len()"),  # add_function_parentheses: never doubled
    ("meth", "~json.JSONDecoder.decode", "decode()"),
    ("meth", ".append", "append()"),  # a leading dot only narrows the lookup
    ("class", "~collections.OrderedDict", "OrderedDict"),
    ("exc", "!ValueError", "ValueError"),
    ("py:class", "dict", "dict"),
    ("class", "mapping <collections.abc.Mapping>", "mapping"),
    ("func", "the builtin <len>", "the builtin"),  # an explicit title is shown as written
    ("c:func", "PyList_New", "PyList_New()"),
    ("c:type", "~PyObject", "PyObject"),
    ("pep", "8", "PEP 8"),
    ("PEP", "566", "PEP 566"),  # role names are case-insensitive
    ("pep", "the style guide <8>", "the style guide"),
    ("rfc", "2822", "RFC 2822"),
    ("issue", "12345", "bpo-12345"),
    ("gh", "92135", "gh-92135"),
    ("file", "{prefix}/lib/python{X.Y}", "prefix/lib/pythonX.Y"),
    ("samp", r"print(1 \{x\})", "print(1 {x})"),
    ("file", "~/.pythonrc.py", "~/.pythonrc.py"),  # "~" shortens Python and C names only
    ("abbr", "LIFO (last-in, first-out)", "LIFO"),
    ("menuselection", "Start --> &Programs", "Start \N{TRIANGULAR BULLET} Programs"),
    ("term", "file object", "file object"),
    ("ref", "auditing", "auditing"),  # another page's title cannot be known here
    ("meth", "create() \\\n   <loop.create>", "create()"),  # an escaped line break
])
def test_render_role_shows_what_sphinx_shows(role, body, shown):
    assert rst.render_role(role, body) == shown


@pytest.mark.parametrize("raw, text, spans", [
    ("Call  :func:`len`\n   on :class:`list`.", "Call len() on list.", [("len()", "function"), ("list", "class")]),
    ("  :mod:`os` first", "os first", [("os", "module")]),  # leading whitespace stripped, span moved
    ("A :term:`file\n   object` here", "A file object here", [("file object", "glossary term")]),
    ("See :ref:`auditing` and :keyword:`with`.", "See auditing and with.", [("with", "keyword")]),
    ("**bold**, *it*, ``a  *b*``, `t <u>`_, `name`_, `x`, |version|.", "bold, it, a *b*, t, name, x, version.", []),
    (r"``x``\ s and \*not emphasis\*", "xs and *not emphasis*", []),
    ("a note [#]_, a footnote [1]_ and a citation [Frie09]_.", "a note, a footnote and a citation.", []),
    ("2*3*4 and snake_case_ names", "2*3*4 and snake_case_ names", []),  # no markup inside words
])
def test_render_inline_spans_stay_exact_after_whitespace_collapsing(raw, text, spans):
    paragraph = rst.render_inline(raw)
    assert paragraph.text == text
    assert _shown(paragraph) == spans


def test_directives_show_the_words_sphinx_adds():
    source = """\
.. versionchanged:: 3.2
   Added :func:`foo`.

.. versionadded:: 3.11

.. deprecated-removed:: 3.4 3.8

   Use :mod:`bar`.

.. availability:: Unix.

.. audit-event:: os.putenv key,value os.putenv

.. impl-detail::

   Fast.

.. function:: spam(a, b=1)
              spam(c)
   :noindex:

   Spam the :class:`Eggs`.
"""
    blocks = rst.parse(source)
    assert [(b.kind, b.paragraph.text) for b in blocks] == [
        (rst.PROSE, "Changed in version 3.2: Added foo()."),
        (rst.PROSE, "New in version 3.11."),
        (rst.PROSE, "Deprecated since version 3.4, will be removed in version 3.8: Use bar."),
        (rst.PROSE, "Availability: Unix."),
        (rst.PROSE, "Raises an auditing event os.putenv with arguments key, value."),
        (rst.PROSE, "CPython implementation detail: Fast."),
        (rst.VERBATIM, "spam(a, b=1)\nspam(c)"),
        (rst.PROSE, "Spam the Eggs."),
    ]
    assert _shown(blocks[0].paragraph) == [("foo()", "function")]  # spans moved past the label
    assert _shown(blocks[2].paragraph) == [("bar", "module")]


def test_lists_definitions_tables_and_literal_intros():
    source = """\
* one :class:`A`
* two,
  continued:

  * nested

term :class:`B`
   Its definition.

+------+---------------+
| Name | Meaning       |
+======+===============+
| a    | :func:`f`     |
|      | spans 2 lines |
+------+---------------+

=====  ======
Col    Other
=====  ======
x      :mod:`y`
=====  ======

Shown as a colon::

    code

Nothing shown ::

    more code

::

    lone
"""
    blocks = [(b.kind, b.paragraph.text) for b in rst.parse(source)]
    assert blocks == [
        (rst.PROSE, "one A"), (rst.PROSE, "two, continued:"), (rst.PROSE, "nested"),
        (rst.PROSE, "term B"), (rst.PROSE, "Its definition."),
        (rst.TABLE, "Name | Meaning\na | f() spans 2 lines"),
        (rst.TABLE, "Col | Other\nx | y"),
        (rst.PROSE, "Shown as a colon:"), (rst.VERBATIM, "code"),
        (rst.PROSE, "Nothing shown"), (rst.VERBATIM, "more code"),
        (rst.VERBATIM, "lone"),
    ]


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="source must be the text of an .rst page"):
        rst.parse(b":func:`len`")
    with pytest.raises(ValueError, match="deprecated-removed:: needs 2 version"):
        rst.parse(".. deprecated-removed:: 3.4\n")
    with pytest.raises(ValueError, match="audit-event:: needs an event name"):
        rst.parse(".. audit-event::\n")


@needs_apt
def test_rst_to_text_keeps_prose_and_code_drops_markup():
    source = (debian.python_doc_root() / "_sources" / "library" / "json.rst.txt").read_text(encoding="utf-8")
    text = rst.to_text(source)
    assert ":mod:`" in source and ":rfc:`7159`" in source
    assert ":mod:`" not in text and ".. function::" not in text and "``" not in text
    assert "RFC 7159" in text  # roles render as Sphinx shows them
    # Literal blocks are kept verbatim (indentation included) once dedented.
    assert "    >>> print(json.dumps({'4': 5, '6': 7}, sort_keys=True, indent=4))" in source
    assert "\n>>> print(json.dumps({'4': 5, '6': 7}, sort_keys=True, indent=4))\n{\n    \"4\": 5," in text


def _page_text(html_path) -> str:
    """What a reader sees on the page Sphinx built: tags dropped, entities decoded, spaces collapsed."""
    page = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", html_path.read_text(encoding="utf-8"))
    page = re.sub(r"<[^>]+>", "", page)  # inline tags (<em>, <code>) sit inside words
    return " ".join(html.unescape(page).split())


@needs_apt
def test_every_page_ner_paragraph_is_in_its_text_and_every_span_is_on_the_built_page():
    root = debian.python_doc_root()
    pages = spans = 0
    for path in debian.python_doc_sources():
        source = path.read_text(encoding="utf-8")
        text = " ".join(rst.to_text(source).split())
        built = root / (path.relative_to(root / "_sources").as_posix().removesuffix(".rst.txt") + ".html")
        shown = _page_text(built) if built.is_file() else None
        for paragraph in rst.document_paragraphs(source):
            assert paragraph.text in text, (path.name, paragraph.text)
            for span in paragraph.spans:
                entity = paragraph.text[span.start: span.end]
                assert entity and entity == entity.strip() and span.label in rst.ROLE_TYPES.values()
                # Sphinx's own rendering of the page is the judge of what the role shows.
                assert shown is None or entity in shown, (path.name, entity, span.label)
                spans += 1
        pages += shown is not None
    assert pages > 400 and spans > 35_000
