"""μP feature learning of declared networks (leaky RNN, grouped W, residual branches): Σ(C) from the update
rule, derivatives, presets reproduced exactly, and the saddle point against the exact finite-N posterior."""
from pathlib import Path

import numpy as np
import pytest

import symfield as sf
from symfield.simulate.posterior import posterior
from symfield.spec import SpecError
from symfield.theory.feature_learning import closed_form_threshold, critical_signal, feature_learning, problem
from symfield.theory.feature_learning.action import LinearAction, gp_kernel
from symfield.theory.feature_learning.symbolic import ExplicitAction
from symfield.theory.posterior_kernel import kernel_expectation, kernel_posterior

from linear_mup import X1, check_gradient_and_hessian, dnn, endpoint, rnn

MUP = {"phi": "linear", "scaling": "mean_field", "bias": "none"}


def leaky(T=4, **kw):
    return sf.RNN(T=T, leak=0.5, **MUP, **kw)


def grouped(T=4, **kw):
    return sf.NetworkSpec(T=T, share={"W": [[1, 2], [3]]}, **MUP, **kw)


def general():
    """Every declaration feature at once: W and b groups, per-step leak and branch scale, input every step."""
    return sf.NetworkSpec(T=4, phi="linear", scaling="mean_field", g=[0.9, 0.9, 1.2], g_in=1.1, sigma_b2=0.3,
                          input="every", leak=(0.5, -0.3, 0.7), r=(1.0, 0.8, 1.3), sigma_v=1.2,
                          share={"W": [[1, 2], [3]], "b": [[1, 3], [2, 4]], "v": [[1, 2], [3, 4]]})


