"""μP feature learning for nonlinear φ (symfield.theory.feature_learning.nonlinear).

References: scipy.integrate.quad for the one-dimensional tilted moments; the exact Gaussian measure
and the closed-form linear solver for linear φ; an independent Monte Carlo estimator for the
three-dimensional measure of the broken branch."""
import numpy as np
import pytest
from scipy.integrate import quad

import symfield as sf
from symfield.errors import SpecError
from symfield.theory.feature_learning import feature_learning
from symfield.theory.feature_learning import nonlinear as nl
from symfield.theory.feature_learning.action import LinearAction
from symfield.theory.feature_learning.problem import problem
from symfield.theory.feature_learning.tilted_mc import TiltedMC
from symfield.theory.feature_learning.tilted_quadrature import GaussianMeasure, TiltedQuadrature

X1 = np.ones((1, 1))


def _quad_moments(phi, s2, c):
    """⟨φ²⟩, ⟨h²⟩, ⟨φh⟩ and ln Z of N(h; 0, s2) e^{c φ²/2} by adaptive quadrature."""
    f = phi.numpy()
    dens = lambda h: np.exp(-h * h / (2 * s2) + 0.5 * c * f(h) ** 2) / np.sqrt(2 * np.pi * s2)
    kw = dict(limit=200, epsabs=1e-13, epsrel=1e-12, points=[0.0])
    Z = quad(dens, -40 * np.sqrt(s2), 40 * np.sqrt(s2), **kw)[0]
    m = [quad(lambda h: g(h) * dens(h), -40 * np.sqrt(s2), 40 * np.sqrt(s2), **kw)[0] / Z
         for g in (lambda h: f(h) ** 2, lambda h: h * h, lambda h: f(h) * h)]
    return m + [np.log(Z)]


@pytest.mark.parametrize("phi,tol", [("erf", 1e-9), ("tanh", 1e-9), ("relu", 2e-4)])
def test_one_dimensional_tilted_quadrature_against_adaptive_quadrature(phi, tol):
    nlf = sf.RNN(2, phi=phi, scaling="mean_field").phi_fn
    for s2, c in [(0.7, 0.4), (2.5, -1.3), (1.2, 2.0)]:
        if phi == "relu" and c >= 1 / s2:
            continue  # not normalisable
        m = TiltedQuadrature(nlf).tilted(np.array([[s2]]), np.array([[c]]))
        ref = _quad_moments(nlf, s2, c)
        got = [m.phiphi[0, 0], m.hh[0, 0], m.phih[0, 0], m.logZ]
        assert np.allclose(got, ref, rtol=tol, atol=tol), (got, ref)


def test_quadrature_and_monte_carlo_of_the_linear_measure_against_the_gaussian():
    lin = sf.RNN(2, phi="linear", scaling="mean_field").phi_fn
    S = np.array([[1.3, 0.2, 0.1], [0.2, 0.8, 0.3], [0.1, 0.3, 1.0]])
    Ch = np.array([[0.3, 0.1, 0.2], [0.1, -0.5, 0.2], [0.2, 0.2, 0.4]])
    ref = GaussianMeasure().tilted(S, Ch)
    for d in (2, 3):
        q = TiltedQuadrature(lin).tilted(S[:d, :d], Ch[:d, :d])
        r = GaussianMeasure().tilted(S[:d, :d], Ch[:d, :d])
        assert np.abs(q.phiphi - r.phiphi).max() < 1e-11 and abs(q.logZ - r.logZ) < 1e-11
    mc = TiltedMC(lin, samples=100000, seed=4)
    mc.adapt(1.3 * ref.hh)  # a proposal wider than the measure: the weights carry the tilt
    m = mc.tilted(S, Ch, errors=True)
    z = (m.phiphi - ref.phiphi) / m.stderr
    assert np.abs(z).max() < 4.5 and np.abs(z).max() > 0.05  # errors of the right size


