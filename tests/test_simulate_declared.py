"""Simulators read the declaration (spec.plan): leaky RNN, ResNet and grouped sharing against independent
references, the RNN/DNN as special declarations draw for draw, and the 1/N approach to the mean field."""
import numpy as np
import pytest

import symfield as sf
from symfield.simulate import draw_network, forward, kernel_moments, posterior, posterior_hmc, prior
from symfield.simulate.posterior import layout, reduced_inputs
from symfield.simulate.projected import trajectories
from symfield.theory.feature_learning.problem import problem

from symfield.validation import loglog_slope
from test_simulate_rate import X as X_RATE, kernel_mse

RNG = np.random.default_rng(2024)
X2 = RNG.standard_normal((2, 3))
XSEQ = RNG.standard_normal((2, 5, 3))
GROUPED5 = dict(share={"W": [[1, 3], [2, 4]], "U": [[1, 2], [3, 4, 5]], "b": [[1, 4], [2, 3], [5]],
                       "v": [[1, 5], [2, 3, 4]]})

DECLARED = {  # (spec, X): presets, skip networks and a grouping whose W groups alternate in time
    "rnn": (sf.RNN(5, g=1.2, sigma_b2=0.1), X2),
    "dnn_every": (sf.DNN(5, g=[1.1, 0.9, 1.3, 1.0], input="every", phi="tanh", sigma_b2=0.2), XSEQ),
    "leaky_every": (sf.RNN(5, g=1.1, leak=0.8, input="every", bias="fresh", sigma_b2=0.2), XSEQ),
    "resnet": (sf.ResNet(5, g=1.5, r=[0.3, 0.5, 0.2, 0.4], sigma_b2=0.1), X2),
    "grouped": (sf.NetworkSpec(T=5, g=[1.2, 0.8, 1.2, 0.8], leak=[0.5, 0.0, -0.3, 0.7], input="every",
                               sigma_b2=[0.1, 0.2, 0.2, 0.1, 0.3], **GROUPED5), XSEQ),
}


# ---------------------------------------------------------------- independent reference (seed map + plan)
def _rng(seed, k, *component):
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k, *component)))


def _shell_normals(rng, n):
    """(n, n) standard normals, entry (i, j) = draw m² + j (i = m >= j) or m² + m + 1 + i, m = max(i, j)."""
    flat = rng.standard_normal(n * n)
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            m = max(i, j)
            out[i, j] = flat[m * m + j] if i == m else flat[m * m + m + 1 + i]
    return out


def _reference_states(spec, X, N, seed, k):
    """h_t = a_t h_{t-1} + w_t Z_W[t] φ(h_{t-1})/√N + U_U[t] x_t + σ_t b_b[t], written from the plan."""
    plan, Xc, phi = spec.plan, spec.check_inputs(X), spec.phi_fn.numpy()
    P, Tin, D = Xc.shape
    U = [_rng(seed, k, 0, l).standard_normal((N, D)) * spec.g_in / np.sqrt(D) for l in range(plan.n_U)]
    b = _rng(seed, k, 1).standard_normal((N, plan.n_b)).T if plan.n_b else None
    Z = [_shell_normals(_rng(seed, k, 2, l), N) for l in range(plan.n_W)]
    h = np.zeros((spec.T, N, P))
    for t in range(spec.T):
        if t > 0:
            h[t] = plan.leak[t] * h[t - 1] + plan.w_scale[t] / np.sqrt(N) * (Z[plan.W[t]] @ phi(h[t - 1]))
        if plan.U[t] >= 0:
            h[t] += U[plan.U[t]] @ Xc[:, t if Tin > 1 else 0].T
        if plan.b[t] >= 0:
            h[t] += plan.b_scale[t] * b[plan.b[t]][:, None]
    return h


def _skip_products(spec):
    """A_ts = Π_{u=s+1..t} a_u (s <= t), from the skip coefficients directly."""
    a, T = spec.leak_values(), spec.T
    return np.array([[np.prod(a[s + 1:t + 1]) if s <= t else 0.0 for s in range(T)] for t in range(T)])


