"""μP feature learning: the issue's API, published reference values, phases, spectrum, sequential tasks."""
import numpy as np
import pytest

import symfield as sf
from symfield.solve import ConvergenceError, continue_in, maximize
from symfield.spec import SpecError
from symfield.theory.feature_learning.action import LinearAction
from symfield.theory.feature_learning import (closed_form_threshold, critical_signal, feature_learning, mirror,
                                               signal_scan)

from linear_mup import X1, dnn, endpoint, rnn


def test_issue_example_api():
    net = sf.RNN(T=3, phi="linear", g=1.0, g_in=1.0, sigma_v=1.0, bias="none", scaling="mean_field")
    Y = endpoint(3, 4.5)
    sup = np.array([False, False, True])
    fl = feature_learning(net, X1, Y, supervised=sup, kappa=1.0)
    assert fl.C.shape == fl.Chat.shape == (3, 3, 1, 1)
    assert fl.predict().shape == (1, 3)
    assert isinstance(fl.action, float) and fl.phase == "broken"
    assert repr(fl).startswith("FeatureLearning(") and "phase='broken'" in repr(fl)
    assert fl.learned_eigenvalues().shape == (2,)
    yc = critical_signal(net, X1, Y, supervised=sup, kappa=1.0)
    assert yc == pytest.approx(np.sqrt(81 / 8), rel=1e-8)  # theory 13.1 #3
    assert fl.fixed_point_residual() < 1e-9
    # the two broken branches are Z2 mirror images with the same action
    names = [b.name for b in fl.branches]
    assert names == ["symmetric", "broken+", "broken-"]
    np.testing.assert_allclose(fl.branches[2].C, mirror(fl.problem, fl.branches[1].C))
    assert fl.branches[1].action == pytest.approx(fl.branches[2].action, abs=1e-12)
    assert fl.branches[1].stable and not fl.branches[0].stable


def test_T2_rnn_equals_dnn_exact_values():
    """13.1 #1: C = diag(2, 4) at y = 2.5 for both architectures."""
    for net in (rnn(2), dnn(2)):
        fl = feature_learning(net, X1, endpoint(2, 2.5))
        np.testing.assert_allclose(fl.C[:, :, 0, 0], np.diag([2.0, 4.0]), atol=1e-8)


def test_T3_golden_ratio_symmetric_solution():
    """13.1 #2: y = 2 gives C = diag(φ, φ², φ³), RNN and DNN."""
    phi = (1 + np.sqrt(5)) / 2
    for net in (rnn(3), dnn(3)):
        fl = feature_learning(net, X1, endpoint(3, 2.0))
        np.testing.assert_allclose(fl.C[:, :, 0, 0], np.diag([phi, phi ** 2, phi ** 3]), atol=1e-8)
        assert fl.phase == "symmetric"


def test_fixed_point_identity_and_structure_of_chat():
    T = 4
    fr = feature_learning(rnn(T, g=0.9), X1, endpoint(T, 3.0))
    fd = feature_learning(dnn(T, g=0.9), X1, endpoint(T, 3.0))
    for fl in (fr, fd):
        assert fl.fixed_point_residual() < 1e-9
        Ch = fl.Chat[:, :, 0, 0]
        # endpoint supervision: row/column T of Ĉ vanish except the data entry
        assert np.all(Ch[-1, :-1] == 0) and Ch[-1, -1] > 0
    assert fr.phase == "broken" and fd.phase == "symmetric"
    Chd = fd.Chat[:, :, 0, 0]
    assert np.all(Chd[~np.eye(T, dtype=bool)] == 0)  # the DNN's Ĉ is diagonal
    Chr = fr.Chat[:, :, 0, 0]
    odd = np.abs(np.subtract.outer(np.arange(T), np.arange(T))) % 2 == 1
    assert np.any(np.abs(Chr[odd]) > 1e-3)
    # the mirror branch flips the odd-lag entries of C, and Ĉ (backward equation) follows the branch
    lin = LinearAction(fr.problem)
    Cm = fr.branches[2].C
    Chm = lin.chat(lin.point(Cm))
    np.testing.assert_allclose(Cm[odd], -fr.C_sites[odd], atol=1e-12)
    np.testing.assert_allclose(Chm[odd], -Chr[odd], atol=1e-10)
    np.testing.assert_allclose(Chm[~odd], Chr[~odd], atol=1e-10)


