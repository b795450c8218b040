"""The linear μP solver after the scale work against the kept reference solver (method='reference') and the
closed forms; inputs with an ill-conditioned input kernel (singular ones: test_fl_singular_inputs.py); the
progress display."""
import numpy as np
import pytest

import symfield as sf
from symfield.solve import ConvergenceError
from symfield.theory.feature_learning import closed_form_threshold, feature_learning, signal_scan

from linear_mup import X1, dnn, endpoint, rnn


def _orthonormal(P, seed=0):
    return np.linalg.qr(np.random.default_rng(seed).standard_normal((P, P)))[0] * np.sqrt(P)


def _same(a, b, tol=1e-8):
    assert [br.name for br in a.branches] == [br.name for br in b.branches]
    assert a.action == pytest.approx(b.action, abs=1e-10)
    assert np.abs(a.C_sites - b.C_sites).max() <= tol * np.abs(b.C_sites).max()
    assert a.s_branch == b.s_branch


@pytest.mark.parametrize("net,X,Y,sup", [
    (rnn(3), X1, endpoint(3, 4.5), None),
    (rnn(4, g=0.9), X1, endpoint(4, 3.0), None),
    (rnn(6), _orthonormal(3), endpoint(6, np.array([1.5, -2.0, 0.7]), P=3), None),  # the benchmark task, small
    (dnn(5), _orthonormal(3), endpoint(5, np.array([1.5, -2.0, 0.7]), P=3), None),
    (rnn(6), X1, np.ones((1, 6)), np.array([1, 1, 0, 0, 1, 1], bool)),
])
def test_default_method_equals_the_reference_solver(net, X, Y, sup):
    fast = feature_learning(net, X, Y, supervised=sup)
    ref = feature_learning(net, X, Y, supervised=sup, method="reference")
    _same(fast, ref)
    assert fast.fixed_point_residual() < 1e-8


def test_scan_equals_the_reference_and_brackets_the_closed_form_threshold():
    net, Y = rnn(4), endpoint(4, 1.0)
    yc = closed_form_threshold(net, X1)
    scales = np.linspace(0.5, 1.5, 12) * yc
    fast, ref = signal_scan(net, X1, Y, scales), signal_scan(net, X1, Y, scales, method="reference")
    assert fast.threshold_scale == ref.threshold_scale
    i = list(scales).index(fast.threshold_scale)
    assert scales[i - 1] < yc <= scales[i]
    for a, b in zip(fast.selected(), ref.selected()):
        assert a.action == pytest.approx(b.action, abs=1e-10)
        np.testing.assert_allclose(a.C, b.C, atol=1e-8 * np.abs(b.C).max())


def test_ill_conditioned_inputs_converge_or_name_the_condition_number():
    rng = np.random.default_rng(0)
    P = 4
    Q1, Q2 = (np.linalg.qr(rng.standard_normal((P, P)))[0] for _ in range(2))
    Y = endpoint(3, rng.standard_normal(P) * 2, P=P)
    X5 = Q1 @ np.diag(2 * np.geomspace(1, 10 ** -2.5, P)) @ Q2  # condition number 1e5: converges
    assert feature_learning(dnn(3), X5, Y).fixed_point_residual() < 1e-8
    X9 = Q1 @ np.diag(2 * np.geomspace(1, 10 ** -4.5, P)) @ Q2  # 1e9: round-off above gtol
    with pytest.raises(ConvergenceError, match=r"condition number 1e\+09.*gtol"):
        feature_learning(dnn(3), X9, Y)
    fl = feature_learning(dnn(3), X9, Y, gtol=1e-6)  # the hint works
    assert fl.fixed_point_residual() < 1e-6


def test_progress_lines_on_a_log_and_silence_when_off(capsys):
    feature_learning(rnn(3), X1, endpoint(3, 2.0), progress=True)
    assert "feature_learning" in capsys.readouterr().err
    feature_learning(rnn(3), X1, endpoint(3, 2.0), progress=False)
    assert capsys.readouterr().err == ""


def _closed_form_symmetric(T, y):
    """C* = diag(c_t) of the endpoint task below threshold (g = σ_u = σ_v = κ = 1), c_t = ρ^t with ρ the root
    of y²(ρ) = y² (closed.symmetric_solution, derived symbolically)."""
    from scipy.optimize import brentq
    from sympy import lambdify
    from symfield.theory.feature_learning import closed
    f = lambdify(closed.rho, closed.symmetric_solution(T).subs({closed.g: 1, closed.su: 1, closed.sv: 1,
                                                               closed.kappa: 1}))
    r = brentq(lambda x: f(x) - y ** 2, 1.0, 10.0, xtol=1e-15, rtol=1e-15)
    return np.diag(r ** np.arange(1, T + 1))