def test_prior_kernel_equals_mean_field_of_the_declaration():
    """Without data C = Σ(C) = A[B_M∘(BCBᵀ) + Σdet]Aᵀ must be the NNGP kernel of linear φ, computed
    independently by sf.mean_field's skip recursion (C_ts = a_s C_t,s-1 + X_ts, X_ts = a_t X_t-1,s + D_ts)."""
    rng = np.random.default_rng(0)
    for net, X in ((general(), rng.standard_normal((2, 4, 3))), (leaky(5), rng.standard_normal((2, 3))),
                   (grouped(), rng.standard_normal((2, 3)))):
        pr = problem(net, X, np.zeros((2, net.T)))
        C = pr.from_sites(gp_kernel(pr))
        np.testing.assert_allclose(C, sf.mean_field(net, X).C, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make", [leaky, grouped, general])
def test_gradient_and_hessian_against_finite_differences(make):
    rng = np.random.default_rng(1)
    net = make()
    X = rng.standard_normal((2, 4, 3)) if net.input == "every" else rng.standard_normal((2, 3))
    sup = np.array([[1, 0, 1, 1], [0, 1, 0, 1]], bool)
    pr = problem(net, X, rng.standard_normal((2, 4)), sup, 0.7)
    act = LinearAction(pr)
    A = rng.standard_normal((pr.n, pr.n)) * 0.2
    C = gp_kernel(pr) + A @ A.T
    check_gradient_and_hessian(act, C, rng)


def test_explicit_components_compiled_equal_matrix_rules():
    """sympy.diff of the explicit-component action (skip coefficients and branch scales as symbols) ==
    the matrix rules (leaky RNN with a residual branch scale, T = 3)."""
    rng = np.random.default_rng(2)
    net = sf.RNN(T=3, leak=(0.5, -0.7), r=1.3, g=0.9, sigma_v=1.2, **MUP)
    pr = problem(net, X1, endpoint(3, 2.5), None, 0.8)
    ex, lin = ExplicitAction(pr), LinearAction(pr)
    A = rng.standard_normal((pr.n, pr.n)) * 0.2
    C = gp_kernel(pr) + A @ A.T
    D = rng.standard_normal((pr.n, pr.n))
    D = D + D.T
    assert ex.value(C) == pytest.approx(lin.value(C), abs=1e-12)
    np.testing.assert_allclose(ex.grad(C), lin.grad(C), atol=1e-11)
    np.testing.assert_allclose(ex.hessp_at(C, D), lin.hessp(C, D), atol=1e-10)


def test_grouped_declarations_reproduce_the_presets_exactly():
    """Singleton groups = DNN and one group = RNN, bit for bit (above the RNN threshold: broken branch)."""
    T, Y = 4, endpoint(4, 3.0)
    singles = sf.NetworkSpec(T=T, share={"W": "fresh", "U": "fresh", "v": "fresh"}, **MUP)
    one = sf.NetworkSpec(T=T, share={"W": "shared", "U": "shared", "v": "shared"}, **MUP)
    for custom, preset in ((singles, dnn(T)), (one, rnn(T))):
        a, b = feature_learning(custom, X1, Y), feature_learning(preset, X1, Y)
        assert [br.name for br in a.branches] == [br.name for br in b.branches]
        assert a.action == b.action
        assert np.array_equal(a.C_sites, b.C_sites) and np.array_equal(a.predict(), b.predict())
    assert feature_learning(one, X1, Y).phase == "broken"


def test_grouped_network_threshold_and_learned_spectrum_per_group():
    """W shared by applications 1, 2 only: a lag-1 instability exists (finite threshold); the learned
    eigenvalues come per W group, and the closed form (derived for one shared W) refuses the grouping."""
    net = grouped()
    yc = critical_signal(net, X1, endpoint(4, 1.0))
    assert np.isfinite(yc) and yc > 0
    assert feature_learning(net, X1, endpoint(4, 0.98 * yc)).phase == "symmetric"
    fl = feature_learning(net, X1, endpoint(4, 1.3 * yc))
    assert fl.phase == "broken" and fl.fixed_point_residual() < 1e-9
    lam = fl.learned_eigenvalues()
    assert [v.size for v in lam] == [2, 1]
    assert np.abs(lam[1]).max() < 1e-9 < np.abs(lam[0]).max()  # the fresh W_3 stays nilpotent
    with pytest.raises(SpecError, match="critical_signal"):
        closed_form_threshold(net, X1)
    with pytest.raises(SpecError, match="critical_signal"):
        closed_form_threshold(leaky(), X1)


def test_leaky_rnn_learned_eigenvalue_matches_the_weight_it_solves():
    """Learned part of W from x_t = (h_t − a h_{t-1})/r: at the saddle point, eig(C_pp⁻¹ C_px) equals
    the eigenvalues of the rank-(T-1) matrix X_n G⁻¹ H_pᵀ/N built from explicit trajectories with kernel C."""
    net = leaky()
    fl = feature_learning(net, X1, endpoint(4, 3.0))
    C = fl.C_sites
    N = 7
    H = np.linalg.cholesky(C) @ np.linalg.qr(np.random.default_rng(3).standard_normal((N, 4)))[0].T * np.sqrt(N)
    Hp, Hn = H[:-1], H[1:]
    Xn = Hn - 0.5 * Hp
    Wl = Xn.T @ np.linalg.solve(Hp @ Hp.T / N, Hp) / N
    top = np.sort(np.abs(np.linalg.eigvals(Wl)))[-3:]
    np.testing.assert_allclose(np.sort(np.abs(fl.learned_eigenvalues())), top, atol=1e-9)


@pytest.mark.parametrize("make", [leaky, grouped])
def test_weight_space_hmc_equals_the_kernel_density_at_the_same_width(make):
    """The exact kernel-space density (built on Σ(C) of the declaration) and HMC of the network weights
    (drawn from the weight plan) agree at N = 48: an independent check of Σ(C) with skip and groups."""
    net, Y, N = make(), endpoint(4, 3.0), 48
    hp = posterior(net, X1, Y, N=N, seed=1, samples=300, burn=100, chains=4, leapfrog=20)
    kp = kernel_posterior(net, X1, Y, N=N, seed=1, samples=800, chains=32, burn=800, thin=5)
    assert hp.acceptance > 0.6
    for obs in ("diag", "f"):
        z = (hp.mean(obs) - kp.mean(obs)) / np.sqrt(hp.sem(obs) ** 2 + kp.sem(obs) ** 2)
        assert np.all(np.abs(z) < 4.5), (obs, z)


@pytest.mark.parametrize("make,T,y,nodes", [(leaky, 3, 3.0, 7), (grouped, 4, 5.0, 3)])
def test_exact_finite_width_posterior_approaches_the_saddle_point_as_one_over_N(make, T, y, nodes):
    """|E_N[obs] − obs*| ∝ 1/N by quadrature of the exact kernel density over the T(T+1)/2 kernel entries
    (leaky RNN; grouped W above its threshold y_c = 4.25, where 3 nodes per axis suffice: 4 give the same
    deviations within 5 %)."""
    net, Y = make(T), endpoint(T, y)
    fl = feature_learning(net, X1, Y)
    assert fl.phase == "broken"
    C = fl.C_sites
    obs = {"cT": lambda C, f: C[:, -1, -1], "c12c23": lambda C, f: C[:, 0, 1] * C[:, 1, 2], "f": lambda C, f: f[:, -1]}
    star = {"cT": C[-1, -1], "c12c23": C[0, 1] * C[1, 2], "f": fl.predict()[0, -1]}
    Ns = np.array([1000, 2000, 4000, 8000])
    dev = {k: [] for k in obs}
    for N in Ns:
        r = kernel_expectation(net, X1, Y, obs, N=int(N), nodes=nodes, mode=C)
        for k in obs:
            dev[k].append(r[k] - star[k])
    for k in obs:
        slope = np.polyfit(np.log(Ns), np.log(np.abs(dev[k])), 1)[0]
        assert slope == pytest.approx(-1.0, abs=0.1), (k, slope)


def test_package_names_no_architecture():
    """Declare once: the package reads masks, groups and the plan, never an architecture name."""
    root = Path(sf.__file__).parent / "theory" / "feature_learning"
    for path in root.glob("*.py"):
        text = path.read_text()
        for word in ("arch", "shares_weights", '"rnn"', '"dnn"', "'rnn'", "'dnn'"):
            assert word not in text, (path.name, word)
