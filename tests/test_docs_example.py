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


README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_use_it_on_your_data_runs():
    """The README's scikit-learn example runs as written: the hyperparameters move from their initial
    values (fitted by marginal likelihood) and the digits 3 and 8 are told apart on held-out data."""
    import pytest
    pytest.importorskip("sklearn")
    pytest.importorskip("symfield.sklearn")
    text = README.read_text()
    section = text[text.index("## Use it on your data"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # scikit-learn's notice that g_in ends at its bound
        exec(compile(code, str(README), "exec"), scope)
    fitted = scope["gpr"].kernel_.get_params()
    assert fitted["g"] != 1.5 and fitted["sigma_b2"] != 0.1
    assert scope["accuracy"] > 0.9
    assert np.all(scope["std"] > 0) and scope["mean"].shape == (200,)