@pytest.mark.parametrize("case", ["rnn-below", "rnn-above", "dnn", "sequential", "two-patterns"])
def test_linear_phi_through_the_nonlinear_solver_reproduces_the_linear_solver(case):
    T, sup, X = 3, None, X1
    Y = np.array([[0.0, 0.0, 2.0 if case == "rnn-below" else 4.5]])
    net = sf.RNN(T, phi="linear", bias="none", scaling="mean_field")
    if case == "dnn":
        net = sf.DNN(4, phi="linear", bias="none", scaling="mean_field")
        Y = np.array([[0.0, 0.0, 0.0, 3.0]])
    if case == "sequential":  # theory Sec. 13.1 check 6
        net = sf.RNN(6, phi="linear", bias="none", scaling="mean_field")
        Y, sup = np.ones((1, 6)), np.array([1, 1, 0, 0, 1, 1], bool)
    if case == "two-patterns":
        X = np.array([[1.0, 0.3], [0.2, 1.1]])
        Y = np.array([[0.0, 0.0, 3.0], [0.0, 0.0, -2.5]])
    ref = feature_learning(net, X, Y, supervised=sup)
    got = nl.feature_learning(problem(net, X, Y, sup))
    assert got.phase == ref.phase
    assert np.abs(got.C_sites - ref.C_sites).max() < 1e-8
    assert got.action == pytest.approx(ref.action, abs=1e-8)
    assert np.abs(got.predict() - ref.predict()).max() < 1e-8
    if case == "sequential":
        assert np.allclose(got.predict()[0], [0.674, 0.772, 0.569, 0.677, 0.925, 0.962], atol=6e-4)


@pytest.mark.parametrize("y", [8.0, 12.0])
def test_linear_phi_far_above_threshold_is_seeded_along_the_path(y):
    """T = 3 endpoint task far above the threshold (y_c ≈ 4): the symmetric solution displaced at s = 1 lies
    outside the broken branch's basin (ConvergenceError before); seeded where the lag sector first turns
    unstable and continued, the branch is the linear solver's (same sign convention C₁₂ > 0)."""
    net = sf.RNN(3, phi="linear", bias="none", scaling="mean_field")
    Y = np.array([[0.0, 0.0, y]])
    ref = feature_learning(net, X1, Y)
    got = nl.feature_learning(problem(net, X1, Y, None))
    assert ref.phase == got.phase == "broken"
    assert np.abs(got.C_sites - ref.C_sites).max() < 1e-8
    assert got.action == pytest.approx(ref.action, abs=1e-8)


