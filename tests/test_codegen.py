"""Generated modules: written once, reused by a second process without recompiling, repaired when broken."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import sympy as sp

from symfield import codegen
from symfield.codegen import cache

PROBE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import symfield as sf
    from symfield.codegen import cache
    from symfield.theory.kernel_map import kernel_map
    km = kernel_map(sf.get_phi("erf", kappa=0.75))
    a = np.array([1.0, 2.0])
    val = km.expect(a, a, np.array([[1.0, 0.3], [0.3, 2.0]]))
    disp = km.module._rows  # a 2x2 block runs on one thread
    print(json.dumps({"written": [str(p) for p in cache.written], "path": km.module.__file__,
                      "hits": sum(disp.stats.cache_hits.values()), "misses": sum(disp.stats.cache_misses.values()),
                      "value": float(val[0, 1])}))
""")


def run_probe(env):
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_reuses_module_and_numba_cache(tmp_path):
    env = dict(os.environ, SYMFIELD_CACHE=str(tmp_path))
    first = run_probe(env)
    second = run_probe(env)
    assert first["written"] and first["misses"] >= 1           # first process generated and compiled
    assert second["written"] == [] and second["path"] == first["path"]
    assert second["hits"] >= 1 and second["misses"] == 0       # loaded from numba's cache, not recompiled
    assert second["value"] == first["value"]


def test_broken_cache_file_is_regenerated(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMFIELD_CACHE", str(tmp_path))
    x = sp.Symbol("x")
    src = "import math\nfrom numba import njit\n\n\n" + codegen.scalar_source("f", [x], sp.sin(x) ** 2)
    path = codegen.module_path(src, "probe")
    path.write_text(src[: len(src) // 2])  # a half-written file
    mod = codegen.load_module(src, "probe")
    assert path.read_text() == src
    assert abs(mod.f(0.3) - np.sin(0.3) ** 2) < 1e-15
    assert path in cache.written


def test_module_name_is_content_hashed(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMFIELD_CACHE", str(tmp_path))
    a = codegen.module_path("x = 1\n", "t")
    b = codegen.module_path("x = 2\n", "t")
    assert a != b and a.parent == b.parent == tmp_path / "generated"
