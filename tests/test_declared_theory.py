"""Theory of declared networks: grouped sharing between DNN and RNN, skip coefficients (leaky RNN, ResNet)."""
import numpy as np
import pytest

import symfield as sf

X = np.random.default_rng(4).standard_normal((3, 5))


def _same_mean_field(a, b):
    ma, mb = sf.mean_field(a, X), sf.mean_field(b, X)
    assert np.array_equal(ma.C, mb.C)


@pytest.mark.parametrize("phi", ["erf", "tanh"])
@pytest.mark.parametrize("inp", ["first", "every"])
def test_grouped_sharing_ends_are_the_presets_bit_for_bit(phi, inp):
    T = 5
    fresh = sf.NetworkSpec(T=T, phi=phi, g=1.2, sigma_b2=0.1, input=inp,
                           share={"W": "fresh", "U": "fresh", "b": "fresh", "v": "fresh"})
    shared = sf.NetworkSpec(T=T, phi=phi, g=1.2, sigma_b2=0.1, input=inp,
                            share={"W": [[1, 2, 3, 4]], "U": "shared", "b": "shared", "v": "shared"})
    _same_mean_field(fresh, sf.DNN(T, phi=phi, g=1.2, sigma_b2=0.1, input=inp))
    _same_mean_field(shared, sf.RNN(T, phi=phi, g=1.2, sigma_b2=0.1, input=inp))
    assert shared.bias == "static" and fresh.bias == "fresh"


def test_grouped_sharing_one_loop_ends_are_the_presets_bit_for_bit():
    x = X[:1, :3]
    kw = dict(phi="erf", g=1.2, sigma_b2=0.1)
    for custom, preset in ((sf.NetworkSpec(T=4, share={"W": "shared", "b": "shared", "v": "shared"}, **kw),
                            sf.RNN(4, **kw)),
                           (sf.NetworkSpec(T=4, **kw), sf.DNN(4, **kw))):
        a, b = sf.one_loop(custom, x), sf.one_loop(preset, x)
        assert np.array_equal(a.NDelta, b.NDelta) and np.array_equal(a.mean_shift, b.mean_shift)


def test_grouped_sharing_masks_follow_the_groups():
    net = sf.NetworkSpec(T=6, phi="erf", share={"W": [[1, 2], [3, 4], [5]], "U": "shared"}, input="every")
    M = net.weight_mask()
    assert M[1, 2] == 1 and M[3, 4] == 1 and M[2, 3] == 0 and M[5, 4] == 0 and M[0, 1] == 0
    mf = sf.mean_field(net, X)
    K = X @ X.T / X.shape[1]  # U shared by all steps: Σdet_ts = K for every t, s
    np.testing.assert_array_equal(mf.C[2, 3], K)            # different W groups: no weight term
    assert np.abs(mf.C[1, 2] - K).max() > 0.1                # one W: g² <φφ> on top


@pytest.mark.parametrize("groups,msg", [
    ({"W": [[1, 2], [3, 7]]}, "step 7 does not exist"), ({"W": [[1, 2], [2, 3], [4, 5]]}, "two groups"),
    ({"W": [[1, 2]]}, "in no group"), ({"Q": "shared"}, "unknown parameter"), ({"b": "sometimes"}, "share"),
])
def test_inconsistent_groups_raise_naming_the_field(groups, msg):
    with pytest.raises(sf.SpecError, match=msg):
        sf.NetworkSpec(T=6, share=groups)


def test_inconsistent_declarations_raise():
    with pytest.raises(sf.SpecError, match="leak"):
        sf.RNN(5, leak=[0.5, 0.5])
    with pytest.raises(sf.SpecError, match="r must be"):
        sf.ResNet(5, r=[0.1, float("nan"), 0.1, 0.1])
    with pytest.raises(sf.SpecError, match=r"share\['W'\]"):
        sf.DNN(4, share={"W": "shared"})
    with pytest.raises(sf.SpecError, match="bias='static'"):
        sf.ResNet(4, bias="static")
    with pytest.raises(sf.SpecError, match="contradicts"):
        sf.NetworkSpec(T=4, bias="fresh", share={"b": "shared"})
    with pytest.raises(sf.SpecError, match="g"):
        sf.NetworkSpec(T=4, g=[1.0, 1.2, 1.2], share={"W": [[1, 2], [3]]})
    assert isinstance(sf.SpecError("x"), sf.SymfieldError)


def test_resnet_without_branch_is_a_random_walk_of_biases():
    """r = 0: h_t = h_1 + b_2 + ... + b_t, so C_ts = C_11 + (min(t, s) - 1) σ² (closed form)."""
    T, s2 = 6, 0.3
    mf = sf.mean_field(sf.ResNet(T, r=0.0, sigma_b2=s2, g=1.3), X)
    C11 = X @ X.T / X.shape[1] + s2
    for t in range(T):
        for s in range(T):
            np.testing.assert_allclose(mf.C[t, s], C11 + min(t, s) * s2, rtol=1e-13, atol=1e-13)


def test_leaky_rnn_without_recurrence_is_a_geometric_series():
    """g = 0, static bias: h_t = a^(t-1) U x + (1 + a + ... + a^(t-1)) b (closed form)."""
    T, a, s2 = 7, 0.8, 0.2
    mf = sf.mean_field(sf.RNN(T, g=0.0, leak=a, sigma_b2=s2), X)
    K = X @ X.T / X.shape[1]
    geo = np.array([(1 - a ** (t + 1)) / (1 - a) for t in range(T)])
    for t in range(T):
        for s in range(T):
            np.testing.assert_allclose(mf.C[t, s], a ** (t + s) * K + geo[t] * geo[s] * s2, rtol=1e-12)


def test_one_loop_with_vanishing_skip_equals_one_loop_without():
    """The dense skip path (C = 𝒜 D 𝒜ᵀ, J from the lifted rows) reproduces the sparse path as a -> 0."""
    x = X[:1, :3]
    for kw in (dict(), dict(input="every", bias="fresh")):
        a = sf.one_loop(sf.RNN(4, g=1.2, sigma_b2=0.1, **kw), x)
        b = sf.one_loop(sf.RNN(4, g=1.2, sigma_b2=0.1, leak=1e-300, **kw), x)
        for name in ("variance", "mean_shift", "empirical_variance"):
            va, vb = getattr(a, name), getattr(b, name)
            va, vb = (va(), vb()) if callable(va) else (va, vb)
            np.testing.assert_allclose(vb, va, rtol=1e-12, atol=1e-14)
