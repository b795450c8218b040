"""Bad input raises a clear error that names the argument."""
import numpy as np
import pytest
import sympy as sp

import symfield as sf
from symfield.gauss import UnknownNonlinearity


@pytest.mark.parametrize("kw,name", [
    (dict(T=0), "T"), (dict(T=2.5), "T"), (dict(T=True), "T"),
    (dict(g=-1.0), "g"), (dict(g=float("nan")), "g"), (dict(g_in=-0.1), "g_in"),
    (dict(sigma_b2=-0.1), "sigma_b2"), (dict(input="sometimes"), "input"), (dict(bias="dynamic"), "bias"),
    (dict(scaling="ntk"), "scaling"), (dict(g=[1.0, 1.2]), "g"),
])
def test_bad_spec(kw, name):
    args = dict(T=3)
    args.update(kw)
    with pytest.raises(sf.SpecError, match=name):
        sf.RNN(**args)


def test_inconsistent_conventions():
    with pytest.raises(sf.SpecError, match="bias='static' is inconsistent with a DNN"):
        sf.DNN(3, bias="static")
    with pytest.raises(sf.SpecError, match="g must be a scalar or have 2 entries"):
        sf.DNN(3, g=[1.0, 1.0, 1.0])
    with pytest.raises(sf.SpecError, match="arch"):
        sf.NetworkSpec("cnn", 3)


def test_unknown_phi():
    with pytest.raises(UnknownNonlinearity, match="unknown phi 'no_such_phi'.*register_phi"):
        sf.RNN(3, phi="no_such_phi")
    with pytest.raises(ValueError, match="unknown"):
        sf.RNN(3, phi="erf", phi_params={"beta": 2.0})
    with pytest.raises(ValueError, match="one variable"):
        sf.get_phi(sp.Symbol("a") * sp.Symbol("b"))


@pytest.mark.parametrize("X,msg", [
    (np.array([[1.0, np.nan]]), "non-finite"), (np.array([[np.inf, 1.0]]), "non-finite"),
    (np.ones(3), r"shape \(P, D\)"), (np.ones((2, 3, 4)), r"shape \(P, D\)"), (np.ones((0, 3)), "at least one"),
])
def test_bad_inputs(X, msg):
    with pytest.raises(sf.SpecError, match=msg):
        sf.mean_field(sf.RNN(3), X)


def test_bad_sequence_shape():
    with pytest.raises(sf.SpecError, match=r"X must have shape \(P, T=4, D\)"):
        sf.mean_field(sf.RNN(4, input="every"), np.ones((2, 3, 5)))


def test_not_a_spec():
    with pytest.raises(TypeError, match="NetworkSpec"):
        sf.mean_field("rnn", np.ones((1, 1)))
    with pytest.raises(TypeError, match="NetworkSpec"):
        sf.action(3)


def test_gp_bad_arguments():
    with pytest.raises(ValueError, match="noise"):
        sf.gp.gp_predict(np.eye(2), np.ones((1, 2)), np.ones(1), np.ones(2), noise=-1.0)
    with pytest.raises(ValueError, match="Y must have 2 rows"):
        sf.gp.gp_predict(np.eye(2), np.ones((1, 2)), np.ones(1), np.ones(3))
    with pytest.raises(ValueError, match="not positive definite"):
        sf.gp.gp_predict(np.ones((2, 2)) - 2 * np.eye(2), np.ones((1, 2)), np.ones(1), np.ones(2))
    with pytest.raises(sf.SpecError, match="readout_time"):
        sf.gp.output_kernel(sf.RNN(3), np.ones((2, 2)), readout_time=4)


def test_fixed_point_without_finite_solution():
    from symfield.theory import FixedPointError
    with pytest.raises(FixedPointError, match="no finite fixed point"):
        sf.fixed_point(sf.RNN(3, phi="relu", g=2.0, sigma_b2=0.1))


def test_non_finite_kernel_is_reported_with_its_block():
    from symfield.theory import NonFiniteKernel
    sf.register_phi("outside_domain", sf.gauss.x, pair=lambda a, b, c: sp.sqrt(c - 10), overwrite=True)
    with pytest.raises(NonFiniteKernel, match=r"block \(1, 1\): 3 non-finite"):
        sf.mean_field(sf.DNN(3, phi="outside_domain"), np.ones((2, 2)))
