"""The "add an architecture" example of docs/architecture.md runs as written, and its numbers make sense."""
import pathlib
import re

import numpy as np

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def test_add_an_architecture_example_runs():
    text = DOC.read_text()
    section = text[text.index("## Adding an architecture"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(compile(code, str(DOC), "exec"), scope)
    net, mf, sim, nl, z = (scope[k] for k in ("net", "mf", "sim", "nl", "z"))
    assert net.label == "custom" and net.groups("W") == ((1, 2, 3), (4, 5))
    M = net.weight_mask()
    assert M[2, 3] == 1 and M[3, 4] == 0            # 0-based: W_2 = W_3, W_3 != W_4
    # 60 networks: every kernel entry within 5 standard errors (the O(1/N) bias is far below that here)
    assert np.abs(z).max() < 5.0
    assert nl.variance()[-1, -1, 0, 0] > 0
