"""A continued branch (no symmetric sector) that has become a saddle of S is left along its unstable direction:
the sequential task of benchmarks/bench_fl_scale.py at T = 4, P = 7 (top Hessian eigenvalue +0.032 there)."""
import sys
from pathlib import Path

import numpy as np
import pytest

import symfield as sf
from symfield.theory.feature_learning import branches as br
from symfield.theory.feature_learning.solver import maximise
from symfield.theory.feature_learning.spectrum import top_eigen

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_fl_scale import sequential_problem  # noqa: E402


@pytest.fixture(scope="module")
def saddle_case():
    net, X, Y, S, kappa = sequential_problem(4, 7, "rnn")
    return net, X, Y, S, kappa, sf.feature_learning(net, X, Y, supervised=S, kappa=kappa)


def test_selected_branch_is_a_maximum_above_the_saddle(saddle_case):
    *_, fl = saddle_case
    continued = next(b for b in fl.branches if b.name == "continued")
    act = fl.selected._act
    assert top_eigen(act, continued.C)[0] > 0.01  # the continued branch is a saddle ...
    assert fl.selected is not continued and fl.selected.action > continued.action + 1e-3
    assert top_eigen(act, fl.selected.C)[0] < 0  # ... the reported one a maximum (dense Hessian)
    assert fl.stable and fl.fixed_point_residual() < 1e-7  # and a solution of C = (Σ⁻¹ − Ĉ)⁻¹


def test_no_random_restart_finds_a_larger_action(saddle_case):
    *_, fl = saddle_case
    act, C = fl.selected._act, fl.selected.C
    rng = np.random.default_rng(0)
    for _ in range(4):
        A = rng.standard_normal(C.shape)
        start = C + 0.3 * np.abs(C).max() * (A + A.T) / np.linalg.norm(A + A.T) * np.sqrt(C.shape[0])
        try:
            Cr, _ = maximise(act, start, gtol=1e-9, label="restart")
        except Exception:  # a start outside the domain: skipped
            continue
        assert act.value(Cr) <= fl.action + 1e-8 * (1 + abs(fl.action))


def test_above_the_climb_size_the_subspace_solver_leaves_the_saddle(saddle_case, monkeypatch):
    """Above CLIMB_MAX_N the climb runs in the subspace solver from the top eigenvector of the inertia route
    (reduced_top.top_direction): the same branch as the dense climb, a maximum of the dense Hessian."""
    net, X, Y, S, kappa, fl = saddle_case
    monkeypatch.setattr(br, "CLIMB_MAX_N", 10)
    sub = sf.feature_learning(net, X, Y, supervised=S, kappa=kappa)
    assert sub.selected.reduced is not None and sub.selected.name.startswith("broken")
    assert sub.action == pytest.approx(fl.action, abs=1e-9)
    assert np.abs(sub.C_sites - fl.C_sites).max() <= 1e-7 * np.abs(fl.C_sites).max()
    assert sub.stable and top_eigen(sub.selected._act, sub.C_sites)[0] < 0
    assert sub.fixed_point_residual() < 1e-7 and sub.error < 1e-7


def test_without_the_subspace_form_of_the_top_eigenvector_the_saddle_is_reported(saddle_case, monkeypatch):
    from symfield.theory.feature_learning import reduced_top
    net, X, Y, S, kappa, _ = saddle_case
    monkeypatch.setattr(br, "CLIMB_MAX_N", 10)
    monkeypatch.setattr(reduced_top, "top_direction", lambda *a, **k: None)
    with pytest.warns(RuntimeWarning, match="saddle"):
        fl = sf.feature_learning(net, X, Y, supervised=S, kappa=kappa)
    assert not fl.stable


def test_scan_checks_every_scale_and_leaves_the_saddle_as_feature_learning_does(saddle_case):
    """signal_scan without a symmetric sector: the continued branch's stability is checked at every scale (inertia
    certificate at the subspace points) against the dense Hessian; where it is a saddle the scan's selected branch
    is a maximum (dense Hessian), and at s = 1 it is feature_learning's branch."""
    net, X, Y, S, kappa, fl = saddle_case
    scales = np.array([0.5, 0.6, 1.0])  # the bifurcation lies between 0.5 and 0.6
    scan = sf.theory.feature_learning.signal_scan(net, X, Y, scales, supervised=S, kappa=kappa)
    assert all(cont.reduced is not None for cont in scan.symmetric)  # subspace points: stable from the certificate
    for cont in scan.symmetric[:2]:  # the dense Hessian (4 s each), independent of the certificate
        assert cont.stable == (top_eigen(cont._act, cont.C)[0] <= 1e-9)
    sel = scan.selected()[1]
    assert sel is scan.broken[1] and top_eigen(sel._act, sel.C)[0] < 0  # left to a maximum
    assert scan.symmetric[0].stable and scan.broken[0] is None  # below the bifurcation: stable, nothing climbed
    assert not scan.symmetric[-1].stable and scan.threshold_scale <= 1.0
    assert scan.selected()[-1].action == pytest.approx(fl.action, abs=1e-9)
    assert np.abs(scan.selected()[-1].C - fl.selected.C).max() <= 1e-7 * np.abs(fl.selected.C).max()


def test_scan_above_the_climb_size_warns_once_and_flags_the_saddles(saddle_case, monkeypatch):
    from symfield.theory.feature_learning import reduced_top
    net, X, Y, S, kappa, _ = saddle_case
    monkeypatch.setattr(br, "CLIMB_MAX_N", 10)
    monkeypatch.setattr(reduced_top, "top_direction", lambda *a, **k: None)
    with pytest.warns(RuntimeWarning, match="saddle") as rec:
        scan = sf.theory.feature_learning.signal_scan(net, X, Y, [0.8, 1.0], supervised=S, kappa=kappa)
    assert sum("saddle" in str(w.message) for w in rec) == 1
    assert scan.broken == [None, None] and not any(b.stable for b in scan.symmetric)