def test_action_ordering_and_continuity_of_the_transition():
    """13.1 #5 and 13.2: S_RNN >= S_DNN, equal below y_c, strictly larger above; order parameter ~ sqrt(y - y_c)."""
    T, g, kappa = 3, 1.1, 0.7
    yc = closed_form_threshold(rnn(T, g=g), X1, kappa=kappa)
    for y, strict in ((0.9 * yc, False), (1.3 * yc, True)):
        a_r = feature_learning(rnn(T, g=g), X1, endpoint(T, y), kappa=kappa).action
        a_d = feature_learning(dnn(T, g=g), X1, endpoint(T, y), kappa=kappa).action
        assert a_r >= a_d - 1e-12
        assert (a_r - a_d > 1e-6) == strict
    eps = np.array([1e-4, 4e-4, 1.6e-3])
    order = [feature_learning(rnn(T, g=g), X1, endpoint(T, yc * (1 + e)), kappa=kappa).order_parameter() for e in eps]
    slope = np.polyfit(np.log(eps), np.log(order), 1)[0]
    assert slope == pytest.approx(0.5, abs=0.03)
    # no jump of the action at y_c
    a_below = feature_learning(rnn(T, g=g), X1, endpoint(T, yc * (1 - 1e-4)), kappa=kappa).action
    a_above = feature_learning(rnn(T, g=g), X1, endpoint(T, yc * (1 + 1e-4)), kappa=kappa).action
    assert abs(a_above - a_below) < 1e-3


@pytest.mark.parametrize("T,g,g_in,sigma_v,kappa", [(4, 0.8, 1.2, 1.5, 0.5), (5, 1.2, 0.7, 0.8, 2.0)])
def test_scans_bracket_the_closed_form_threshold(T, g, g_in, sigma_v, kappa):
    net = rnn(T, g=g, g_in=g_in, sigma_v=sigma_v)
    yc = closed_form_threshold(net, X1, kappa=kappa)
    assert feature_learning(net, X1, endpoint(T, 0.99 * yc), kappa=kappa).phase == "symmetric"
    assert feature_learning(net, X1, endpoint(T, 1.01 * yc), kappa=kappa).phase == "broken"


def test_threshold_decreases_with_T_at_g1():
    ycs = [critical_signal(rnn(T), X1, endpoint(T, 1.0)) for T in (3, 4, 6)]
    assert ycs[0] > ycs[1] > ycs[2]


def test_orthonormal_patterns_onset_depends_only_on_norm():
    rng = np.random.default_rng(5)
    X = np.linalg.qr(rng.standard_normal((4, 3)))[0].T * 2.0  # orthonormal with |x|²/D = 1
    Y = endpoint(4, rng.standard_normal(3), P=3)
    yc = closed_form_threshold(rnn(4), X, Y)
    for s, phase in ((0.98, "symmetric"), (1.02, "broken")):
        fl = feature_learning(rnn(4), X, Y * s * yc / np.linalg.norm(Y))
        assert fl.phase == phase


def test_learned_eigenvalue_and_outlier():
    """Sec. 8: learned eigenvalue 0 in the symmetric phase, grows from 0 above y_c; outlier only once |λ| > g."""
    T = 3
    yc = closed_form_threshold(rnn(T), X1)
    lam = lambda y: np.abs(feature_learning(rnn(T), X1, endpoint(T, y)).learned_eigenvalues()).max()
    assert lam(0.95 * yc) < 1e-9
    small, large = lam(1.05 * yc), lam(12.0)
    assert 0 < small < 0.5 < large
    assert feature_learning(rnn(T), X1, endpoint(T, 1.05 * yc)).outliers().size == 0
    fl = feature_learning(rnn(T), X1, endpoint(T, 12.0))
    assert fl.outliers().size >= 1 and np.all(np.abs(fl.outliers()) > 1.0)
    # the DNN's per-layer learned parts are nilpotent: no outlier at any signal
    fd = feature_learning(dnn(T), X1, endpoint(T, 12.0))
    assert np.abs(fd.learned_eigenvalues()).max() < 1e-9


