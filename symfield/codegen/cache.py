"""Content-hashed module cache: write atomically, import, regenerate when broken.

Faults are repaired, never passed on (docs/reliability.md, "Cache"): an unusable cache directory (not
writable, a file in the way) falls back to a per-process temporary directory with a RuntimeWarning;
unreadable Numba index/data files (``.nbi``/``.nbc``) of a symfield function (its own ``cache=True``
functions and the generated ones) are deleted and the function recompiled, with a RuntimeWarning; files
are written world-readable (0644, directories 0755) whatever the umask, so a cache can be shared.
"""
from __future__ import annotations

import atexit
import errno
import glob
import hashlib
from functools import lru_cache
import importlib.util
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType

PACKAGE = "symfield_generated"
_loaded: dict[str, ModuleType] = {}
#: files written by this process (a test can check that a second process writes nothing)
written: list[Path] = []
#: configured cache root -> the directory used for it in this process (itself or the fallback)
_roots: dict[str, Path] = {}
_fallback: list[Path] = []


def _makedirs(path: Path) -> None:
    """Create ``path`` and its missing parents, each 0755 whatever the umask."""
    missing = []
    p = path
    while not (p.exists() or p.is_symlink()) and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:  # made by a racing process
            continue
        os.chmod(d, 0o755)
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path))


def unusable(path: Path) -> str | None:
    """``None`` if ``path`` is (or can be made) a writable directory, else the reason it is not."""
    try:
        _makedirs(path)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


def fallback_dir() -> Path:
    """This process's temporary cache directory (made on first use, removed at exit)."""
    if not _fallback:
        path = Path(tempfile.mkdtemp(prefix="symfield-cache-"))
        os.chmod(path, 0o755)
        atexit.register(shutil.rmtree, path, True)
        _fallback.append(path)
    return _fallback[0]


def cache_root() -> Path:
    """``$SYMFIELD_CACHE`` or ``~/.cache/symfield``; the process's temporary directory (with one
    RuntimeWarning naming the path and the reason) if that cannot hold files."""
    root = os.environ.get("SYMFIELD_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "symfield")
    if root not in _roots:
        reason = unusable(Path(root) / "generated")
        if reason is None:
            _roots[root] = Path(root)
        else:
            _roots[root] = fallback_dir()
            warnings.warn(f"symfield cache {root!r} is unusable ({reason}); generated modules go to the "
                          f"temporary directory {str(_roots[root])!r} for this process (set SYMFIELD_CACHE "
                          "to a writable directory to keep them)", RuntimeWarning, stacklevel=3)
    return _roots[root]


def ensure_numba_cache_dir() -> None:
    """Give Numba a usable cache before symfield's ``cache=True`` functions are defined: if the user set
    no ``NUMBA_CACHE_DIR`` and neither the package's ``__pycache__`` folders nor Numba's user-wide cache
    (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``numba``) can hold files, set it to this process's
    temporary directory, with a RuntimeWarning naming both paths and reasons (else Numba raises
    "no locator available" at import)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    package = Path(__file__).resolve().parents[1]
    for folder in sorted({p.parent / "__pycache__" for p in package.rglob("*.py")}):
        in_tree = unusable(folder)
        if in_tree:
            break
    else:
        return
    user = Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "numba"
    user_wide = unusable(user)
    if user_wide is None:
        return
    os.environ["NUMBA_CACHE_DIR"] = str(fallback_dir() / "numba")
    if "numba" in sys.modules:  # Numba read its configuration at import: read it again
        sys.modules["numba"].core.config.reload_config()
    warnings.warn(f"Numba cannot cache symfield's functions in {str(folder)!r} ({in_tree}) nor in {str(user)!r} "
                  f"({user_wide}); NUMBA_CACHE_DIR is set to the temporary directory "
                  f"{os.environ['NUMBA_CACHE_DIR']!r} for this process", RuntimeWarning, stacklevel=3)


def cache_dir() -> Path:
    """Directory holding generated modules: ``<cache root>/generated`` (see :func:`cache_root`)."""
    path = cache_root() / "generated"
    _makedirs(path)
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
        os.fchmod(fd, 0o644)  # readable by every user of a shared cache (mkstemp makes 0600)
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


def _is_symfield(cache) -> bool:
    """Whether a Numba cache belongs to a function of symfield or of a generated module."""
    module = getattr(getattr(cache, "_py_func", None), "__module__", "") or ""
    return module.split(".")[0] in ("symfield", PACKAGE)


def _load_or_repair(load):
    """Wrap Numba's ``Cache.load_overload``: for symfield's functions (its own ``cache=True`` functions and
    the generated modules), unreadable index/data files (``.nbi``/``.nbc``) are deleted, a RuntimeWarning
    names them and the reason, and Numba compiles again (``None`` = not cached).  If they cannot be
    deleted (a read-only shared cache), caching is switched off for that function in this process."""
    def load_overload(self, sig, target_context):
        if not _is_symfield(self):
            return load(self, sig, target_context)
        try:
            return load(self, sig, target_context)
        except Exception as exc:
            index = self._cache_file._index_path
            stale = [index] + glob.glob(glob.escape(index[: -len(".nbi")]) + ".*.nbc")
            try:
                for path in stale:
                    if os.path.exists(path):
                        os.unlink(path)
                done = "deleted them"
            except OSError as err:
                self.disable()
                done = f"could not delete them ({err.strerror}), so caching is off for this function"
            name = getattr(self._py_func, "__qualname__", "?")
            warnings.warn(f"symfield: Numba cache files {stale} could not be read ({type(exc).__name__}: "
                          f"{exc}); {done}; compiling {name} again", RuntimeWarning, stacklevel=2)
            return None
    load_overload.symfield_repairs = True
    return load_overload


def install_numba_repair() -> None:
    """Make every symfield ``cache=True`` function recover from corrupted Numba cache files (see
    :func:`_load_or_repair`); Numba's behaviour for other packages' functions is unchanged."""
    from numba.core.caching import Cache
    if not getattr(Cache.load_overload, "symfield_repairs", False):
        Cache.load_overload = _load_or_repair(Cache.load_overload)


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
    path = cache_root() / "derived" / f"{tag}_{key}_{_code_version()}.py"
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        pass
    text = make()
    _makedirs(path.parent)
    _atomic_write(path, text)
    return text
