"""Every control validated (issue 10, part 4): each reproducer raises a SymfieldError subclass naming the
argument; the valid calls next to it still work."""
import numpy as np
import pytest

import symfield as sf
from symfield.api import check_array, check_positive_int, check_real
from symfield.cli import main
from symfield.errors import SpecError, SpecTypeError
from symfield.gp import gp_predict, output_kernel
from symfield.simulate.posterior import posterior
from symfield.theory.feature_learning import closed_form_threshold, critical_signal, feature_learning

from linear_mup import X1, endpoint, rnn


def raises(kind, name, fn, *args, **kw):
    with pytest.raises(kind) as err:
        fn(*args, **kw)
    assert name in str(err.value), str(err.value)


# ----------------------------------------------------------------------------------------- helpers
@pytest.mark.parametrize("value, kind", [("1", SpecTypeError), (None, SpecTypeError), (True, SpecTypeError),
                                         (1 + 0j, SpecTypeError), (np.nan, SpecError), (np.inf, SpecError),
                                         (10 ** 400, SpecError), (-1.0, SpecError), (0.0, SpecError)])
def test_check_real_names_the_argument(value, kind):
    raises(kind, "tol", check_real, "tol", value, low=0, low_open=True)


def test_check_real_and_int_accept_valid_values():
    assert check_real("x", np.float32(0.5), low=0, high=1) == 0.5
    assert check_real("x", 3, low=0) == 3.0 and isinstance(check_real("x", 3), float)
    assert check_real("x", None, none_ok=True) is None
    assert check_positive_int("n", np.int64(4)) == 4
    raises(SpecTypeError, "n", check_positive_int, "n", 4.0)
    raises(SpecTypeError, "n", check_positive_int, "n", "4")
    raises(SpecError, "n", check_positive_int, "n", 0)


def test_check_array():
    assert check_array("A", [[1, 2]]).dtype == float
    assert np.array_equal(check_array("A", np.array([1, 2], dtype=object)), [1.0, 2.0])
    raises(SpecTypeError, "A", check_array, "A", [1j, 2])
    raises(SpecTypeError, "A", check_array, "A", ["a"])
    raises(SpecTypeError, "A", check_array, "A", None)
    raises(SpecError, "A", check_array, "A", [[1, 2], [3]])
    raises(SpecError, "A", check_array, "A", [1, np.nan])


# --------------------------------------------------------------------------------------- declaration
def test_inputs_must_be_real_numbers():
    net = sf.RNN(3)
    raises(SpecTypeError, "X", net.check_inputs, np.ones((2, 3)) * (1 + 1j))
    raises(SpecTypeError, "X", net.check_inputs, [["a", "b"]])
    raises(SpecTypeError, "X", net.check_inputs, None)
    raises(SpecError, "X", net.check_inputs, [[1.0, np.nan]])
    raises(SpecTypeError, "X", sf.mean_field, net, np.ones((1, 2)) * 1j)
    assert net.check_inputs([[1, 2]]).shape == (1, 1, 2)  # input="first"


def test_per_step_parameters_checked_for_every_T():
    for T in (1, 2):
        raises(SpecError, "g", sf.RNN, T, g=np.nan)
        raises(SpecError, "sigma_b2", sf.RNN, T, sigma_b2=np.inf)
        raises(SpecTypeError, "g", sf.RNN, T, g="big")
        raises(SpecTypeError, "sigma_b2", sf.DNN, T, sigma_b2=None)
    assert sf.RNN(1, g=1.5).g == 1.5


@pytest.mark.parametrize("value, kind", [(1e19, SpecError), (2.0 ** 63, SpecError), (np.nan, SpecError),
                                         ("a", SpecTypeError), (None, SpecTypeError), (1j, SpecTypeError)])
def test_phi_params_finite_real_numbers(value, kind):
    raises(kind, "phi_params['scale']", sf.DNN, 2, phi="erf", phi_params={"scale": value})


def test_phi_params_valid_scale_still_works():
    # erf with scale s: <φ²> at q = 1 is (2/π) asin(2 s² / (1 + 2 s²))
    net = sf.DNN(2, phi="erf", phi_params={"scale": 2}, g=1.0, sigma_b2=0.0, g_in=1.0)
    q = sf.mean_field(net, np.ones((1, 1))).block(1, 1)[0, 0]
    assert q == pytest.approx(2 / np.pi * np.arcsin(8 / 9), rel=1e-12)


# ------------------------------------------------------------------------------------------- kernels
def test_length_map_arguments():
    net = sf.DNN(3, phi="erf")
    raises(SpecTypeError, "q1", sf.length_map, net, "1", 3)
    raises(SpecError, "q1", sf.length_map, net, np.nan, 3)
    raises(SpecTypeError, "steps", sf.length_map, net, 1.0, None)
    raises(SpecTypeError, "steps", sf.length_map, net, 1.0, 2.5)
    raises(SpecTypeError, "q_in", sf.length_map, net, 1.0, 3, q_in="0")
    raises(SpecError, "q_in", sf.length_map, net, 1.0, 3, q_in=-1.0)
    raises(SpecError, "q_max", sf.fixed_point, net, q_max=np.inf)
    raises(SpecError, "critical_tol", sf.fixed_point, net, critical_tol=np.nan)
    q = sf.length_map(net, 1.0, 2)
    assert q[1] == pytest.approx(net.sigma_b2 + net.g ** 2 * 2 / np.pi * np.arcsin(2 / 3), rel=1e-12)