def _reference_kernels(spec, X, h):
    """(1/N) h hᵀ and A D Aᵀ with D = Σdet + M r_t r_s g_t g_s (1/N) φ(h_{t-1}) φ(h_{s-1})ᵀ."""
    N, T, Xc = h.shape[1], spec.T, spec.check_inputs(X)
    f = spec.phi_fn.numpy()(h)
    rg = spec.r_values() * np.concatenate([[0.0], spec.g_values()])
    M = spec.weight_mask()
    D = np.array([[spec.sigma_det(Xc, t, s) + (M[t, s] * rg[t] * rg[s] * f[t - 1].T @ f[s - 1] / N
                                               if t and s else 0.0) for s in range(T)] for t in range(T)])
    A = _skip_products(spec)
    return np.einsum("tip,siq->tspq", h, h) / N, np.einsum("ta,abpq,sb->tspq", A, D, A)


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_prior_equals_the_reference_network_from_the_plan(name):
    """Sample k of prior() is the network drawn from the documented seed map and run by the update rule."""
    spec, X = DECLARED[name]
    N, seed = 12, 31
    ens = prior(spec, X, N, 5, seed=seed, chunk=2)
    for k in (0, 3, 4):
        h = _reference_states(spec, X, N, seed, k)
        np.testing.assert_allclose(forward(spec, draw_network(spec, N, X.shape[-1], seed, k), X), h,
                                   rtol=1e-12, atol=1e-12)
        emp, aux = _reference_kernels(spec, X, h)
        np.testing.assert_allclose(ens.emp[k], emp, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(ens.aux[k], aux, rtol=1e-11, atol=1e-12)
    assert len(draw_network(spec, N, X.shape[-1], seed).W) == spec.plan.n_W


@pytest.mark.parametrize("name", ["leaky_every", "grouped"])
def test_kernel_moments_sample_is_the_trajectory_kernel(name):
    """kernel_moments with one sample returns exactly the kernels of its trajectory (aux = A D Aᵀ)."""
    spec, X = DECLARED[name]
    N = 10
    km = kernel_moments(spec, X, N, 1, seed=4)
    chunk0 = np.random.default_rng(np.random.SeedSequence(4, spawn_key=(0,)))  # chunk j draws from child (j,)
    H, _ = trajectories(spec, spec.check_inputs(X), N, 1, chunk0)  # (1, T, P, N)
    emp, aux = _reference_kernels(spec, X, H[0].transpose(0, 2, 1))
    np.testing.assert_allclose(km.mean("emp"), emp, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(km.mean("aux"), aux, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("name", ["leaky_every", "grouped"])
def test_projection_sampler_matches_full_weight_matrices(name):
    """kernel_moments (W only applied to the vectors it meets) and prior (N x N matrices) agree in law."""
    spec, X = DECLARED[name]
    N, S1, S2 = 12, 6000, 3000
    km = kernel_moments(spec, X, N, S1, seed=5)
    pr = prior(spec, X, N, S2, seed=6)
    for kind in ("emp", "aux"):
        live = pr.var(kind) > 1e-12
        z = (km.mean(kind) - pr.mean(kind))[live] / np.sqrt(km.var(kind)[live] / S1 + pr.var(kind)[live] / S2)
        assert np.max(np.abs(z)) < 4.5, (kind, np.max(np.abs(z)))
        assert np.all(np.abs(km.var(kind)[live] / pr.var(kind)[live] - 1) < 0.25)


def _custom(share, **kw):
    return sf.NetworkSpec(T=4, g=1.3, sigma_b2=0.2, share={p: share for p in ("W", "U", "b", "v")}, **kw)


@pytest.mark.parametrize("inp, X", [("first", X2), ("every", XSEQ[:, :4])])
def test_singleton_groups_are_the_dnn_and_one_group_the_rnn(inp, X):
    """Declared groups reproduce the presets bit for bit (same seed): all singletons = DNN, one group = RNN."""
    for custom, preset in ((_custom("fresh", input=inp), sf.DNN(4, g=1.3, sigma_b2=0.2, input=inp)),
                           (_custom("shared", input=inp), sf.RNN(4, g=1.3, sigma_b2=0.2, input=inp))):
        a, b = prior(custom, X, 16, 6, seed=3, chunk=4), prior(preset, X, 16, 6, seed=3, chunk=4)
        np.testing.assert_array_equal(a.emp, b.emp)
        np.testing.assert_array_equal(a.aux, b.aux)
        ka, kb = kernel_moments(custom, X, 8, 40, seed=2), kernel_moments(preset, X, 8, 40, seed=2)
        np.testing.assert_array_equal(ka.mean_aux, kb.mean_aux)
        np.testing.assert_array_equal(ka.var_emp, kb.var_emp)
    assert not np.allclose(prior(_custom("fresh", input=inp), X, 16, 2, seed=3).emp[:, 3],
                           prior(_custom("shared", input=inp), X, 16, 2, seed=3).emp[:, 3])


RATE = {"leaky": sf.RNN(T=6, phi="erf", g=1.2, leak=0.8, sigma_b2=0.1),
        "resnet": sf.ResNet(T=6, phi="erf", g=1.5, r=0.3, sigma_b2=0.1),
        "grouped": sf.NetworkSpec(T=6, phi="erf", share={"W": [[1, 2], [3, 4], [5]]}, sigma_b2=0.1)}
WIDTHS = np.array([32, 64, 128, 256])
SAMPLES = np.array([480, 320, 240, 160])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RATE))
def test_declared_prior_converges_to_mean_field_like_one_over_width(name):
    """MSE(N) = <(K - C̄)²> over samples and entries falls like 1/N for K̂ and the auxiliary field (the
    approach of test_simulate_rate: independent seeds per width, delta-method weights), and the ensemble
    mean at the largest width agrees with C̄ = mean_field(net, X).C within its standard error."""
    spec = RATE[name]
    C = sf.mean_field(spec, X_RATE).C
    mse, var_log, ens = kernel_mse(spec, X_RATE, C, WIDTHS, SAMPLES, 700)
    for kind in mse:
        slope, se = loglog_slope(WIDTHS, mse[kind], var_log[kind])
        print(f"\n{name} {kind}: slope {slope:.3f} ± {se:.3f}; N·MSE {np.round(WIDTHS * np.array(mse[kind]), 4)}")
        assert se < 0.08, (kind, se)
        assert abs(slope + 1.0) < 3.5 * se, f"{name} {kind}: slope {slope:.3f} ± {se:.3f}"
        live = ens.var(kind) > 1e-14
        z = (ens.mean(kind) - C)[live] / ens.sem(kind)[live]
        assert np.max(np.abs(z)) < 4.5, (kind, np.max(np.abs(z)))


# --------------------------------------------------------------------------------------- posterior (μP)
POSTERIOR = {
    "leaky": sf.RNN(3, phi="tanh", g=1.2, leak=0.6, input="every", bias="static", sigma_b2=0.3, g_in=0.8,
                    sigma_v=1.1, scaling="mean_field"),
    "grouped": sf.NetworkSpec(T=5, phi="tanh", g=[1.2, 0.9, 1.2, 0.9], r=[1.0, 0.7, 0.5, 1.2],
                              leak=[0.4, 0.0, -0.5, 0.8], input="every", sigma_b2=[0.1, 0.2, 0.2, 0.1, 0.3],
                              g_in=0.8, sigma_v=1.1, scaling="mean_field", **GROUPED5),
}


def _posterior_setup(net, N, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2, net.T, 4))
    Y = rng.standard_normal((2, net.T))
    sup = np.zeros((2, net.T), bool)
    sup[0, ::2] = sup[1, -1] = True
    pr = problem(net, X, Y, sup, 0.5)
    xr, r = reduced_inputs(pr.X)
    lay, size, n_w = layout(pr.spec, N, pr.X.shape[2], r, pr.mask_out)
    return rng, pr, xr, lay, size, n_w


