"""Real text that every Debian machine can fetch without the internet beyond its package mirror.

Two sources feed the pretraining corpus (and the NER / few-shot corpora of the other packages):

* the Python documentation shipped by Debian's ``python3.11-doc`` package: its Sphinx sources
  (``html/_sources/**/*.rst.txt``, hand-marked ``:func:``/``:class:``/... roles) and the HTML;
* Debian package records: name, ``Section``, one-line summary, long description and source package.

Everything goes into a cache directory (``$MODERNBERT_JAX_CACHE/debian``, default
``~/.cache/modernbert_jax/debian``). A ``.deb`` is fetched at a pinned version with
``apt-get download package=version`` (no install, no root needed when the system package lists
exist), cached under its versioned file name, and unpacked with ``dpkg-deb -x``; a pinned version
the mirror no longer serves is an ``AptUnavailableError`` naming it. Package lists are read from a
*private* apt state directory inside the cache, updated once with ``Acquire::Languages=en``:
Docker images switch translations off, and the long descriptions live only in the
``Translation-en`` indexes. The private directory also keeps us from changing the system's apt
state, which other processes share. Every command runs under a timeout, and a command that hangs
(a mirror that stops answering) becomes an ``AptUnavailableError`` saying which one.

Public functions:
    require_apt() -> None                                  # the tools are all here, or a clear error
    cache_dir() -> Path
    download_deb(pin, cache=None) -> Path                  # pin: DebPin(package, version)
    extract_deb(deb, cache=None) -> Path
    extract_pinned(pin, cache=None) -> Path                # download_deb + extract_deb
    deb_record(pin, cache=None) -> dict                    # package, version, sha256 of the .deb
    python_doc_root(cache=None) -> Path                    # .../usr/share/doc/python3.11/html of PYTHON_DOC
    python_doc_sources(cache=None) -> list[Path]           # sorted _sources/**/*.rst.txt
    debian_packages(cache=None) -> list[DebianPackage]     # sorted by name
    package_lists_record(cache=None) -> dict               # hashes of the Release files and of the records
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

from modernbert_jax import safe_io


class AptUnavailableError(RuntimeError):
    """apt/dpkg is missing or cannot reach a mirror: the embedded corpus cannot be built here."""


@dataclasses.dataclass(frozen=True)
class DebPin:
    """A Debian binary package at an exact version: the unit a corpus records as its source."""

    package: str
    version: str


# The Python documentation (prose, and the NER corpus's Sphinx sources).
PYTHON_DOC = DebPin("python3.11-doc", "3.11.2-6+deb12u8")

APT_HELPER = "/usr/lib/apt/apt-helper"  # not on PATH; decompresses apt's lists whatever their codec
# apt-get update/download wait on a mirror; the others read local files.
NETWORK_TIMEOUT_S = 900.0
LOCAL_TIMEOUT_S = 300.0


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise AptUnavailableError(
            f"`{name}` was not found. The embedded corpus needs a Debian/Ubuntu system with apt and "
            "dpkg (apt-get, apt-cache, dpkg-deb, /usr/lib/apt/apt-helper); elsewhere point the pipeline "
            "at a TFDS dataset or your own text/JSONL files."
        )
    return exe


def require_apt() -> None:
    """Raise ``AptUnavailableError`` naming the first missing tool the embedded corpora need."""
    for name in ("apt-get", "apt-cache", "dpkg-deb", APT_HELPER):
        _tool(name)


def cache_dir() -> Path:
    """Root of the Debian cache: ``$MODERNBERT_JAX_CACHE/debian`` or ``~/.cache/modernbert_jax/debian``."""
    root = os.environ.get("MODERNBERT_JAX_CACHE") or os.path.join(Path.home(), ".cache", "modernbert_jax")
    path = Path(root) / "debian"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _resolve_cache(cache: str | os.PathLike | None) -> Path:
    path = Path(cache) if cache is not None else cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(cmd: Sequence[str], *, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AptUnavailableError(f"`{' '.join(map(str, cmd))}` timed out after {timeout:g}s") from e


def _private_apt_options(cache: Path) -> list[str]:
    """apt options that point state and cache at directories inside our cache."""
    state = cache / "apt"
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    return [
        "-o", f"Dir::State::Lists={state / 'lists'}",
        "-o", f"Dir::Cache={state / 'cache'}",
        "-o", "Acquire::Languages=en",
    ]


def _private_lists(cache: Path) -> Path:
    """Private apt lists (Packages + Translation-en), fetched once with ``apt-get update``."""
    options = _private_apt_options(cache)
    lists = cache / "apt" / "lists"
    if not any(lists.glob("*_Packages*")) or not any(lists.glob("*Translation-en*")):
        proc = _run([_tool("apt-get"), "update", *options], timeout=NETWORK_TIMEOUT_S)
        if proc.returncode != 0 or not any(lists.glob("*_Packages*")):
            raise AptUnavailableError(
                f"`apt-get update` into {lists} failed (exit {proc.returncode}); is a Debian mirror "
                f"reachable?\n{proc.stderr.strip()[-2000:]}"
            )
    return lists


def download_deb(pin: DebPin, cache: str | os.PathLike | None = None) -> Path:
    """Fetch ``pin.package`` at exactly ``pin.version`` with ``apt-get download`` into ``<cache>/debs``.

    The cache is looked up by package and version (apt names the file ``package_version_arch.deb``),
    so two versions never stand in for each other. If the system's package lists do not know the
    version (a fresh container has none), private lists are fetched once with ``apt-get update``
    and the download is retried against them.
    """
    cache = _resolve_cache(cache)
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    package, version = pin.package, pin.version
    stem = f"{package}_{version.replace(':', '%3a')}_"  # apt escapes an epoch's colon in file names
    cached = sorted(debs.glob(f"{stem}*.deb"))
    if cached:
        return cached[-1]
    apt_get, pinned = _tool("apt-get"), f"{package}={version}"
    # apt-get download writes into the current directory; a scratch directory keeps a
    # half-downloaded file from ever looking like a cached one.
    with tempfile.TemporaryDirectory(dir=debs) as scratch:
        proc = _run([apt_get, "download", pinned], cwd=Path(scratch), timeout=NETWORK_TIMEOUT_S)
        if proc.returncode != 0:
            first_error = proc.stderr.strip()
            private = [apt_get, "download", *_private_apt_options(cache), pinned]
            proc = _run(private, cwd=Path(scratch), timeout=NETWORK_TIMEOUT_S)
            if proc.returncode != 0:
                _private_lists(cache)
                proc = _run(private, cwd=Path(scratch), timeout=NETWORK_TIMEOUT_S)
            if proc.returncode != 0:
                raise AptUnavailableError(
                    f"`apt-get download {pinned}` failed (exit {proc.returncode}): {package} {version} is "
                    "pinned by this code and the mirror may no longer serve that version.\n"
                    f"with system lists: {first_error[-1000:]}\nwith private lists: {proc.stderr.strip()[-1000:]}"
                )
        fetched = sorted(Path(scratch).glob(f"{stem}*.deb"))
        if not fetched:
            raise AptUnavailableError(f"`apt-get download {pinned}` succeeded but wrote no {stem}*.deb")
        target = debs / fetched[-1].name
        os.replace(fetched[-1], target)
    return target


def _sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def deb_record(pin: DebPin, cache: str | os.PathLike | None = None) -> dict[str, str]:
    """What a corpus records of a package it read: package, version and the .deb's sha256."""
    deb = download_deb(pin, cache)
    return {"package": pin.package, "version": pin.version, "sha256": _sha256_file(deb)}