def test_output_kernel_rejects_mean_field_of_other_inputs_or_network():
    net = sf.DNN(3, phi="erf")
    X = np.array([[1.0, 0.5], [0.2, -1.0]])
    raises(SpecError, "mf", output_kernel, net, X, mf=sf.mean_field(net, 5 * X))
    raises(SpecError, "mf", output_kernel, net, X, mf=sf.mean_field(sf.DNN(3, phi="erf", g=2.0), X))
    raises(SpecTypeError, "mf", output_kernel, net, X, mf=np.eye(2))
    assert np.array_equal(output_kernel(net, X, mf=sf.mean_field(net, X)), output_kernel(net, X))


def test_gp_predict_names_non_finite_kernels_and_inputs():
    K = np.array([[2.0, 0.5], [0.5, 1.0]])
    raises(SpecError, "K_train", gp_predict, [[1.0, np.nan], [np.nan, 1.0]], [[1.0, 0.0]], [1.0], [1.0, 2.0])
    raises(SpecError, "K_cross", gp_predict, K, [[np.inf, 0.0]], [1.0], [1.0, 2.0])
    raises(SpecError, "K_test_diag", gp_predict, K, [[1.0, 0.0]], [np.nan], [1.0, 2.0])
    raises(SpecError, "Y", gp_predict, K, [[1.0, 0.0]], [1.0], [1.0, np.nan])
    raises(SpecTypeError, "noise", gp_predict, K, [[1.0, 0.0]], [1.0], [1.0, 2.0], noise="0")
    raises(SpecError, "noise", gp_predict, K, [[1.0, 0.0]], [1.0], [1.0, 2.0], noise=np.nan)
    raises(SpecError, "X_train", sf.gp.predict, sf.DNN(2), [[np.nan, 1.0]], [1.0], [[1.0, 1.0]])
    pred = gp_predict(K, [[1.0, 0.0]], [3.0], [1.0, 2.0])  # independent: explicit inverse
    assert pred.mean[0] == pytest.approx(np.array([1.0, 0.0]) @ np.linalg.inv(K) @ [1.0, 2.0], rel=1e-12)


# ------------------------------------------------------------------------------ feature learning
@pytest.mark.parametrize("kw, name", [({"gtol": np.inf}, "gtol"), ({"gtol": 0.0}, "gtol"),
                                      ({"gtol": "1e-9"}, "gtol"), ({"steps": 0}, "steps"),
                                      ({"steps": 2.0}, "steps"), ({"overshoot": np.nan}, "overshoot")])
def test_feature_learning_controls(kw, name):
    raises(SpecError, name, feature_learning, rnn(3), X1, endpoint(3, 2.0), **kw)


@pytest.mark.parametrize("kw, name", [({"s_max": 0}, "s_max"), ({"s_max": -1.0}, "s_max"),
                                      ({"s_max": np.nan}, "s_max"), ({"xtol": 0.0}, "xtol"),
                                      ({"gtol": np.inf}, "gtol"), ({"xtol": None}, "xtol")])
def test_critical_signal_controls(kw, name):
    raises(SpecError, name, critical_signal, rnn(3), X1, endpoint(3, 1.0), **kw)


def test_critical_signal_small_s_max_searches_below_it():
    yc = closed_form_threshold(rnn(3), X1, endpoint(3, 1.0))
    assert critical_signal(rnn(3), X1, endpoint(3, 1.0), s_max=0.5 * yc) == np.inf
    assert critical_signal(rnn(3), X1, endpoint(3, 1.0), s_max=2 * yc) == pytest.approx(yc, rel=1e-6)


# ------------------------------------------------------------------------------------- posterior
NET = sf.RNN(2, phi="linear", bias="none", scaling="mean_field")


@pytest.mark.parametrize("kw, name", [({"step": 0.0}, "step"), ({"step": np.nan}, "step"),
                                      ({"step": np.inf}, "step"), ({"step": -0.1}, "step"),
                                      ({"target_accept": np.nan}, "target_accept"),
                                      ({"target_accept": 1.0}, "target_accept"),
                                      ({"target_accept": 0.0}, "target_accept"),
                                      ({"leapfrog": 0}, "leapfrog"), ({"leapfrog": 2.5}, "leapfrog"),
                                      ({"seed": -1}, "seed"), ({"seed": "0"}, "seed"), ({"seed": 1.5}, "seed"),
                                      ({"eig_samples": -1}, "eig_samples"), ({"N": None}, "N")])
def test_posterior_controls(kw, name):
    raises(SpecError, name, posterior, NET, X1, endpoint(2, 1.0), **{"N": 4, "samples": 2, "burn": 0, **kw})


def test_posterior_records_the_seed_it_used():
    kw = dict(N=4, samples=3, burn=0, chains=1, leapfrog=3)
    post = posterior(NET, X1, endpoint(2, 1.0), seed=None, **kw)
    assert isinstance(post.seed, int)
    again = posterior(NET, X1, endpoint(2, 1.0), seed=post.seed, **kw)
    assert np.array_equal(post.C, again.C) and len(np.unique(post.C)) > 1
    assert posterior(NET, X1, endpoint(2, 1.0), seed=7, **kw).seed == 7


# ------------------------------------------------------------------------------------------- CLI
def test_cli_os_error_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["reproduce", "gp-kernels", "--quick", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symfield: error:") and err.count("\n") == 1 and "Traceback" not in err
