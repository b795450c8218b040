"""The saddle indicator of the nonlinear solver without a symmetric sector: an odd number of real eigenvalues of the
forward–backward map's Jacobian above 1 (sign det(1 − J) = (−1)^u, u the unstable directions of S over C;
``NonlinearSolver.unstable_modes``), checked against the dense Hessian of the linear action (spectrum.top_eigen) on the
sequential task of benchmarks/bench_fl_scale.py at T = 4, P = 7, where the continued branch is a saddle (top Hessian
eigenvalue +0.032) and the two broken branches are maxima, one with a complex pair of J right of 1."""
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse.linalg import LinearOperator, eigs

import symfield as sf
from symfield.theory.feature_learning import nonlinear as nl
from symfield.theory.feature_learning.problem import problem
from symfield.theory.feature_learning.spectrum import top_eigen
from symfield.theory.feature_learning.tilted_quadrature import GaussianMeasure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_fl_scale import sequential_problem  # noqa: E402


@pytest.fixture(scope="module")
def case():
    net, X, Y, S, kappa = sequential_problem(4, 7, "rnn")
    return problem(net, X, Y, S, kappa, None), sf.feature_learning(net, X, Y, supervised=S, kappa=kappa)


def _point(fp, C):
    """(C, Ĉ) of linear φ: Ĉ = Σ⁻¹ − C⁻¹ (the forward equation C = (Σ⁻¹ − Ĉ)⁻¹)."""
    p = fp.act.point(C)
    return np.stack([C, p.Sinv - p.Cinv])


def test_odd_count_of_real_eigenvalues_above_one_marks_the_saddles_of_the_action(case):
    pr, fl = case
    sv = nl.NonlinearSolver(pr)
    fp = nl.FixedPoint(pr, 1.0, GaussianMeasure())
    flags = {}
    for b in fl.branches:
        x = _point(fp, b.C)
        assert np.abs(fp.evaluate(x)[0] - x).max() < 1e-9  # a fixed point of the map
        modes, saddle = sv.unstable_modes(fp, x)
        flags[b.name] = (saddle, len(modes))
        assert saddle == (top_eigen(fp.act, b.C)[0] > 0), b.name
    assert flags["continued"] == (True, 1)
    # a maximum whose J has a complex pair right of 1: "some eigenvalue beyond 1" would call it unstable
    x = _point(fp, fl.branches[1].C)
    op = nl.jacobian_operator(fp, x)
    J = LinearOperator(op.shape, matvec=lambda v: v - op.matvec(v), dtype=float)
    top = eigs(J, k=2, which="LR", v0=np.ones(x.size), return_eigenvectors=False)
    assert top.real.max() > 1.2 and np.abs(top.imag).min() > 0.5 and flags["broken+"] == (False, 0)


def test_the_nonlinear_path_with_linear_phi_leaves_the_saddle_for_the_maximum(case):
    pr, fl = case
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "the branch kept may be a saddle" warning
        nf = nl.feature_learning(pr)
    assert fl.selected.name == "broken+" and nf.path.switches  # the continuation switched branch on the way
    assert np.abs(nf.selected.C - fl.selected.C).max() < 1e-8
    assert abs(nf.action - fl.action) < 1e-9


def _known_spectrum(monkeypatch, diag):
    """nl.jacobian_operator replaced by 1 − diag(diag) (a map Jacobian with the given eigenvalues)."""
    d = np.asarray(diag, float)
    monkeypatch.setattr(nl, "jacobian_operator", lambda fp, x, evaluated=None: LinearOperator(
        (d.size, d.size), matvec=lambda v: np.ravel(v) - d * np.ravel(v), dtype=float))


def test_the_saddle_check_counts_real_eigenvalues_and_is_capped_with_a_warning(case, monkeypatch):
    """ARPACK path (x.size > DENSE_JACOBIAN) on Jacobians of known spectrum: three real eigenvalues above 1 are
    found (odd: a saddle); a cluster of 40 above 1 (what too few Monte Carlo points give at T·P = 200) stops the
    doubling of k at UNSTABLE_MAX_K with a warning and no modes, instead of doubling on (> 8 min at T·P = 200)."""
    pr, _ = case
    sv = nl.NonlinearSolver(pr)
    fp = nl.FixedPoint(pr, 1.0, GaussianMeasure())
    x = np.zeros((2, 15, 15))  # 450 unknowns > DENSE_JACOBIAN
    rest = np.linspace(-0.5, 0.9, x.size)
    _known_spectrum(monkeypatch, np.concatenate([[1.5, 1.3, 1.2], rest[3:]]))
    modes, saddle = sv.unstable_modes(fp, x)
    assert [round(m[0], 6) for m in modes] == [1.5, 1.3, 1.2] and saddle
    _known_spectrum(monkeypatch, np.concatenate([np.linspace(2.3, 2.5, 40), rest[40:]]))
    with pytest.warns(UserWarning, match="undecided"):
        modes, saddle = sv.unstable_modes(fp, x)
    assert modes == [] and not saddle


def test_too_few_points_for_the_full_measure_warn():
    """The full T·P-dimensional Monte Carlo measure with fewer than MC_JACOBIAN_FACTOR × n(n+1)/2 points warns
    (its sampled Jacobian is noise-dominated); enough points do not."""
    net = sf.RNN(5, phi="erf", bias="none", scaling="mean_field")
    pr = problem(net, np.eye(2), np.ones((2, 5)), np.array([[1, 1, 0, 1, 1]] * 2, bool), 1.0, None)
    need = nl.MC_JACOBIAN_FACTOR * 10 * 11 // 2
    with pytest.warns(UserWarning, match="fewer than"):
        assert not nl.NonlinearSolver(pr, samples=need - 1).check_samples()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert nl.NonlinearSolver(pr, samples=need).check_samples()


def test_too_few_points_skip_the_saddle_check(monkeypatch):
    """With fewer points than MC_JACOBIAN_FACTOR × n(n+1)/2 the continuation does not run the saddle check (its
    answer would be noise: minutes of ARPACK at T·P = 200); with enough points it does, once per step."""
    net = sf.RNN(5, phi="erf", bias="none", scaling="mean_field")
    pr = problem(net, np.eye(2), 0.5 * np.ones((2, 5)), np.array([[1, 1, 0, 1, 1]] * 2, bool), 1.0, None)
    calls = []
    monkeypatch.setattr(nl.NonlinearSolver, "unstable_modes", lambda self, fp, x, k=6: calls.append(1) or ([], False))
    need = nl.MC_JACOBIAN_FACTOR * 10 * 11 // 2
    with pytest.warns(UserWarning, match="not checked for being a saddle"):
        nl.NonlinearSolver(pr, samples=need - 10).symmetric(2)
    assert calls == []
    nl.NonlinearSolver(pr, samples=4 * need).symmetric(2)
    assert len(calls) == 2


def test_jacobian_benchmark_quick_mode_converges_in_the_number_of_points():
    """benchmarks/bench_fl_mc_jacobian.py at T = 4, P = 3 (78 entries of ⟨φφᵀ⟩): with 100 and 400 points per entry the
    top of the frozen-sample Jacobian's spectrum agrees to 0.03 (it is the theory's there; the inflation with too few
    points per entry is measured at T·P = 40 and 200 by the full run, see its docstring)."""
    from bench_fl_mc_jacobian import main
    rows = main(["--size", "4x3", "--points", "8000,32000", "--k", "4"])
    tops = [row["top"][0].real for row in rows]
    assert abs(tops[0] - tops[1]) < 0.03
    assert all(row["ratio"] > 100 for row in rows)
