"""Files written whole or not at all, saves that touch only their own files, and reads that name the bad file.

    write_file(path, text_or_bytes)                       # one file, atomically
    write_files(directory, {"config.json": text, "model.safetensors": writer}, overwrite=False,
                stale=("model_head.pkl",))                # a checkpoint's set of files
    read_json(path, required=("model_type",))             # a ValueError naming the file, never a bare one

The contract of a save:

* Each file is written to a temporary name in its own directory, flushed and fsync'ed, then
  ``os.replace``'d over the target and the directory fsync'ed: a reader, or a crash, sees the old
  file or the whole new one, never a part.
* A save writes every file to its temporary name first and renames them only once all were
  written, so a save that fails while producing a file (an exception, a full disk, Ctrl-C) leaves
  every file already there untouched and no temporary file behind. The renames are not one
  transaction (``transformers`` is not either): a crash between two renames can leave some files
  of the new save beside some of the old one.
* It never removes a file it does not write: a tokenizer, notes or runs in the same directory
  survive. The one exception is ``stale``: files of the caller's own format, named explicitly,
  that an older save wrote and this one replaces by another name (SetFit's ``model_head.pkl``
  when the head is now saved as ``model_head.npz``); they are removed after the renames, so a
  loader cannot pick up a stale one.
* A file it would write (or a stale one it would remove) that already exists is an error unless
  ``overwrite=True``; unrelated files never are.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Union

# What a file is made of: its text (UTF-8), its bytes, or a function that writes it at the path it is
# given (for writers that only take a file name, e.g. safetensors' ``save_file``, so a large file
# is not held in memory twice).
Content = Union[str, bytes, Callable[[Path], None]]
# mkstemp creates its file 0600; a saved file gets the mode open() would give it (0666 less the umask),
# so others who could read the checkpoint before still can. The umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def write_file(path: str | os.PathLike, content: Content) -> Path:
    """Write one file atomically (see the module docstring), replacing it if it exists."""
    path = Path(path)
    write_files(path.parent, {path.name: content}, overwrite=True)
    return path


def write_files(directory: str | os.PathLike, files: Mapping[str, Content], *, overwrite: bool = False,
                stale: Iterable[str] = ()) -> Path:
    """Write ``files`` (names relative to ``directory``, subdirectories created as needed) as the
    module docstring says; remove the ``stale`` names this save does not write. Returns ``directory``.

    Raises FileExistsError listing the files that exist unless ``overwrite``, NotADirectoryError when
    ``directory`` is a file.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} is a file, not a directory: a save writes its files into a directory")
    for name in files:
        _check_name(name)
    stale = [name for name in stale if name not in files]
    for name in stale:
        _check_name(name)
    present = sorted(name for name in (*files, *stale) if (directory / name).exists())
    if present and not overwrite:
        raise FileExistsError(f"{directory} already holds {', '.join(present)}; pass overwrite=True to replace "
                              "them (other files in the directory are never touched)")
    staged: list[tuple[Path, Path]] = []  # (temporary, target)
    try:
        for name, content in files.items():
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            staged.append((_stage(target, content), target))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, target in staged:
        os.replace(tmp, target)
    for name in stale:
        (directory / name).unlink(missing_ok=True)
    # A rename (or removal) is durable only once its directory entry is.
    for parent in sorted({target.parent for _, target in staged} | {(directory / n).parent for n in stale}):
        _fsync_dir(parent)
    return directory


def read_json(path: str | os.PathLike, *, required: Iterable[str] = (), what: str = "a JSON object",
              kind: type = dict) -> Any:
    """The JSON value in ``path``, of type ``kind`` (an object unless told); a ValueError naming
    ``path`` and what is wrong when it is not valid JSON (a truncated or hand-edited file), of
    another type, or (an object) lacks a ``required`` field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: is not UTF-8 text ({err}); expected {what}") from err
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON at line {err.lineno} column {err.colno} ({err.msg}); "
                         f"the file is truncated or malformed, expected {what}") from err
    if not isinstance(value, kind):
        raise ValueError(f"{path}: holds a JSON {_JSON_NAMES.get(type(value), type(value).__name__)}, expected {what}")
    missing = [key for key in required if key not in value]
    if missing:
        raise ValueError(f"{path}: required field(s) {missing} are missing")
    return value


_JSON_NAMES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


def _check_name(name: str) -> None:
    """A save writes inside its directory only."""
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or ".." in parts:
        raise ValueError(f"file name {name!r} must be a relative path inside the directory, without '..'")


def _stage(target: Path, content: Content) -> Path:
    """``content`` written and fsync'ed at a fresh temporary name beside ``target``; nothing left on failure."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        if callable(content):
            os.close(fd)
            fd = -1
            content(tmp)
            fd = os.open(tmp, os.O_RDONLY)
        else:
            data = content.encode("utf-8") if isinstance(content, str) else content
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view):]
        os.fchmod(fd, 0o666 & ~_UMASK)
        os.fsync(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if fd >= 0:
            os.close(fd)
    return tmp


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
