"""The Python-docs NER corpus pieces: RST rendering with exact spans, examples, JSON format."""

import json

import pytest

from gliner_jax.data import json_format, pydocs, rst

SOURCE = """\
:mod:`json` --- JSON encoder
============================

.. module:: json
   :synopsis: Encode and decode.

Use :func:`~json.loads` or :meth:`JSONDecoder.decode <json.JSONDecoder.decode>` and
catch :exc:`!ValueError`; see :pep:`8`, ``literal`` and *emphasis*, `a link <https://x>`_.
Set :envvar:`PYTHONPATH` first [#]_.

Example::

    json.loads(":func:`not prose`")

>>> print(:class:`nope`)

.. note::

   The :class:`dict` keeps order.
"""


def test_paragraphs_render_roles_with_exact_spans():
    paragraphs = rst.document_paragraphs(SOURCE)
    texts = [p.text for p in paragraphs]
    assert texts[0] == ("Use loads or JSONDecoder.decode and catch ValueError; see PEP 8, literal and "
                        "emphasis, a link. Set PYTHONPATH first .")
    assert "Example:" in texts
    assert all("not prose" not in t and "nope" not in t for t in texts)  # code is skipped
    assert texts[-1] == "The dict keeps order."
    found = [(paragraphs[0].text[s.start: s.end], s.label) for s in paragraphs[0].spans]
    assert found == [("loads", "function"), ("JSONDecoder.decode", "method"), ("ValueError", "exception"),
                     ("PEP 8", "PEP"), ("PYTHONPATH", "environment variable")]


def test_examples_use_word_spans_and_document_splits():
    examples = list(pydocs.document_examples("library/json.rst.txt", SOURCE))
    first = examples[0]
    words = first["tokenized_text"]
    assert [(" ".join(words[a: b + 1]), label) for a, b, label in first["ner"]][:2] == [
        ("loads", "function"), ("JSONDecoder . decode", "method")]
    assert pydocs.split_of("library/json.rst.txt") in pydocs.SPLITS
    assert pydocs.remove_types(first, ["exception"])["ner"] == [e for e in first["ner"] if e[2] != "exception"]


def test_json_format_round_trip_and_errors(tmp_path):
    examples = [{"tokenized_text": ["Use", "len", "."], "ner": [[1, 1, "function"]]}]
    path = json_format.save(tmp_path / "data.json", examples)
    assert json_format.load(path) == examples
    lines = tmp_path / "data.jsonl"
    lines.write_text("\n".join(json.dumps(e) for e in examples))
    assert json_format.load(lines) == examples
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"tokenized_text": ["a"], "ner": [[0, 3, "x"]]}]))
    with pytest.raises(ValueError, match="example 0.*outside the 1 words"):
        json_format.load(bad)
