"""The low-rank subspace solver of the linear μP action (symfield/theory/feature_learning/reduced.py) against the
dense action of verified matrix rules (LinearAction), finite differences, and the reference solver."""
import numpy as np
import pytest

import symfield as sf
from symfield.theory.feature_learning import feature_learning
from symfield.theory.feature_learning.action import LinearAction, gp_kernel
from symfield.theory.feature_learning.problem import problem
from symfield.theory.feature_learning import reduced

from linear_mup import check_gradient_and_hessian, continued


def sequential(T, P, seed=0, **kw):
    """Sequential task: P orthonormal inputs, sinusoidal targets, steps ⌊T/3⌋, ⌊T/3⌋+1 held out, κ = 0.5."""
    rng = np.random.default_rng(seed)
    X = np.linalg.qr(rng.standard_normal((P, P)))[0].T * np.sqrt(P)
    a, b = rng.standard_normal((2, P))
    t = np.arange(1, T + 1)
    Y = (np.outer(X @ a, np.cos(np.pi * t / 3)) + np.outer(X @ b, np.sin(np.pi * t / 3))) / np.sqrt(P)
    sup = np.ones((P, T), bool)
    sup[:, T // 3:T // 3 + 2] = False
    net = sf.RNN(T, phi="linear", bias="none", scaling="mean_field", **kw)
    return net, X, Y, sup


NETS = {"rnn": {}, "leaky": {"leak": 0.5, "g": 0.9}, "input-every-step": {"input": "every"}}


def _reduced_action_is_the_dense_action(pr):
    """On the subspace grown from the directions at C₀, at a random C = C₀ + Φ N Φᵀ: the reduced action's value and
    gradient against the dense LinearAction, its Hessian against finite differences.  Returns (red, sub, N, G)."""
    assert reduced.applicable(pr)
    red = reduced.Reduction(pr)
    sub = red.subspace(red.directions(None, None, 1.0))
    assert sub.R < pr.n
    rng = np.random.default_rng(1)
    N = 0.05 * rng.standard_normal((sub.R, sub.R))
    N = N + N.T
    c = np.eye(sub.R) + N
    lin, ra = LinearAction(pr), reduced.ReducedAction(sub, 1.0)
    C = red.dense(sub, N)
    assert ra.value(c) == pytest.approx(lin.value(C), rel=1e-12)
    G = lin.grad(C)
    np.testing.assert_allclose(ra.grad(c), sub.Phi.T @ G @ sub.Phi, atol=1e-12 * np.abs(G).max())
    check_gradient_and_hessian(ra, c, rng)
    return red, sub, N, G


@pytest.mark.parametrize("kw", NETS.values(), ids=NETS.keys())
def test_reduced_action_is_the_dense_action_on_the_subspace(kw):
    net, X, Y, sup = sequential(5, 3, **kw)
    red, sub, N, G = _reduced_action_is_the_dense_action(problem(net, X, Y, sup, 0.5))
    C = red.dense(sub, N)
    L = np.linalg.cholesky(C)
    assert red.grad_norm(sub, N, 1.0) == pytest.approx(np.linalg.norm(L.T @ G @ L), rel=1e-9)


def test_saddle_point_lies_in_the_krylov_space_of_the_theory():
    """rank Ĉ <= T (range in span (𝔅ᵀ)^k ê) and range(C − C_GP) in the 𝔅-closure of Σ V, at the reference
    solver's dense solution."""
    T, P = 6, 4
    net, X, Y, sup = sequential(T, P)
    fl = feature_learning(net, X, Y, supervised=sup, kappa=0.5, method="reference", gtol=1e-12)
    pr = fl.problem
    lin = LinearAction(pr)
    p = lin.point(fl.C_sites)
    lam = np.abs(np.linalg.eigvalsh(lin.chat(p)))
    assert np.sum(lam > 1e-8 * lam.max()) == T
    red = reduced.Reduction(pr)
    sub, N = red.state(fl.C_sites)  # range of C − C₀ and its 𝔅-closure
    K = red.subspace(red.directions(sub, N, 1.0))  # 𝒦 at the solution
    assert K.R <= T * T
    D = sla_whiten(red, fl.C_sites - gp_kernel(pr))
    resid = D - K.U @ (K.U.T @ D)
    assert np.abs(resid).max() < 1e-8 * np.abs(D).max()


def sla_whiten(red, M):
    import scipy.linalg as sla
    return sla.solve_triangular(red.L0, sla.solve_triangular(red.L0, M, lower=True).T, lower=True)


@pytest.mark.parametrize("kw", NETS.values(), ids=NETS.keys())
def test_reduced_solver_equals_the_reference_solver(kw):
    net, X, Y, sup = sequential(6, 4, **kw)
    assert reduced.applicable(problem(net, X, Y, sup, 0.5))
    fast = feature_learning(net, X, Y, supervised=sup, kappa=0.5, gtol=1e-12)
    ref = feature_learning(net, X, Y, supervised=sup, kappa=0.5, method="reference", gtol=1e-12)
    assert fast.action == pytest.approx(ref.action, abs=1e-10)
    assert np.abs(fast.C_sites - ref.C_sites).max() <= 1e-8 * np.abs(ref.C_sites).max()
    assert fast.fixed_point_residual() < 1e-9


def test_reduced_error_estimate_matches_the_distance_to_a_tight_solve():
    net, X, Y, sup = sequential(6, 4)
    tight = feature_learning(net, X, Y, supervised=sup, kappa=0.5, method="reference", gtol=1e-12)
    loose = feature_learning(net, X, Y, supervised=sup, kappa=0.5, gtol=1e-5)
    true = np.abs(loose.C_sites - tight.C_sites).max() / np.abs(tight.C_sites).max()
    assert true > 1e-10
    assert loose.error == pytest.approx(true, rel=0.05)


def test_untied_readouts_and_dependent_inputs_are_reduced():
    net, X, Y, sup = sequential(4, 3)
    assert reduced.applicable(problem(net, X, Y, sup, 0.5, readout="untied"))  # M_out = 1: rank T
    assert reduced.readout_factor(np.array([[1.0, 2.0], [2.0, 1.0]])) is None  # indefinite mask
    pr = problem(net, np.vstack([X[:2], X[:1]]), Y, sup, 0.5)  # a duplicated pattern: on the span of the inputs
    assert reduced.applicable(pr) and reduced.Reduction(pr).m == 2 * 4


@pytest.mark.parametrize("kw", [{"input": "every"}, {"input": "every", "leak": 0.5, "g": 0.9}],
                         ids=["input-every-step", "leaky"])
def test_untied_readout_equals_the_reference_solver(kw):
    """Untied readouts (M_out = Σ_k m_k m_kᵀ of rank T): the reduced action against the dense one on the subspace
    and finite differences, the solution against the reference solver (no symmetric sector: input every step)."""
    net, X, Y, sup = sequential(5, 3, **kw)
    pr = problem(net, X, Y, sup, 0.5, readout="untied")
    red = reduced.Reduction(pr)
    assert red.r == 5
    sub = red.subspace(red.directions(None, None, 1.0))
    rng = np.random.default_rng(1)
    N = 0.05 * rng.standard_normal((sub.R, sub.R))
    N = N + N.T
    lin, ra, C = LinearAction(pr), reduced.ReducedAction(sub, 1.0), red.dense(sub, N)
    assert ra.value(np.eye(sub.R) + N) == pytest.approx(lin.value(C), rel=1e-12)
    check_gradient_and_hessian(ra, np.eye(sub.R) + N, rng)
    fast = continued(feature_learning(net, X, Y, supervised=sup, kappa=0.5, readout="untied", gtol=1e-12))
    ref = feature_learning(net, X, Y, supervised=sup, kappa=0.5, readout="untied", method="reference", gtol=1e-12)
    assert fast.selected.reduced is not None
    assert fast.action == pytest.approx(ref.action, abs=1e-10)
    assert np.abs(fast.C_sites - ref.C_sites).max() <= 1e-8 * np.abs(ref.C_sites).max()
    assert fast.fixed_point_residual() < 1e-9


def test_scan_of_a_sequential_task_equals_the_reference():
    from symfield.theory.feature_learning import signal_scan
    net, X, Y, sup = sequential(4, 2)
    scales = [0.5, 1.0]
    fast = signal_scan(net, X, Y, scales, supervised=sup, kappa=0.5, gtol=1e-12)
    ref = signal_scan(net, X, Y, scales, supervised=sup, kappa=0.5, gtol=1e-12, method="reference")
    for a, b in zip(fast.selected(), ref.selected()):
        assert a.action == pytest.approx(b.action, abs=1e-10)
        assert np.abs(a.C - b.C).max() <= 1e-8 * np.abs(b.C).max()


def _grouped_or_singular(case, T=4, P=3):
    net, X, Y, sup = sequential(T, P)
    if case == "grouped":  # W of steps 1..2 and W of step 3: two W groups
        net = sf.NetworkSpec(T=T, phi="linear", bias="none", scaling="mean_field",
                             share={"W": [[1, 2], [3]], "U": "shared", "v": "shared"})
    else:  # the third pattern is the sum of the first two: a singular input kernel on D = P inputs
        X = X.copy()
        X[2] = (X[0] + X[1]) / np.sqrt(2)
    return net, X, Y, sup


GROUPED = {"two-runs": [[1, 2], [3]], "alternating": [[1, 3], [2]], "fresh-per-step": [[1], [2], [3]]}


@pytest.mark.parametrize("groups", GROUPED.values(), ids=GROUPED.keys())
def test_grouped_w_in_the_subspace_solver_equals_the_dense_action_and_the_reference_solver(groups):
    """Several W groups: Σ(C) = Σ_g 𝔅_g C 𝔅_gᵀ + Σ₀ (reduced.weight_factors).  The reduced action equals the dense
    one on a subspace closed under every 𝔅_g (value, gradient; finite differences of its Hessian), and the
    subspace solver's result equals the reference (dense) solver's: C to 1e-8, action to 1e-10, Ĉ and the
    predictions to their dense formulas; its stability (the Schur certificate) equals the reference solver's (dense
    Hessian)."""
    T, P = 4, 3
    net, X, Y, sup = sequential(T, P)
    net = sf.NetworkSpec(T=T, phi="linear", bias="none", scaling="mean_field",
                         share={"W": groups, "U": "shared", "v": "shared"})
    pr = problem(net, X, Y, sup, 0.5)
    red = _reduced_action_is_the_dense_action(pr)[0]
    assert len(red.gams) == len(groups) and np.allclose(sum(np.outer(g, g) for g in red.gams), pr.wmask, atol=1e-14)
    _equals_the_reference_solver(net, X, Y, sup)


def _equals_the_reference_solver(net, X, Y, sup):
    """The subspace solver's result against the reference (dense) solver's: C to 1e-8, action to 1e-10, the
    fixed-point residual, Ĉ against its dense formula, predictions at the sites and for new inputs, stability."""
    fl = continued(feature_learning(net, X, Y, supervised=sup, kappa=0.5, gtol=1e-12))
    ref = feature_learning(net, X, Y, supervised=sup, kappa=0.5, method="reference", gtol=1e-12)
    assert fl.selected.reduced is not None
    assert fl.action == pytest.approx(ref.action, abs=1e-10)
    assert np.abs(fl.C_sites - ref.C_sites).max() <= 1e-8 * np.abs(ref.C_sites).max()
    assert fl.fixed_point_residual() < 1e-9
    lin = LinearAction(fl.problem)
    Ch = lin.chat(lin.point(fl.C_sites))
    np.testing.assert_allclose(fl.Chat, fl.problem.from_sites(Ch), atol=1e-9 * np.abs(Ch).max())
    np.testing.assert_allclose(fl.predict(), ref.predict(), atol=1e-8 * np.abs(ref.predict()).max())
    Xn = np.random.default_rng(3).standard_normal((2, X.shape[1]))
    np.testing.assert_allclose(fl.predict(Xn), ref.predict(Xn), atol=1e-8 * np.abs(ref.predict(Xn)).max())
    assert fl.stable == ref.stable

SINGULAR = {"dependent": "dependent", "D<P": "narrow"}


@pytest.mark.parametrize("kind", SINGULAR.values(), ids=SINGULAR.keys())
def test_singular_inputs_in_the_subspace_solver_equal_the_dense_action_and_the_reference_solver(kind):
    """A singular input kernel (the third pattern the sum of the first two, or D = 2 < P = 4 inputs): the subspace
    solver whitens on the span of the inputs (L₀ = E l₀, reduced.Reduction.whiten).  The reduced action equals the
    dense one on the span (value, gradient; finite differences of its Hessian), and the result equals the reference (dense, span) solver's: C to
    1e-8, action to 1e-10, Ĉ, predictions at the sites and for new inputs; stability (Schur certificate) as the
    reference's (dense Hessian)."""
    if kind == "dependent":
        net, X, Y, sup = _grouped_or_singular("singular")
    else:
        net, X, Y, sup = sequential(4, 4)
        X = X[:, :2]
    pr = problem(net, X, Y, sup, 0.5)
    red = _reduced_action_is_the_dense_action(pr)[0]
    assert red.E is not None and red.m < pr.n
    _equals_the_reference_solver(net, X, Y, sup)
