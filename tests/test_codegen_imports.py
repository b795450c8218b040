"""A generated module's cache key covers the source of the symfield modules it imports (issue 10, cache faults):
Numba's on-disk cache does not track imported callees (the moments modules call gauss/nested.py's level_rule), so
the module text carries a hash of each imported source — a change there is a new text, file name and cache."""
import hashlib
import importlib
import sys

from symfield.codegen import builder, cache
from symfield.gauss import nested
from symfield.gauss.moments import moments_source
from symfield.gauss.registry import get_phi


def test_moments_module_names_the_source_of_nested():
    digest = hashlib.sha256(open(nested.__file__, "rb").read()).hexdigest()[:16]
    assert f"# imports symfield.gauss.nested: source sha256 {digest}" in moments_source(get_phi("tanh"))


def test_changing_an_imported_source_changes_the_key(tmp_path, monkeypatch):
    package = tmp_path / "htpkg_codegen"
    package.mkdir()
    (package / "__init__.py").write_text("")
    helper = package / "helper.py"
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(builder, "TRACKED", builder.TRACKED + ("htpkg_codegen",))
    imports = builder.IMPORTS + "from htpkg_codegen.helper import step\n"
    template = [("kernel", "@njit(cache=True)\ndef kernel(x):\n    return step(x)\n")]
    paths = []
    for body in ("def step(x):\n    return x\n", "def step(x):\n    return 2 * x\n"):
        helper.write_text(body)
        importlib.invalidate_caches()
        text = builder.module_text("tests", "imports", template, imports=imports)
        paths.append(cache.module_path(text, "imports_test"))
    sys.modules.pop("htpkg_codegen", None)
    assert paths[0] != paths[1]
    # an untracked import (numpy) adds nothing
    assert builder.imported_sources("import numpy as np\nfrom numpy import exp\n") == []
