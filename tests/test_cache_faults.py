"""Cache faults are repaired, never passed on (docs/reliability.md, "Cache"): each fault is reproduced in a
subprocess with its own HOME / SYMFIELD_CACHE / TMPDIR.

Root ignores file modes, so when the tests run as root the subprocess runs without capabilities
(``setpriv``): a 0555 directory is then read-only for it as for any user."""
import json
import math
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import symfield as sf

PACKAGE = Path(sf.__file__).resolve().parent
X = [[1.0, 0.2], [0.3, -0.5]]

# A cheap generated module: one cache=True function, f(x) = sin(x)^2, built through the module builder.
PROBE = textwrap.dedent("""
    import json, os, sys, warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import sympy as sp
        import symfield as sf
        from symfield import codegen
        x = sp.Symbol("x")
        mod = codegen.build_module("fault_probe", "symfield.tests", "cache fault probe",
                                   [("f", codegen.scalar_source("f", [x], sp.sin(x) ** 2))])
        value = mod.f(0.3)
        phi = "tanh" if "tanh" in sys.argv else "erf"  # tanh: symfield's own dual-kernel functions
        mf = sf.mean_field(sf.RNN(2, phi=phi), %s) if "mean_field" in sys.argv else None
        derived = codegen.derived_source("fault_probe", "k", lambda: "x = 1\\n") if "derived" in sys.argv else None
    print(json.dumps({"value": value, "path": mod.__file__, "warnings": [str(w.message) for w in caught
                      if issubclass(w.category, RuntimeWarning)],
                      "hits": sum(mod.f.stats.cache_hits.values()), "misses": sum(mod.f.stats.cache_misses.values()),
                      "numba_dir": os.environ.get("NUMBA_CACHE_DIR"), "C": None if mf is None else mf.C.tolist()}))
""" % X)


def _unprivileged():
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file modes cannot be enforced")
    return [setpriv, "--inh-caps=-all", "--bounding-set=-all", "--"]


def run(tmp, *args, cache=None, umask=None, pythonpath=None, **env_extra):
    """Run PROBE with HOME and TMPDIR inside ``tmp`` and SYMFIELD_CACHE = ``cache`` (unset if None)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SYMFIELD_CACHE", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(HOME=str(tmp / "home"), TMPDIR=str(tmp / "tmp"), **env_extra)
    for d in ("home", "tmp"):
        (tmp / d).mkdir(exist_ok=True)
    if cache is not None:
        env["SYMFIELD_CACHE"] = str(cache)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    out = subprocess.run(_unprivileged() + [sys.executable, "-c", PROBE, *args], env=env, cwd=tmp,
                         capture_output=True, text=True, timeout=300, umask=-1 if umask is None else umask)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_corrupt_numba_files_are_deleted_and_recompiled(tmp_path):
    cache = tmp_path / "cache"
    first = run(tmp_path, cache=cache)
    assert first["misses"] >= 1 and first["warnings"] == []
    pycache = Path(first["path"]).parent / "__pycache__"
    for suffix in (".nbc", ".nbi"):  # garbage data file (valid index), then garbage index
        files = sorted(pycache.glob(f"fault_probe_*.f-*{suffix}"))
        assert files, suffix
        for f in files:
            f.write_bytes(b"not a pickle \x00\xff" * 8)
        again = run(tmp_path, cache=cache)
        assert again["value"] == first["value"] and again["misses"] >= 1
        assert len(again["warnings"]) == 1 and str(files[0]) in again["warnings"][0], again["warnings"]
        assert "could not be read" in again["warnings"][0] and "deleted them" in again["warnings"][0]
    repaired = run(tmp_path, cache=cache)  # the rewritten files are good: loaded, nothing compiled
    assert repaired["warnings"] == [] and repaired["hits"] >= 1 and repaired["misses"] == 0
    assert abs(first["value"] - math.sin(0.3) ** 2) < 1e-15


@pytest.mark.parametrize("fault", ["read-only directory", "regular file"])
def test_unusable_cache_falls_back_to_a_temporary_directory(tmp_path, fault):
    cache = tmp_path / "cache"
    if fault == "regular file":
        cache.write_text("not a directory")
    else:
        cache.mkdir()
        cache.chmod(0o555)
    try:
        res = run(tmp_path, cache=cache)
    finally:
        cache.chmod(0o755)
    assert abs(res["value"] - math.sin(0.3) ** 2) < 1e-15
    assert len(res["warnings"]) == 1, res["warnings"]
    msg = res["warnings"][0]
    reason = "Permission denied" if fault == "read-only directory" else "Not a directory"
    assert repr(str(cache)) in msg and reason in msg and "temporary directory" in msg
    assert Path(res["path"]).is_relative_to(tmp_path / "tmp")          # the per-process directory ...
    assert not (tmp_path / "tmp").exists() or not list((tmp_path / "tmp").iterdir())  # ... removed at exit
    assert cache.is_file() or not list(cache.iterdir())


def test_files_are_world_readable_whatever_the_umask(tmp_path):
    cache = tmp_path / "cache"
    res = run(tmp_path, "derived", cache=cache, umask=0o077)
    assert res["warnings"] == []
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [cache, *cache.rglob("*")] if "__pycache__" not in p.parts}
    assert Path(res["path"]) in modes and any(p.parent.name == "derived" for p in modes)
    for path, mode in modes.items():
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))


def _read_only_package(tmp):
    """A copy of the package (no __pycache__) and a HOME, neither writable."""
    pkg = tmp / "pkg"
    shutil.copytree(PACKAGE, pkg / "symfield", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "home").mkdir()
    for root in (pkg, tmp / "home"):
        for p in [root, *root.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
    return pkg


def _writable_again(tmp):
    for p in [tmp, *tmp.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)


def test_import_and_mean_field_on_a_read_only_home(tmp_path):
    """Neither the package's __pycache__ nor HOME writable, SYMFIELD_CACHE unset: symfield's own cache=True
    functions and the generated modules go to the process's temporary directory, with warnings."""
    pkg = _read_only_package(tmp_path)
    try:
        res = run(tmp_path, "mean_field", pythonpath=pkg)
    finally:
        _writable_again(tmp_path)
    expected = sf.mean_field(sf.RNN(2, phi="erf"), np.array(X)).C
    assert np.array_equal(np.array(res["C"]), expected)
    assert Path(res["numba_dir"]).is_relative_to(tmp_path / "tmp")
    numba_msg, cache_msg = res["warnings"]
    assert str(tmp_path / "home" / ".cache" / "numba") in numba_msg and "NUMBA_CACHE_DIR" in numba_msg
    assert str(tmp_path / "home" / ".cache" / "symfield") in cache_msg and "Permission denied" in cache_msg


