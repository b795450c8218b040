"""Random weights of finite-width networks from the weight plan (theory Sec. 2.2-2.4), seed -> sample map.

The network is read from ``spec.plan`` (:class:`symfield.spec.WeightPlan`) only:

    h_t = a_t h_{t-1} + r_t g_t/√N Z_{W[t]} φ(h_{t-1}) + U_{U[t]} x_t + σ_t b_{b[t]},   h_0 = 0,

with one standard-normal (N, N) matrix Z per W group, one (N, D) input matrix per U group (U[t] = -1:
no input at step t) and one standard-normal bias vector per b group (b[t] = -1: no bias).

Seed map (a NumPy ``SeedSequence`` spawn tree).  With ``root = SeedSequence(seed)``, every
random array of sample ``k`` comes from its own generator
``default_rng(SeedSequence(root.entropy, spawn_key=root.spawn_key + (k, *component)))``:

    component (0, l)  input weights of U group l, (N, D) row-major
    component (1,)    all biases at once: standard_normal((N, n_b)).T, row l = bias group l
    component (2, l)  hidden weights Z of W group l, (N, N) in shell order (below)

Group labels are those of ``spec.labels``.  An RNN has one group of each (U, b static, W: all l = 0),
a DNN one group per step (DNN W group l produces hidden state l+2, 1-based); the draws of a one-group
bias are ``standard_normal(N)`` and of T singleton groups ``standard_normal((N, T)).T``.  So sample
``k`` equals ``root.spawn(n)[k]``'s subtree for any ``n > k``: results do not depend on ``chunk``, a
run with ``samples=m`` is the prefix of any longer run with the same seed, and networks with the same
seed share the draws of equally labelled groups (RNN(T=2) == DNN(T=2) draw for draw when their bias
modes agree; a declaration whose groups are all singletons is the DNN, one group each is the RNN).

Widths are nested (common random numbers): hidden standard normals are laid out in *shell order*
(entry (i, j) is draw number m² + j if i = m >= j, else m² + m + 1 + i, with m = max(i, j)), and
input weights, biases are row-major per neuron.  Hence, for the same seed and sample, the width-N
network uses the top-left N x N corner of the standard normals of any wider network (rescaled by
1/sqrt(N)), and its first N neurons' input weights and biases.  Use different seeds for statistically
independent widths; use the same seed for paired (positively correlated) comparisons across widths.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..api import check_positive_int, check_spec
from ..errors import SpecTypeError
from ..resources import check_memory
from ..spec import NetworkSpec, SpecError

IN, BIAS, HID = 0, 1, 2


def root_seed(seed) -> np.random.SeedSequence:
    """``SeedSequence`` for ``seed`` (int, ``SeedSequence`` or None = fresh OS entropy)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise SpecError(f"seed must be a non-negative integer, a numpy SeedSequence or None, got {seed!r}")
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


def input_weights(spec: NetworkSpec, root, k: int, N: int, D: int) -> np.ndarray:
    """U ~ N(0, g_in²/D) for each input group: shape (n_U, N, D)."""
    scale = spec.g_in / np.sqrt(D)
    return np.stack([stream(root, k, IN, l).standard_normal((N, D)) * scale for l in range(spec.plan.n_U)])


def biases(spec: NetworkSpec, root, k: int, N: int) -> np.ndarray:
    """σ_t b_{b[t]} at each hidden state: shape (T, N) (zeros without a bias)."""
    plan = spec.plan
    if plan.n_b == 0:
        return np.zeros((spec.T, N))
    Z = stream(root, k, BIAS).standard_normal((N, plan.n_b)).T
    return plan.b_scale[:, None] * Z[plan.b]


def hidden_normals(root, k: int, group: int, N: int, out: np.ndarray | None = None) -> np.ndarray:
    """Standard normals Z of W group ``group``; step t applies r_t g_t Z / sqrt(N)."""
    return nested_normals(stream(root, k, HID, group), N, out=out)


def hidden_scales(spec: NetworkSpec, N: int) -> np.ndarray:
    """r_t g_t / sqrt(N) multiplying Z_{W[t]} φ(h_{t-1}) at hidden state t (0-based; 0 at t = 0): (T,)."""
    return spec.plan.w_scale / np.sqrt(N)


def group_scales(spec: NetworkSpec, N: int) -> np.ndarray:
    """g / sqrt(N) of each W group (the matrix W = g Z/√N without the branch scale r_t): (n_W,)."""
    plan = spec.plan
    first = [int(np.flatnonzero(plan.W == l)[0]) for l in range(plan.n_W)]
    return np.array([spec.g_values()[t - 1] for t in first]) / np.sqrt(N)


def runs(labels: np.ndarray) -> list[tuple[int, list[int]]]:
    """Maximal runs of consecutive equal W labels (steps t >= 1): [(group, [t, ...]), ...]."""
    out = []
    for t in range(1, labels.size):
        if out and out[-1][0] == labels[t]:
            out[-1][1].append(t)
        else:
            out.append((int(labels[t]), [t]))
    return out


@dataclass
class NetworkDraw:
    """All weights of one network sample: ``W_in`` (n_U, N, D) per input group, ``bias`` (T, N) per step,
    ``W`` list of the (N, N) matrices g Z/√N per W group (step t applies r_t W[plan.W[t]])."""

    W_in: np.ndarray
    bias: np.ndarray
    W: list


def draw_network(spec: NetworkSpec, N: int, D: int, seed, k: int = 0) -> NetworkDraw:
    """The weights that :func:`symfield.simulate.prior` uses for sample ``k`` (same seed map)."""
    check_spec(spec)
    N, D = check_positive_int("N", N), check_positive_int("D", D)
    k = check_positive_int("k", k, minimum=0)
    check_memory(8.0 * N * (N * spec.plan.n_W + D + spec.T), f"draw_network (N = {N}, D = {D})", "N or D")
    root = root_seed(seed)
    sc = group_scales(spec, N)
    W = [sc[l] * hidden_normals(root, k, l, N) for l in range(spec.plan.n_W)]
    return NetworkDraw(input_weights(spec, root, k, N, D), biases(spec, root, k, N), W)


def forward(spec: NetworkSpec, net: NetworkDraw, X) -> np.ndarray:
    """Hidden states h[t, i, mu] of one network (reference implementation of the update rule above)."""
    if not isinstance(net, NetworkDraw):
        raise SpecTypeError(f"net must be a NetworkDraw (simulate.draw_network), got {type(net).__name__}")
    X = spec.check_inputs(X)
    plan = spec.plan
    phi = spec.phi_fn.numpy()
    T, N = spec.T, net.bias.shape[1]
    r = spec.r_values()
    h = np.empty((T, N, X.shape[0]))
    for t in range(T):
        h[t] = net.bias[t][:, None]
        if plan.U[t] >= 0:
            h[t] += net.W_in[plan.U[t]] @ X[:, t if X.shape[1] > 1 else 0].T
        if t > 0:
            if plan.leak[t] != 0:
                h[t] += plan.leak[t] * h[t - 1]
            h[t] += r[t] * (net.W[plan.W[t]] @ phi(h[t - 1]))
    return h