@pytest.mark.parametrize("name", sorted(POSTERIOR))
def test_posterior_energy_gradient_against_finite_differences(name):
    net, N = POSTERIOR[name], 6
    rng, pr, xr, lay, size, _ = _posterior_setup(net, N, 0)
    mod = posterior_hmc.load(net.phi_fn)
    y, sup = np.ascontiguousarray(pr.Y.T), np.ascontiguousarray(pr.supervised.T)
    bufs = lambda: (np.empty((net.T, N, 2)), np.empty((net.T, N, 2)), np.empty((net.T, 2)))
    theta = rng.standard_normal(size)
    grad, scratch = np.empty(size), np.empty(size)
    mod.energy_grad(theta, lay, xr, y, sup, 0.5, *bufs(), grad)
    h = 1e-6
    for k in rng.choice(size, 40, replace=False):
        e = np.zeros(size)
        e[k] = h
        fd = (mod.energy_grad(theta + e, lay, xr, y, sup, 0.5, *bufs(), scratch)
              - mod.energy_grad(theta - e, lay, xr, y, sup, 0.5, *bufs(), scratch)) / (2 * h)
        assert grad[k] == pytest.approx(fd, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", sorted(POSTERIOR))
def test_posterior_forward_is_the_declared_update_rule(name):
    """kernel_and_outputs == the update rule run in NumPy on the parameter blocks of the layout."""
    net, N = POSTERIOR[name], 5
    rng, pr, xr, lay, size, n_w = _posterior_setup(net, N, 1)
    theta = rng.standard_normal(size)
    T, P, r = net.T, 2, xr.shape[2]
    C, f = np.empty((T * P, T * P)), np.empty((T, P))
    posterior_hmc.load(net.phi_fn).kernel_and_outputs(theta, lay, xr, C, f)
    Us = theta[:lay.w_off].reshape(-1, N, r)
    Ws = theta[lay.w_off:lay.b_off].reshape(-1, N, N)
    bs = theta[lay.b_off:lay.v_off].reshape(-1, N)
    vs = theta[lay.v_off:].reshape(-1, N)
    assert len(Us) == len(net.groups("U")) and len(Ws) == n_w == len(net.groups("W"))
    assert len(bs) == len(net.groups("b")) and len(vs) == len(net.groups("v"))
    U_of, b_of, v_of = net.labels("U"), net.labels("b"), net.labels("v")
    W_of = np.concatenate([[-1], net.labels("W")])
    a, rr, g = net.leak_values(), net.r_values(), np.concatenate([[0.0], net.g_values()])
    sb = np.sqrt(net.sigma_b2_values())
    h, states = np.zeros((N, P)), []
    for t in range(T):
        drive = net.g_in / np.sqrt(4) * Us[U_of[t]] @ xr[:, t].T + sb[t] * bs[b_of[t]][:, None]
        h = drive + (a[t] * h + rr[t] * g[t] / np.sqrt(N) * Ws[W_of[t]] @ np.tanh(h) if t else 0.0)
        states.append(h)
    Phi = np.tanh(np.stack(states))  # (T, N, P)
    np.testing.assert_allclose(f, [net.sigma_v / N * vs[v_of[t]] @ Phi[t] for t in range(T)], atol=1e-12)
    Fl = Phi.transpose(0, 2, 1).reshape(T * P, N)
    np.testing.assert_allclose(C, Fl @ Fl.T / N, atol=1e-12)


@pytest.mark.parametrize("name", sorted(POSTERIOR))
def test_posterior_runs_on_declared_networks(name):
    net = POSTERIOR[name]
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((2, net.T, 4)), rng.standard_normal((2, net.T))
    post = posterior(net, X, Y, N=16, seed=0, samples=4, burn=20, chains=2, leapfrog=10, eig_samples=2)
    assert post.C.shape == (8, net.T, net.T, 2, 2) and np.all(np.isfinite(post.C))
    assert post.W_top.shape == (4, net.plan.n_W) and post.acceptance > 0.3
    assert len(post.W_last) == net.plan.n_W


def test_diverging_skip_network_raises_non_finite_error():
    net = sf.NetworkSpec(T=60, phi="linear", g=1e7, leak=2.0)  # |h| ~ 1e7^59: overflows
    with pytest.raises(sf.errors.NonFiniteError, match="non-finite hidden states"), np.errstate(all="ignore"):
        prior(net, X2, 4, 2, seed=0)