def test_a_users_numba_cache_dir_is_respected(tmp_path):
    pkg = _read_only_package(tmp_path)
    mine = tmp_path / "my_numba"
    mine.mkdir()
    try:
        res = run(tmp_path, pythonpath=pkg, cache=tmp_path / "cache", NUMBA_CACHE_DIR=str(mine))
    finally:
        _writable_again(tmp_path)
    assert res["numba_dir"] == str(mine) and res["warnings"] == []
    assert list(mine.rglob("fault_probe_*.nbi"))


def test_corrupt_numba_files_of_the_package_functions_are_rebuilt(tmp_path):
    """symfield's own cache=True functions (the dual kernel that mean_field runs for tanh, cached under
    NUMBA_CACHE_DIR so the checkout's __pycache__ is not touched): garbage .nbi/.nbc files are deleted with a warning and the
    functions compiled again; the next process loads them without warnings and gives the same kernel."""
    mine = tmp_path / "numba"
    first = run(tmp_path, "mean_field", "tanh", cache=tmp_path / "cache", NUMBA_CACHE_DIR=str(mine))
    assert first["warnings"] == []
    # Numba names a folder <parent folder>_<hash>: symfield/gauss/dual.py's functions are in gauss_*
    ours = [p for p in mine.rglob("*") if p.suffix in (".nbi", ".nbc") and p.parent.name.startswith("gauss_")]
    assert any(p.suffix == ".nbi" for p in ours) and any(p.suffix == ".nbc" for p in ours)
    for p in ours:
        p.write_bytes(b"\x80\x04garbage \x00\xff" * 4)
    again = run(tmp_path, "mean_field", "tanh", cache=tmp_path / "cache", NUMBA_CACHE_DIR=str(mine))
    assert again["C"] == first["C"]
    assert again["warnings"] and all("could not be read" in w and "deleted them" in w for w in again["warnings"])
    named = {p for p in ours if any(str(p) in w for w in again["warnings"])}
    assert any(p.suffix == ".nbi" for p in named), again["warnings"][:2]
    third = run(tmp_path, "mean_field", "tanh", cache=tmp_path / "cache", NUMBA_CACHE_DIR=str(mine))
    assert third["warnings"] == [] and third["C"] == first["C"]
    assert np.array_equal(first["C"], sf.mean_field(sf.RNN(2, phi="tanh"), np.array(X)).C)