def test_sequential_reference_table():
    """13.1 #6: T = 6, supervised t in {1, 2, 5, 6}, y_t = 1."""
    sup = np.array([1, 1, 0, 0, 1, 1], bool)
    Y = np.ones((1, 6))
    f_r = feature_learning(rnn(6), X1, Y, supervised=sup).predict()[0]
    f_d = feature_learning(dnn(6), X1, Y, supervised=sup).predict()[0]
    np.testing.assert_allclose(f_r, [0.674, 0.772, 0.569, 0.677, 0.925, 0.962], atol=6e-4)
    np.testing.assert_allclose(f_d, [0.630, 0.714, 0, 0, 0.835, 0.851], atol=6e-4)
    assert f_d[2] == 0.0 and f_d[3] == 0.0  # exactly the prior mean


def test_sinusoidal_teacher_rnn_interpolates_and_improves_with_P():
    T, D, omega = 8, 16, 2 * np.pi / 6
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, D))
    Xall = rng.standard_normal((6, D))
    held = np.array([0, 0, 0, 1, 1, 0, 0, 0], bool)
    t = np.arange(1, T + 1)
    errs = {}
    for P in (1, 6):
        X = Xall[:P]
        Y = np.outer(X @ a, np.cos(omega * t)) / np.sqrt(D) + np.outer(X @ b, np.sin(omega * t)) / np.sqrt(D)
        sup = np.broadcast_to(~held, (P, T))
        for net, ro in ((rnn(T), "shared"), (dnn(T), "untied")):
            f = feature_learning(net, X, Y, supervised=sup, kappa=0.1, readout=ro).predict()
            errs[net.arch, P] = np.mean((f[:, held] - Y[:, held]) ** 2) / np.mean(Y[:, held] ** 2)
    assert errs["dnn", 1] == pytest.approx(1.0) and errs["dnn", 6] == pytest.approx(1.0)
    assert errs["rnn", 6] < errs["rnn", 1] < 0.5


def test_signal_scan_follows_both_branches():
    net = rnn(3)
    scan = signal_scan(net, X1, endpoint(3, 1.0), np.linspace(0.5, 5.0, 10))
    yc = np.sqrt(81 / 8)
    assert all((b is None) == (y < yc) for y, b in zip(scan.y, scan.broken))
    sel = scan.selected()
    assert all(s.action >= sym.action - 1e-12 for s, sym in zip(sel, scan.symmetric))


def test_largest_problem_size():
    """T·P = 200: DNN (symmetric sector, block solver) and an RNN with many patterns."""
    rng = np.random.default_rng(6)
    P = 20
    X = np.linalg.qr(rng.standard_normal((P, P)))[0] * np.sqrt(P)
    Y = endpoint(10, rng.standard_normal(P), P=P)
    Y *= 2.0 / np.linalg.norm(Y)
    fd = feature_learning(dnn(10), X, Y)
    fr = feature_learning(rnn(10), X, Y)
    assert fd.problem.n == fr.problem.n == 200
    assert fd.fixed_point_residual() < 1e-8 and fr.fixed_point_residual() < 1e-8
    assert fr.phase == "broken" and fr.action > fd.action