def extract_pinned(pin: DebPin, cache: str | os.PathLike | None = None) -> Path:
    """The unpacked tree of ``pin`` (downloaded and extracted once)."""
    return extract_deb(download_deb(pin, cache), cache)


def extract_deb(deb: str | os.PathLike, cache: str | os.PathLike | None = None) -> Path:
    """Unpack ``deb`` with ``dpkg-deb -x`` into ``<cache>/extracted/<deb stem>`` (once) and return it.

    Extraction goes to a temporary directory that is renamed into place, so an interrupted run
    never leaves a partial tree that later runs would trust.
    """
    deb = Path(deb)
    if not deb.is_file():
        raise FileNotFoundError(f"deb file {deb} does not exist")
    cache = _resolve_cache(cache)
    root = cache / "extracted"
    root.mkdir(parents=True, exist_ok=True)
    target = root / deb.stem
    if target.is_dir():
        return target
    dpkg_deb = _tool("dpkg-deb")
    scratch = Path(tempfile.mkdtemp(dir=root, prefix=f".{deb.stem}."))
    try:
        proc = _run([dpkg_deb, "-x", str(deb), str(scratch)], timeout=LOCAL_TIMEOUT_S)
        if proc.returncode != 0:
            raise AptUnavailableError(f"`dpkg-deb -x {deb}` failed (exit {proc.returncode}): {proc.stderr.strip()}")
        try:
            os.rename(scratch, target)
        except OSError:
            if not target.is_dir():  # a concurrent process finished first otherwise
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def python_doc_root(cache: str | os.PathLike | None = None) -> Path:
    """The HTML root of ``PYTHON_DOC`` (fetched and unpacked on first use).

    The directory holds the rendered pages and ``_sources/`` with the Sphinx sources as
    ``*.rst.txt``.
    """
    tree = extract_pinned(PYTHON_DOC, cache)
    root = tree / "usr" / "share" / "doc" / "python3.11" / "html"
    if not (root / "_sources").is_dir():
        raise FileNotFoundError(f"{PYTHON_DOC.package} unpacked to {tree} but has no {root}/_sources")
    return root


def python_doc_sources(cache: str | os.PathLike | None = None) -> list[Path]:
    """All Sphinx sources (``_sources/**/*.rst.txt``) of the Python documentation, sorted by path.

    These are the human-written reStructuredText files of docs.python.org: English prose with
    inline roles (``:func:`len```, ``:class:`dict```, ``:pep:`8```, ...) marking typed spans.
    """
    return sorted((python_doc_root(cache) / "_sources").rglob("*.rst.txt"))


