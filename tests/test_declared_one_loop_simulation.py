"""One loop of declared networks (leaky RNN, ResNet, grouped sharing) against finite-width simulation of the
same declaration, extrapolated to N -> infinity in 1/N (the intercept of the 1/N fit is the one-loop value)."""
import numpy as np
import pytest

import symfield as sf
from symfield.simulate.extrapolate import extrapolate
from symfield.validation import one_loop_measurements

X1 = np.ones((1, 1))
NETS = {"leaky": sf.RNN(6, phi="erf", g=1.2, leak=0.8, sigma_b2=0.1),
        "resnet": sf.ResNet(6, phi="erf", g=1.5, r=0.5, sigma_b2=0.1),
        "pairs": sf.NetworkSpec(T=6, phi="erf", g=1.2, sigma_b2=0.1,
                                share={"W": [[1, 2], [3, 4], [5]], "b": "shared"})}


@pytest.mark.parametrize("name", list(NETS))
def test_declared_one_loop_agrees_with_extrapolated_simulation(name):
    net = NETS[name]
    nl = sf.one_loop(net, X1)
    m = one_loop_measurements(net, X1, [32, 64, 128], 20000, seed=11)
    t = net.T - 1
    for key, theory in (("var", nl.variance()[t, t, 0, 0]), ("shift", nl.mean_shift[t, t, 0, 0]),
                        ("emp_var", nl.empirical_variance[t, t, 0, 0])):
        fit = extrapolate(m["N"], m[key], m[key + "_err"])
        print(f"\n{name} {key}: theory {theory:.4f}, simulation extrapolated {fit.value:.4f} ± {fit.error:.4f} "
              f"(z = {(fit.value - theory) / fit.error:+.2f})")
        assert abs(fit.value - theory) < 4 * fit.error, f"{name} {key}: {fit.value} ± {fit.error} vs {theory}"
    # resolution: keeping the noise covariance only where M_uv != 0 (different W, same neurons) gave
    # N Var C = 0.259 (pairs) and 0.245 (resnet) against 0.270 and 0.697 here; the fit must tell them apart
    var = extrapolate(m["N"], m["var"], m["var_err"])
    assert var.error < 0.015 * var.value
