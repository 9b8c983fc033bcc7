"""Word splitting: the reference GLiNER's default ("whitespace") splitter.

Words are runs of word characters joined by ``-``/``_``, or any single other
non-space character. Each word carries its character offsets so predictions map
back to the original text exactly.
"""

from __future__ import annotations

import re
from typing import NamedTuple

WORD_PATTERN = re.compile(r"\w+(?:[-_]\w+)*|\S")


class Word(NamedTuple):
    text: str
    start: int
    end: int


def split_words(text: str) -> list[Word]:
    """Split ``text`` into words with character offsets ``[start, end)``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return [Word(m.group(), m.start(), m.end()) for m in WORD_PATTERN.finditer(text)]
