"""Content-hashed module cache: write atomically, import, regenerate when broken."""
from __future__ import annotations

import hashlib
from functools import lru_cache
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

PACKAGE = "symfield_generated"
_loaded: dict[str, ModuleType] = {}
#: files written by this process (a test can check that a second process writes nothing)
written: list[Path] = []


def cache_dir() -> Path:
    """Directory holding generated modules (``$SYMFIELD_CACHE`` or ``~/.cache/symfield``)."""
    root = os.environ.get("SYMFIELD_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "symfield")
    path = Path(root) / "generated"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:20]


def module_path(source: str, tag: str) -> Path:
    """Where the module for ``source`` lives: ``<cache>/<tag>_<sha256 prefix>.py``."""
    if not tag.isidentifier():
        raise ValueError(f"module tag must be a Python identifier, got {tag!r}")
    return cache_dir() / f"{tag}_{_digest(source)}.py"


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_", suffix=".py")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    written.append(path)


def _import(path: Path) -> ModuleType:
    name = f"{PACKAGE}.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_module(source: str, tag: str) -> ModuleType:
    """Return the imported module for ``source``, writing it to the cache only if needed.

    The file name carries a hash of ``source``; if the file exists but its text differs
    (a broken or half-written cache file) or it fails to import, it is rewritten.
    """
    path = module_path(source, tag)
    key = str(path)
    if key in _loaded:
        return _loaded[key]
    try:
        current = path.read_text() if path.exists() else None
    except (OSError, UnicodeDecodeError):
        current = None
    if current != source:
        _atomic_write(path, source)
    try:
        module = _import(path)
    except Exception:
        _atomic_write(path, source)  # corrupt bytecode or a racing writer: write again and retry once
        module = _import(path)
    _loaded[key] = module
    return module


@lru_cache(maxsize=1)
def _code_version() -> str:
    """Hash of symfield's own source files and the SymPy version: a derivation stored under another
    version of the code is never reused."""
    import sympy
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(sympy.__version__.encode())
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def derived_source(tag: str, key: str, make) -> str:
    """The text ``make()`` returns, stored under ``<cache>/derived/<tag>_<key>_<code version>.py``:
    a slow SymPy derivation (simplify, solve) runs once per φ and version of symfield, not in every
    process.  The stored text is what ``make()`` returned, byte for byte."""
    if not (tag.isidentifier() and key.isidentifier()):
        raise ValueError(f"tag and key must be Python identifiers, got {tag!r}, {key!r}")
    path = cache_dir().parent / "derived" / f"{tag}_{key}_{_code_version()}.py"
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        pass
    text = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, text)
    return text