@pytest.mark.parametrize("kwargs,match", [
    ({"X": np.ones((1, 1, 1))}, "X must have shape"),
    ({"Y": np.zeros((1, 2))}, "Y must have shape"),
    ({"Y": np.array([[0.0, 0.0, np.nan]])}, "Y contains non-finite"),
    ({"supervised": np.ones(2, bool)}, "supervised must have shape"),
    ({"supervised": np.zeros(3, bool)}, "supervised selects no site"),
    ({"kappa": 0.0}, "kappa"),
    ({"kappa": np.inf}, "kappa"),
    ({"X": np.array([[np.nan]])}, "X contains non-finite"),
    ({"readout": "tied"}, "readout"),
])
def test_bad_input_names_the_argument(kwargs, match):
    args = {"X": X1, "Y": endpoint(3, 1.0), "supervised": None, "kappa": 1.0, "readout": None, **kwargs}
    with pytest.raises(SpecError, match=match):
        feature_learning(rnn(3), args["X"], args["Y"], supervised=args["supervised"], kappa=args["kappa"],
                         readout=args["readout"])


def test_unsupported_settings_raise_clearly():
    with pytest.raises(SpecError, match="mean_field"):
        feature_learning(sf.RNN(3, phi="linear", bias="none"), X1, endpoint(3, 1.0))
    with pytest.raises(SpecError, match="no threshold"):
        critical_signal(rnn(6), X1, np.ones((1, 6)), supervised=np.array([1, 1, 0, 0, 1, 1], bool))


def test_solvers_raise_with_residual_history():
    with pytest.raises(ConvergenceError) as err:  # unbounded: no maximum
        maximize(lambda x: float(x @ x), lambda x: 2 * x, lambda x, v: 2 * v, np.ones(3), maxiter=20)
    assert len(err.value.history) > 1
    def never(s, x):
        raise ConvergenceError("no", [1.0, 0.5])
    with pytest.raises(ConvergenceError, match="no convergence"):
        continue_in(never, 0.0, np.zeros(2), [1.0], min_step=0.2)


def test_reproduce_feature_learning_quick_writes_figure_and_json(tmp_path):
    import json

    from symfield.cli import main
    assert main(["reproduce", "feature-learning", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "feature_learning.json").read_text())
    assert (tmp_path / "feature_learning.png").stat().st_size > 10000
    assert data["threshold_vs_T"]["max_rel_diff"] < 1e-6
    assert data["sequential"]["table"]["dnn"][2] == 0.0
    o = data["order_parameter"]
    assert max(o["dnn"]["theory_corr"]) < 1e-6 < max(o["rnn"]["theory_corr"])


def test_fold_of_the_symmetric_branch_selects_the_larger_action():
    """κ ≫ σ_v²c_T (g = 0.5, κ = 10, T = 4): y²(ρ) is not monotone, the symmetric branch folds; in the
    coexistence region the branch of larger action is reported, and the closed form warns."""
    net = rnn(4, g=0.5)
    with pytest.warns(UserWarning, match="folds"):
        closed_form_threshold(net, X1, kappa=10.0)
    fl = feature_learning(net, X1, endpoint(4, 20.0), kappa=10.0)
    names = [b.name for b in fl.branches]
    assert "symmetric-fold" in names
    lower = fl.branches[0]
    assert fl.action > lower.action + 1.0 and fl.action == max(b.action for b in fl.branches)
    scan = signal_scan(net, X1, endpoint(4, 1.0), np.linspace(2.0, 40.0, 20), kappa=10.0)
    i = int(np.argmin(np.abs(scan.y - 20.0)))
    assert scan.selected()[i].action > lower.action + 1.0


def test_continuation_records_the_jump_at_a_fold():
    """Generic solvers: maximise f = -x⁴/4 + x²/2 + s x; the left maximum disappears at s = 2/(3√3)."""
    def solve(s, x):
        r = maximize(lambda z: float(-z[0] ** 4 / 4 + z[0] ** 2 / 2 + s * z[0]),
                     lambda z: np.array([-z[0] ** 3 + z[0] + s]), lambda z, v: (1 - 3 * z[0] ** 2) * v,
                     np.asarray(x, float), gtol=1e-12)
        return r.x, r
    path = continue_in(solve, -1.0, np.array([-1.3247]), list(np.linspace(-0.9, 1.0, 20)), min_step=1e-3)
    assert len(path.jumps) == 1 and path.jumps[0] == pytest.approx(2 / (3 * np.sqrt(3)), abs=2e-3)
    assert path.x[-1][0] > 1.0  # on the right branch after the jump