@pytest.mark.parametrize("offlag", [False, True])
def test_error_recovers_a_known_displacement_of_the_closed_form_solution(offlag):
    from symfield.theory.feature_learning.action import LinearAction
    from symfield.theory.feature_learning.problem import problem
    from symfield.theory.feature_learning.result import Branch, FeatureLearning
    T, y = 4, 1.0  # below the threshold y_c = 1.74 of T = 4: the symmetric branch is the maximum
    pr = problem(rnn(T), X1, endpoint(T, y))
    act = LinearAction(pr)
    Cstar = _closed_form_symmetric(T, y)
    exact = FeatureLearning(pr, act, [b := Branch("exact", Cstar, act.value(Cstar), act)], b)
    assert exact.error < 1e-12
    rng = np.random.default_rng(1)
    D = rng.standard_normal((T, T))
    D = D + D.T if offlag else np.diag(np.diag(D))
    for eps in (1e-4, 1e-6):
        C = Cstar + eps * D
        fl = FeatureLearning(pr, act, [b := Branch("displaced", C, act.value(C), act)], b)
        true = eps * np.abs(D).max() / np.abs(C).max()
        assert fl.error == pytest.approx(true, rel=1e-3)


def test_error_of_a_loose_solve_matches_its_distance_to_a_tight_one():
    net, sup = rnn(6), np.array([1, 1, 0, 0, 1, 1], bool)  # no symmetric sector: the full Hessian
    tight = feature_learning(net, X1, np.ones((1, 6)), supervised=sup, gtol=1e-13)
    assert tight.error < 1e-11
    for gtol in (1e-3, 1e-5):
        fl = feature_learning(net, X1, np.ones((1, 6)), supervised=sup, gtol=gtol)
        true = np.abs(fl.C_sites - tight.C_sites).max() / np.abs(tight.C_sites).max()
        assert true > 1e-9  # the loose solve is measurably off
        assert fl.error == pytest.approx(true, rel=0.02)


def test_benchmark_properties_quick_mode(tmp_path, monkeypatch):
    """benchmarks/bench_fl_scale.py --properties at a small size: every property timed, the replaced
    implementations (stable, top_eigenvalue: Lanczos; learned eigenvalues: dense eig) agree."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import bench_fl_scale
    # to_xarray: its first call imports xarray (10-20 s on the shared machine), timed by the full benchmark
    monkeypatch.setattr(bench_fl_scale, "PROPERTIES",
                        {k: v for k, v in bench_fl_scale.PROPERTIES.items() if k != "to_xarray"})
    out = bench_fl_scale.main(["--properties", "4x7", "--cap", "60", "--out", str(tmp_path / "p.json")])
    props = out["properties"]["T4-P7"]
    assert all(np.isfinite(props[name]["seconds"]) for name in bench_fl_scale.PROPERTIES)
    assert props["stable (reference)"]["agree"]
    assert props["top_eigenvalue (reference)"]["abs_diff"] < 1e-8  # against Lanczos (tol 1e-10)
    assert props["learned_eigenvalues (reference)"]["max_diff_top"] < 1e-10
    assert (tmp_path / "p.json").exists()


@pytest.mark.parametrize("variant", ["grouped", "singular"])
def test_benchmark_properties_quick_mode_of_the_grouped_and_singular_tasks(tmp_path, variant):
    """bench_fl_scale.py --properties --variant grouped|singular --only stable,top_eigenvalue at a small size: the
    inertia route against the Lanczos of the whitened Hessian (the implementations it replaces at scale)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import bench_fl_scale
    out = bench_fl_scale.main(["--properties", "5x6", "--variant", variant, "--only", "stable,top_eigenvalue",
                               "--cap", "60", "--out", str(tmp_path / "p.json")])
    props = out["properties"]["T5-P6"]
    assert props["variant"] == variant and set(props) == {"variant", "solve", "stable", "stable (reference)",
                                                           "top_eigenvalue", "top_eigenvalue (reference)"}
    assert props["stable (reference)"]["agree"]
    assert props["top_eigenvalue (reference)"]["abs_diff"] < 1e-8


def test_benchmark_climb_quick_mode(tmp_path, monkeypatch):
    """bench_fl_scale.py --climb at T = 4, P = 7 with CLIMB_MAX_N lowered to 10: the saddle left in the subspace
    solver and by the dense maximiser reach the same branch."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import bench_fl_scale
    from symfield.theory.feature_learning import branches
    monkeypatch.setattr(branches, "CLIMB_MAX_N", 10)
    out = bench_fl_scale.main(["--climb", "4x7", "--cap", "60", "--out", str(tmp_path / "c.json")])
    row = out["climb"]["T4-P7"]
    assert row["subspace"]["selected"].startswith("broken") and row["subspace"]["stable"]
    assert row["dense"]["max_rel_diff_C"] < 1e-7
    assert branches.CLIMB_MAX_N == 10
