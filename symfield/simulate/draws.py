"""Random weights of finite-width networks (theory Sec. 2.2-2.4), with a fixed seed -> sample map.

Seed map (a NumPy ``SeedSequence`` spawn tree).  With ``root = SeedSequence(seed)``, every
random array of sample ``k`` comes from its own generator
``default_rng(SeedSequence(root.entropy, spawn_key=root.spawn_key + (k, *component)))``:

    component (0, l)  input weights W_in of input layer l   (N, D) row-major  (l = 0; DNN 'every': 0..T-1)
    component (1,)    biases ξ: static (N,), fresh (N, T)    row-major (fresh draws depend on T)
    component (2, l)  hidden weights: RNN W (l = 0); DNN W^(l) producing hidden state l+2 (1-based)

So sample ``k`` equals ``root.spawn(n)[k]``'s subtree for any ``n > k``: results do not depend on
``chunk``, a run with ``samples=m`` is the prefix of any longer run with the same seed, and an
RNN and a DNN with the same seed share W_in, ξ and the first hidden matrix (RNN(T=2) == DNN(T=2)
draw for draw when their bias modes agree).

Widths are nested (common random numbers): hidden standard normals are laid out in *shell order*
(entry (i, j) is draw number m² + j if i = m >= j, else m² + m + 1 + i, with m = max(i, j)), and
W_in, ξ are row-major per neuron.  Hence, for the same seed and sample, the width-N network uses
the top-left N x N corner of the standard normals of any wider network (rescaled by 1/sqrt(N)), and
its first N neurons' input weights and biases.  Use different seeds for statistically independent
widths; use the same seed for paired (positively correlated) comparisons across widths.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..spec import NetworkSpec

IN, BIAS, HID = 0, 1, 2


def root_seed(seed) -> np.random.SeedSequence:
    """``SeedSequence`` for ``seed`` (int, ``SeedSequence`` or None = fresh OS entropy)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer, a numpy SeedSequence or None, got {seed!r}")
    return np.random.SeedSequence(None if seed is None else int(seed))


def stream(root: np.random.SeedSequence, k: int, *component: int) -> np.random.Generator:
    """Generator of sample ``k``'s ``component`` (see the module docstring)."""
    ss = np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + (int(k),) + component)
    return np.random.default_rng(ss)


@lru_cache(maxsize=2)
def _shell_index(n: int) -> np.ndarray:
    i, j = np.indices((n, n))
    m = np.maximum(i, j)
    return np.where(i == m, m * m + j, m * m + m + 1 + i).astype(np.intp)


def nested_normals(rng: np.random.Generator, n: int, out: np.ndarray | None = None) -> np.ndarray:
    """(n, n) standard normals in shell order: the top-left n' x n' corner is the same for every n >= n'."""
    flat = rng.standard_normal(n * n)
    if out is None:
        out = np.empty((n, n))
    np.take(flat, _shell_index(n), out=out)
    return out


def n_input_layers(spec: NetworkSpec) -> int:
    """1, or T for a DNN with per-layer input weights (input='every')."""
    return spec.T if (spec.arch == "dnn" and spec.input == "every") else 1


def n_hidden_matrices(spec: NetworkSpec) -> int:
    """Distinct hidden matrices: 1 shared W (RNN, T >= 2) or T-1 (DNN)."""
    if spec.T < 2:
        return 0
    return 1 if spec.shares_weights else spec.T - 1


def input_weights(spec: NetworkSpec, root, k: int, N: int, D: int) -> np.ndarray:
    """W_in ~ N(0, g_in²/D) for each input layer: shape (L, N, D)."""
    L = n_input_layers(spec)
    scale = spec.g_in / np.sqrt(D)
    return np.stack([stream(root, k, IN, l).standard_normal((N, D)) * scale for l in range(L)])


def biases(spec: NetworkSpec, root, k: int, N: int) -> np.ndarray:
    """ξ_t ~ N(0, σ_t²) at each hidden state: shape (T, N) (static: one draw repeated over t)."""
    T = spec.T
    sd = np.sqrt(spec.sigma_b2_values())
    if spec.bias == "none":
        return np.zeros((T, N))
    rng = stream(root, k, BIAS)
    if spec.bias == "static":
        return sd[:, None] * rng.standard_normal(N)[None, :]
    return sd[:, None] * rng.standard_normal((N, T)).T


def hidden_normals(root, k: int, layer: int, N: int, out: np.ndarray | None = None) -> np.ndarray:
    """Standard normals Z of hidden matrix ``layer``; the weights are W = g_layer Z / sqrt(N)."""
    return nested_normals(stream(root, k, HID, layer), N, out=out)


def hidden_scales(spec: NetworkSpec, N: int) -> np.ndarray:
    """g_t / sqrt(N) multiplying the matrix that produces hidden state t (0-based, t = 1..T-1)."""
    return spec.g_values() / np.sqrt(N)


@dataclass
class NetworkDraw:
    """All weights of one network sample: ``W_in`` (L, N, D), ``bias`` (T, N), ``W`` list of (N, N)."""

    W_in: np.ndarray
    bias: np.ndarray
    W: list


def draw_network(spec: NetworkSpec, N: int, D: int, seed, k: int = 0) -> NetworkDraw:
    """The weights that :func:`symfield.simulate.prior` uses for sample ``k`` (same seed map)."""
    root = root_seed(seed)
    sc = hidden_scales(spec, N)
    W = [sc[l] * hidden_normals(root, k, l, N) for l in range(n_hidden_matrices(spec))]
    return NetworkDraw(input_weights(spec, root, k, N, D), biases(spec, root, k, N), W)


def forward(spec: NetworkSpec, net: NetworkDraw, X) -> np.ndarray:
    """Hidden states h[t, i, mu] of one network (reference implementation, Sec. 2.2-2.3).

    h_1 = W_in x^(1) + ξ_1;  h_t = W_t φ(h_{t-1}) + [W_in x^(t) if input='every'] + ξ_t.
    """
    X = spec.check_inputs(X)
    phi = spec.phi_fn.numpy()
    T, N = spec.T, net.bias.shape[1]
    h = np.empty((T, N, X.shape[0]))
    for t in range(T):
        h[t] = net.bias[t][:, None]
        if t == 0 or spec.input == "every":
            h[t] += net.W_in[t if len(net.W_in) > 1 else 0] @ X[:, t if spec.input == "every" else 0].T
        if t > 0:
            h[t] += net.W[0 if spec.shares_weights else t - 1] @ phi(h[t - 1])
    return h