def test_linear_phi_sequential_tp40_past_the_bifurcation_reaches_the_linear_solvers_maximum():
    """T = 8, P = 5 sequential task (the benchmark's problem with φ linear; no symmetric sector): the continued
    branch crosses a bifurcation (an odd number of real eigenvalues of J above 1 from s = 0.5) and becomes a saddle
    of lower action (−1.416 against −1.270); the stationary point reached along the unstable mode is the linear
    solver's maximum (measured: C to 3e-9, action to 4e-15) or its Z2 mirror image, reported with the linear
    solver's sign convention.  13 s (70–140 s while every real eigenvalue above 1 started a branch search)."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "bench_feature_learning_nonlinear.py"
    spec = importlib.util.spec_from_file_location("bench_fl_nl", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    _, X, Y, sup = bench.large_problem(8, 5, "erf")
    net = sf.RNN(8, phi="linear", bias="none", scaling="mean_field")
    from threadpoolctl import threadpool_limits
    ref = feature_learning(net, X, Y, supervised=sup)
    with threadpool_limits(1, user_api="blas"):  # as sf.feature_learning (40 × 40 matrices: 10× faster)
        got = nl.feature_learning(problem(net, X, Y, sup), steps=4)
    assert got.action == pytest.approx(ref.action, abs=1e-8)
    # all supervised steps even, input at t = 1: the Z2 mirror J C J (odd lags flip) is an exact symmetry and
    # both images are maxima (measured: C and J C_ref J equal to 3e-9, C − C_ref up to 5.8); the reported one has
    # Σ C(lag 1) > 0, as the linear solver's
    from symfield.theory.feature_learning.result import mirror
    assert np.abs(mirror(got.problem, ref.C_sites) - ref.C_sites).max() > 1.0  # the images differ
    assert np.abs(got.C_sites - ref.C_sites).max() < 1e-7


@pytest.mark.parametrize("phi", ["erf", "tanh"])
def test_factorised_solution_satisfies_the_equations_with_adaptive_quadrature_moments(phi):
    net = sf.DNN(3, phi=phi, bias="none", scaling="mean_field")
    fl = sf.feature_learning(net, X1, np.array([[0.0, 0.0, 3.0]]))
    assert isinstance(fl, nl.NonlinearFeatureLearning) and fl.phase == "symmetric"
    pr = fl.problem
    act = LinearAction(pr)
    p = act.point(fl.C_sites)
    ff, hh = np.zeros((3, 3)), np.zeros((3, 3))
    logZ = 0.0
    for t in range(3):
        a, b, _, lz = _quad_moments(net.phi_fn, p.Sigma[t, t], fl.selected.Chat[t, t])
        ff[t, t], hh[t, t] = a, b
        logZ += lz
    assert np.abs(ff - fl.C_sites).max() < 1e-8
    assert np.abs(act.chat(p, hh) - fl.selected.Chat).max() < 1e-8
    S = -0.5 * np.sum(fl.selected.Chat * fl.C_sites) + logZ + act.data_term(p)
    assert fl.action == pytest.approx(S, abs=1e-8)
    assert fl.error < 1e-7
    # below threshold the RNN sits on the same (symmetric) solution
    rnn = sf.feature_learning(sf.RNN(3, phi=phi, bias="none", scaling="mean_field"), X1, np.array([[0, 0, 3.0]]))
    assert rnn.phase == "symmetric" and np.abs(rnn.C_sites - fl.C_sites).max() < 1e-8


def test_broken_branch_of_the_erf_rnn_against_an_independent_monte_carlo_estimate():
    net = sf.RNN(3, phi="erf", bias="none", scaling="mean_field")
    fl = sf.feature_learning(net, X1, np.array([[0.0, 0.0, 5.5]]))
    assert fl.phase == "broken"
    names = [b.name for b in fl.branches]
    assert names == ["symmetric", "broken+", "broken-"]
    assert fl.action > fl.branches[0].action + 1e-3  # the broken branch is selected by its action
    assert fl.C[0, 1, 0, 0] > 0 and fl.branches[2].C[0, 1] < 0  # Z2 mirror images
    pr, x = fl.problem, np.stack([fl.C_sites, fl.selected.Chat])
    mc = TiltedMC(net.phi_fn, samples=200000, seed=11)
    mc.adapt(fl.selected.moments.hh)
    gx, p, m = nl.FixedPoint(pr, 1.0, mc).evaluate(x, errors=True)
    z = (gx[0] - x[0]) / m.stderr
    assert np.abs(z).max() < 4.5
    # the order parameter rises from 0 at the threshold
    yc = sf.critical_signal(net, X1, np.array([[0.0, 0.0, 1.0]]))
    assert 0 < yc < 5.5


def test_monte_carlo_path_error_covers_the_deviation_from_the_exact_linear_solution(monkeypatch):
    net = sf.RNN(4, phi="linear", bias="none", scaling="mean_field")
    Y, sup = np.array([[0.5, 1.0, 0.0, 1.0]]), np.array([1, 1, 0, 1], bool)
    ref = feature_learning(net, X1, Y, supervised=sup)
    mc = lambda pr, d, samples, seed, nodes=None, control=False: TiltedMC(pr.spec.phi_fn, samples, seed, control=control)
    monkeypatch.setattr(nl, "measure_for", mc)
    got = nl.feature_learning(problem(net, X1, Y, sup), samples=20000, seed=2, steps=4)
    dev = np.abs(got.C_sites - ref.C_sites).max() / np.abs(ref.C_sites).max()
    assert 0.005 < got.error < 0.15  # 20000 points: a few per cent after propagation through the fixed point
    assert dev < 3 * got.error


def test_arguments_are_checked():
    net = sf.RNN(3, phi="tanh", bias="none", scaling="mean_field")
    with pytest.raises(SpecError, match="estimator"):
        sf.feature_learning(net, X1, np.array([[0, 0, 1.0]]), estimator={"sample": 10})
    with pytest.raises(SpecError, match="samples"):
        sf.feature_learning(net, X1, np.array([[0, 0, 1.0]]), estimator={"samples": 10})
    with pytest.raises(SpecError, match="no symmetric"):
        sf.critical_signal(sf.RNN(3, phi="relu", bias="none", scaling="mean_field"), X1, np.array([[0, 0, 1.0]]))


def test_stein_estimate_of_the_backward_term_against_quadrature():
    erf = sf.RNN(2, phi="erf", scaling="mean_field").phi_fn
    S = np.array([[1.3, 0.2, 0.1], [0.2, 0.8, 0.3], [0.1, 0.3, 1.0]])
    Ch = np.array([[0.3, 0.1, 0.4], [0.1, -0.5, 0.2], [0.4, 0.2, 0.6]])
    q = TiltedQuadrature(erf).tilted(S, Ch)
    Si = np.linalg.inv(S)
    ref = Si @ q.hh @ Si - Si
    m = TiltedMC(erf, samples=50000, seed=5).tilted(S, Ch)
    assert np.abs(m.tilt - ref).max() < 0.05 * np.abs(ref).max()
    assert np.abs(TiltedMC(erf, samples=2000).tilted(S, 0 * Ch).tilt).max() == 0  # exact without tilt


def test_finite_width_derivation_cell_runs(tmp_path):
    """One tiny cell of the HMC comparison of derivations/feature_learning_nonlinear.py (quick path)."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "derivations" / "feature_learning_nonlinear.py"
    spec = importlib.util.spec_from_file_location("fl_nonlinear_derivation", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.finite_n([{"kind": "rnn", "phi": "tanh", "y": 5.0}], [8, 16], samples=6, burn=6, chains=2, seed=3,
                        progress=False)
    assert {r["observable"] for r in rows} == {"cT", "C12C23", "f", "learned", "learned_psum"}
    for r in rows:
        assert np.isfinite(r["z"]) and np.isfinite(r["theory"]) and len(r["values"]) == 2


def test_benchmark_quick_mode_runs_with_a_useful_effective_sample_size(capsys):
    """benchmarks/bench_feature_learning_nonlinear.py --quick (erf RNN, T·P = 6, importance sampling): the
    linearised proposal keeps most points effective, and the Monte Carlo error falls with the points."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "bench_feature_learning_nonlinear.py"
    spec = importlib.util.spec_from_file_location("bench_fl_nl", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    fl, table = bench.main(["--quick", "--samples", "2000"])
    assert fl.selected.moments.ess > 0.5 * 2000
    assert 0 < table[1][3] < table[0][3]  # 4000 points: smaller error than 1000


def test_outliers_of_linear_phi_through_the_nonlinear_solver_are_those_of_the_linear_solver():
    """Sec. 8: learned eigenvalues outside the bulk |λ| <= g; linear φ, T = 3, y = 6 (an outlier) and y = 4.5
    (none): the nonlinear result's outliers() against the closed-form solver's."""
    net = sf.RNN(3, phi="linear", bias="none", scaling="mean_field")
    for y, count in ((6.0, 1), (4.5, 0)):
        Y = np.array([[0.0, 0.0, y]])
        ref = feature_learning(net, X1, Y).outliers()
        got = nl.feature_learning(problem(net, X1, Y)).outliers()
        assert got.size == ref.size == count
        assert np.allclose(np.sort(np.abs(got)), np.sort(np.abs(ref)), atol=1e-7)


def test_linearised_preconditioner_inverts_the_gaussian_map_for_linear_phi():
    """For linear φ (D = 1) the linearised measure is the Gaussian one (closed form K = (Σ⁻¹ − Ĉ)⁻¹) and the
    dense preconditioner is (1 − J)⁻¹ of the map: M(1 − J)v = v, J·v by finite differences of the exact map."""
    from symfield.theory.feature_learning.linearised import LinearisedMeasure
    net = sf.RNN(3, phi="linear", bias="none", scaling="mean_field")
    pr = problem(net, np.array([[1.0, 0.3], [0.2, 1.1]]), np.array([[0.0, 0.0, 3.0], [0.0, 0.0, -2.5]]))
    S = LinearAction(pr).point(nl.NonlinearSolver(pr).start()[0], kernel=False).Sigma
    Ch = 0.05 * np.eye(pr.n) + 0.02
    lin, ref = LinearisedMeasure(net.phi_fn).tilted(S, Ch), GaussianMeasure().tilted(S, Ch)
    assert np.abs(lin.phiphi - ref.phiphi).max() < 1e-12 and np.abs(lin.hh - ref.hh).max() < 1e-12
    Si = np.linalg.inv(S)
    assert np.abs(lin.tilt - (Si @ ref.hh @ Si - Si)).max() < 1e-10
    x = np.stack([ref.phiphi, Ch])
    fp = nl.FixedPoint(pr, 1.0, GaussianMeasure())
    M = nl.dense_preconditioner(nl.FixedPoint(pr, 1.0, LinearisedMeasure(net.phi_fn)), x)
    op = nl.fixed_point_operator(fp, x, fp.evaluate(x)[0])
    v = np.random.default_rng(0).standard_normal(x.shape)
    v = 0.5 * (v + np.swapaxes(v, -1, -2))
    assert np.abs(M.matvec(op.matvec(v.ravel())) - v.ravel()).max() < 1e-5 * np.abs(v).max()


def test_block_preconditioner_inverts_the_factorised_gaussian_map_for_linear_phi():
    """A factorised measure (DNN): the preconditioner on the time blocks of the linearised (here Gaussian) block
    measure, the identity elsewhere, is (1 − J)⁻¹ of the block map — J·v by finite differences, v with cross-time
    entries too (the map neither reads nor writes them) — and it is what the solver picks for that measure."""
    from symfield.theory.feature_learning.linearised import LinearisedMeasure
    from symfield.theory.feature_learning.tilted_quadrature import BlockMeasure
    net = sf.DNN(4, phi="linear", bias="none", scaling="mean_field")
    pr = problem(net, np.array([[1.0, 0.3], [0.2, 1.1]]), np.array([[0.0, 1.0, 0.0, 3.0], [0.0, -0.5, 0.0, -2.5]]))
    sv = nl.NonlinearSolver(pr)
    assert sv.sym
    blocks = pr.lag() == 0
    x = sv.start()
    x[1] = np.where(blocks, 0.05 * np.eye(pr.n) + 0.02, 0.0)
    block = BlockMeasure(GaussianMeasure(), pr.T, pr.P, odd=True)
    fp = nl.FixedPoint(pr, 1.0, block)
    x[0] = fp.evaluate(x)[0][0]
    M = sv.preconditioner(1.0, x, block)
    assert sv._pre[2] and M is not None
    ref = nl.dense_preconditioner(nl.FixedPoint(pr, 1.0, BlockMeasure(LinearisedMeasure(net.phi_fn), pr.T, pr.P, True)),
                                  x, blocks)
    op = nl.fixed_point_operator(fp, x, fp.evaluate(x)[0])
    v = np.random.default_rng(1).standard_normal(x.shape)
    v = 0.5 * (v + np.swapaxes(v, -1, -2))
    back = M.matvec(op.matvec(v.ravel()))
    assert np.abs(back - v.ravel()).max() < 1e-5 * np.abs(v).max()
    assert np.abs(ref.matvec(v.ravel()) - M.matvec(v.ravel())).max() < 1e-12
    assert np.abs(op.matvec(v.ravel()) - v.ravel()).max() > 0.01  # J is not 0 on the blocks


@pytest.mark.parametrize("phi", ["erf", "relu"])
def test_exact_jacobian_of_the_frozen_sample_against_central_differences(phi):
    """J·v of the map with frozen Monte Carlo points (exact directional derivative of the weights; the Stein terms
    for erf, δ⟨hhᵀ⟩ for kinked relu) against central differences of that map, away from where the points were drawn."""
    from symfield.theory.feature_learning.tilted_mc import TiltedMC
    rng = np.random.default_rng(3)
    net = sf.RNN(4, phi=phi, bias="none", scaling="mean_field")
    pr = problem(net, rng.standard_normal((2, 2)), rng.standard_normal((2, 4)), np.array([0, 1, 0, 1], bool))
    sym = lambda a: 0.5 * (a + np.swapaxes(a, -1, -2))
    x = nl.NonlinearSolver(pr).start()
    x[1] = sym(0.1 * np.eye(pr.n) + 0.02 * rng.standard_normal((pr.n, pr.n)))
    fp = nl.FixedPoint(pr, 0.8, TiltedMC(net.phi_fn, samples=3000, seed=1))
    fp.measure.freeze(fp.act.point(x[0], kernel=False).Sigma, x[1])
    R = sym(rng.standard_normal(x.shape))
    R[0] = x[0] @ R[0] @ x[0]  # C-directions within the range of C (Σ(C) may be singular: inputs at one step)
    x, v = x + 0.01 * R / np.abs(R).max(axis=(1, 2))[:, None, None] * np.abs(x).max(), R
    Jv = v.ravel() - nl.jacobian_operator(fp, x).matvec(v.ravel())
    eps = 1e-5
    fd = (fp.evaluate(x + eps * v)[0] - fp.evaluate(x - eps * v)[0]).ravel() / (2 * eps)
    assert np.abs(Jv - fd).max() < 1e-6 * np.abs(fd).max()
    assert np.abs(fd).max() > 0.5  # a non-trivial derivative (measured: 3.9 for erf)