@dataclasses.dataclass(frozen=True)
class DebianPackage:
    """One package record: ``summary`` is the one-line synopsis, ``description`` the long text,
    ``source`` the record's ``Source`` field ("" where Debian omits it: the source is the package's
    own name)."""

    name: str
    section: str
    summary: str
    description: str
    source: str = ""

    @property
    def source_package(self) -> str:
        """The source package the binary was built from (siblings such as ``libfoo1``/``libfoo-dev`` share it)."""
        return self.source or self.name


def _deb822_records(text: str) -> Iterator[dict[str, str]]:
    """Parse RFC-822-style stanzas; continuation lines keep their text with the leading space removed."""
    record: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            if record:
                yield record
            record, key = {}, None
        elif line[0] in " \t" and key is not None:
            record[key] += "\n" + line[1:]
        elif ":" in line:
            key, _, value = line.partition(":")
            record[key] = value.strip()
    if record:
        yield record


def _long_description(raw: str) -> str:
    """Debian's description syntax: a lone ``.`` is an empty line; leading space of each line dropped."""
    lines = raw.split("\n")[1:]  # line 0 is the synopsis
    return "\n".join("" if line.strip() == "." else line for line in lines).strip()


def debian_packages(cache: str | os.PathLike | None = None) -> list[DebianPackage]:
    """Every package the mirror lists (one record per name), with section and long description.

    Records come from ``apt-cache dumpavail`` over the private lists; long descriptions are
    joined from the ``Translation-en`` indexes by (package, Description-md5). Parsing ~80 MB of
    indexes takes seconds, so the result is kept in ``<cache>/debian_packages.<fields>.json`` until the
    lists change.
    """
    cache = _resolve_cache(cache)
    lists = _private_lists(cache)
    # Named after the record's fields, so a cache written before a field was added is never read.
    saved = cache / f"debian_packages.{'-'.join(f.name for f in dataclasses.fields(DebianPackage))}.json"
    lists_mtime = max(p.stat().st_mtime for p in lists.glob("*_Packages*"))
    if saved.is_file() and saved.stat().st_mtime >= lists_mtime:
        return [DebianPackage(*row) for row in json.loads(saved.read_text(encoding="utf-8"))]
    packages = _parse_package_lists(cache, lists)
    safe_io.write_file(saved, json.dumps([dataclasses.astuple(p) for p in packages]))
    return packages


def package_lists_record(cache: str | os.PathLike | None = None) -> dict[str, object]:
    """What a corpus records of the package lists it read: the sha256 of each signed ``InRelease``
    (which pins the hashes of every index under it) and of the parsed records themselves.

    The lists are not pinned: a mirror moves on with each point release, so a build elsewhere
    reproduces this one only when these hashes match.
    """
    cache = _resolve_cache(cache)
    packages = debian_packages(cache)
    lists = cache / "apt" / "lists"
    content = json.dumps([dataclasses.astuple(p) for p in packages]).encode("utf-8")
    return {
        "package": "debian package lists",
        "release_sha256": {p.name: _sha256_file(p) for p in sorted(lists.glob("*Release"))},
        "records_sha256": hashlib.sha256(content).hexdigest(),
    }


def _parse_package_lists(cache: Path, lists: Path) -> list[DebianPackage]:
    """Join ``apt-cache dumpavail`` records with the Translation-en long descriptions."""
    options = _private_apt_options(cache)
    proc = _run([_tool("apt-cache"), *options, "dumpavail"], timeout=LOCAL_TIMEOUT_S)
    if proc.returncode != 0:
        raise AptUnavailableError(f"`apt-cache dumpavail` failed: {proc.stderr.strip()[-2000:]}")
    helper = _tool(APT_HELPER)
    translations: dict[tuple[str, str], str] = {}
    for index in sorted(lists.glob("*Translation-en*")):
        # apt-helper decompresses whatever compression apt chose for its lists (lz4, gz, xz).
        text = _run([helper, "cat-file", str(index)], timeout=LOCAL_TIMEOUT_S)
        if text.returncode != 0:
            raise AptUnavailableError(f"cannot read {index}: {text.stderr.strip()}")
        for rec in _deb822_records(text.stdout):
            if "Description-en" in rec:
                translations[(rec.get("Package", ""), rec.get("Description-md5", ""))] = rec["Description-en"]
    packages: dict[str, DebianPackage] = {}
    for rec in _deb822_records(proc.stdout):
        name = rec.get("Package")
        if not name or name in packages or "Description" not in rec:
            continue
        full = translations.get((name, rec.get("Description-md5", "")), rec["Description"])
        packages[name] = DebianPackage(
            name=name,
            section=rec.get("Section", ""),
            summary=rec["Description"].split("\n")[0].strip(),
            description=_long_description(full),
            source=rec.get("Source", "").split(" ")[0],  # "foo (1.2-3)" when the versions differ
        )
    return [packages[name] for name in sorted(packages)]
