"""One-loop theory against finite-width networks, extrapolated to N -> infinity in 1/N."""
import numpy as np
import pytest

import symfield as sf
from symfield.simulate.extrapolate import extrapolate
from symfield.validation import one_loop_measurements
from symfield.theory.one_loop import one_loop

X1 = np.ones((1, 1))


def test_extrapolation_recovers_a_known_line():
    N = np.array([32.0, 64.0, 128.0])
    fit = extrapolate(N, 0.3 + 2.0 / N, np.full(3, 1e-3))
    assert fit.value == pytest.approx(0.3) and fit.slope == pytest.approx(2.0)
    two = extrapolate([50, 100], [1.0, 0.8], [0.1, 0.1])  # Richardson: 2 y_2N - y_N
    assert two.value == pytest.approx(0.6)
    with pytest.raises(ValueError):
        extrapolate([10], [1.0], [0.1])


@pytest.mark.parametrize("net", [sf.RNN(10, phi="erf", g=1.2, sigma_b2=0.1, bias="static"),
                                 sf.DNN(10, phi="erf", g=1.2, sigma_b2=0.1)])
def test_variance_and_mean_shift_agree_with_extrapolated_simulation(net):
    nl = one_loop(net, X1)
    m = one_loop_measurements(net, X1, [32, 64, 128], 30000, seed=11)
    var = extrapolate(m["N"], m["var"], m["var_err"])
    shift = extrapolate(m["N"], m["shift"], m["shift_err"])
    t = net.T - 1
    assert abs(var.value - nl.variance()[t, t, 0, 0]) < 4 * var.error
    assert abs(shift.value - nl.mean_shift[t, t, 0, 0]) < 4 * shift.error
    emp = extrapolate(m["N"], m["emp_var"], m["emp_var_err"])
    assert abs(emp.value - nl.empirical_variance[t, t, 0, 0]) < 4 * emp.error
    if net.shares_weights:  # the F''-only prediction is ruled out: the weight-sharing vertex is needed
        tadpole_only = nl.terms["tadpole"][t, t, 0, 0]
        assert abs(shift.value - tadpole_only) > 5 * shift.error


def test_tanh_one_loop_agrees_with_extrapolated_simulation():
    """tanh has no closed form of <φφ>: template derivatives by Price's theorem on Gauss–Hermite, four-point
    moments by quadrature; the variance, mean shift and empirical variance against networks at N = 32..128."""
    net = sf.RNN(6, phi="tanh", g=1.3, sigma_b2=0.1)
    nl = one_loop(net, X1)
    m = one_loop_measurements(net, X1, [32, 64, 128], 20000, seed=13)
    t = net.T - 1
    for key, theory in (("var", nl.variance()[t, t, 0, 0]), ("shift", nl.mean_shift[t, t, 0, 0]),
                        ("emp_var", nl.empirical_variance[t, t, 0, 0])):
        fit = extrapolate(m["N"], m[key], m[key + "_err"])
        assert abs(fit.value - theory) < 4 * fit.error, f"tanh {key}: {fit.value} ± {fit.error} vs {theory}"
    var = extrapolate(m["N"], m["var"], m["var_err"])
    assert var.error < 0.05 * var.value
