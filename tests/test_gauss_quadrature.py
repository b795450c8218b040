"""Gauss–Hermite quadrature of 1- to 4-point expectations (theory 9.2, 9.3)."""
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sympy as sp

from symfield.gauss import (DEFAULT_NODES, collapse_sites, expect, expect2_block, expect_batch, get_phi,
                            hermite_nodes, register_phi)
from symfield.gauss.reference import pair_reference, single_reference

y = sp.Symbol("y")
POLY = sp.Lambda(y, y ** 3 - 2 * y ** 2 + y / 2 + 1)  # a user φ with all derivative orders non-trivial

# shared with test_gauss_dual.py (memoised mpmath references): (c11, c22, c12)
TANH_CASES = [(1.3, 0.4, 0.7 * math.sqrt(1.3 * 0.4)), (0.7, 2.2, -0.35 * math.sqrt(0.7 * 2.2)),
              (1.3, 1.3, 0.9999 * 1.3)]


def random_spd(m, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, m + 2))
    return scale * (a @ a.T) / (m + 2) + 0.05 * np.eye(m)


def isserlis(cov, idx):
    """<z_{i1} ... z_{i2n}> by summing over perfect matchings (Isserlis/Wick)."""
    idx = list(idx)
    if not idx:
        return 1.0
    if len(idx) % 2:
        return 0.0
    first, rest = idx[0], idx[1:]
    return sum(cov[first, rest[j]] * isserlis(cov, rest[:j] + rest[j + 1:]) for j in range(len(rest)))


def poly_moment(expr_list, cov):
    """<Π_i p_i(z_i)> for polynomials p_i (SymPy, in x), by Isserlis on each monomial."""
    xs = sp.symbols(f"z0:{len(expr_list)}")
    x = get_phi("linear").expr.free_symbols.pop()
    prod = sp.expand(sp.Mul(*[e.subs(x, xs[i]) for i, e in enumerate(expr_list)]))
    total = 0.0
    for monom, coef in sp.Poly(prod, *xs).terms():
        idx = [i for i, p in enumerate(monom) for _ in range(p)]
        total += float(coef) * isserlis(cov, idx)
    return total


@pytest.mark.parametrize("n", [20, 80, 300])
def test_hermite_nodes_moments(n):
    x, w = hermite_nodes(n)
    assert w.sum() == pytest.approx(1, abs=1e-14)
    for k, mom in [(1, 0), (2, 1), (4, 3), (6, 15), (8, 105)]:
        assert (w * x ** k).sum() == pytest.approx(mom, abs=1e-11 * max(1, mom))


# Gauss-Hermite with 80 nodes converges slowly for tanh/erf at large variance (poles of tanh,
# steep erf): measured errors at c=2.5 (erf) / 3.0 (tanh) are ~3e-7 / ~1e-4, hence the tolerances.
ONE_POINT = [("erf", 0.3, 1e-14), ("erf", 2.5, 1e-6), ("tanh", 0.5, 1e-11), ("tanh", 3.0, 3e-4)]


@pytest.mark.parametrize("name, c, tol", ONE_POINT)
def test_one_point_vs_mpmath(name, c, tol):
    for orders in [(0, 0), (1, 1), (2, 0), (0, 1, 1), (0, 3)]:
        k = len(orders)
        val = expect(name, np.full((k, k), c), orders)  # identical sites are collapsed to 1-D
        assert val == pytest.approx(single_reference(name, c, orders), abs=tol), (name, c, orders)
    assert expect(name, c, [2]) == pytest.approx(single_reference(name, c, (2,)), abs=1e-14)  # odd: 0


def test_two_point_vs_mpmath():
    for c in TANH_CASES:
        cov = [[c[0], c[2]], [c[2], c[1]]]
        assert expect("tanh", cov) == pytest.approx(pair_reference("tanh", *c), abs=2e-7)
    cov = [[0.9, 0.3], [0.3, 1.7]]
    assert expect("erf", cov) == pytest.approx(pair_reference("erf", 0.9, 1.7, 0.3), abs=1e-11)
    assert expect("erf", cov, [1, 1]) == pytest.approx(pair_reference("erf", 0.9, 1.7, 0.3, (1, 1)), abs=1e-8)


def test_erf_two_point_vs_closed_forms():
    rng = np.random.default_rng(3)
    nl = get_phi("erf", kappa=0.8)
    for _ in range(20):
        a, b = rng.uniform(0.05, 3, 2)
        c = rng.uniform(-0.98, 0.98) * math.sqrt(a * b)
        cov = [[a, c], [c, b]]
        assert expect(nl, cov) == pytest.approx(float(nl.pair(a, b, c)), abs=1e-11)
        assert expect(nl, cov, [1, 1]) == pytest.approx(float(nl.dpair(a, b, c)), abs=1e-8)
        # Price, diagonal entry: 2 d<φφ>/dΣ11 = <φ''(u) φ(v)>
        a_, b_, c_ = sp.symbols("a b c", positive=True)
        d11 = 2 * sp.diff(nl.pair(a_, b_, c_), a_)
        assert expect(nl, cov, [2, 0]) == pytest.approx(float(d11.subs({a_: a, b_: b, c_: c})), abs=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_isserlis_linear(seed):
    S = random_spd(4, seed)
    four = S[0, 1] * S[2, 3] + S[0, 2] * S[1, 3] + S[0, 3] * S[1, 2]
    assert expect("linear", S) == pytest.approx(four, abs=1e-12)
    assert expect("linear", S[:3, :3]) == pytest.approx(0, abs=1e-13)
    # <z1² z2²> = Σ11Σ22 + 2Σ12²: repeated sites, and the same via sites=
    two = S[0, 0] * S[1, 1] + 2 * S[0, 1] ** 2
    assert expect("linear", S[:2, :2], [0, 0, 0, 0], sites=[0, 0, 1, 1]) == pytest.approx(two, abs=1e-12)
    rep = S[np.ix_([0, 0, 1, 1], [0, 0, 1, 1])]
    assert expect("linear", rep) == pytest.approx(two, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_isserlis_polynomial_with_derivatives(seed):
    nl = get_phi(POLY)
    derivs = [nl.expr if o == 0 else nl.derivative(o) for o in range(4)]
    for m, orders in [(3, (0, 1, 2)), (3, (0, 0, 0)), (4, (0, 1, 0, 2)), (4, (3, 0, 1, 1))]:
        S = random_spd(m, 10 * seed + m)
        exact = poly_moment([derivs[o] for o in orders], S)
        assert expect(nl, S, orders) == pytest.approx(exact, rel=1e-11, abs=1e-11), (m, orders)


def test_rank_deficient_and_invalid_covariances():
    v = np.array([1.0, -0.5, 0.7])
    S = np.outer(v, v) + np.diag([0.0, 0.3, 0.0])  # rank 2, no identical sites: eigen-fallback path
    exact = poly_moment([get_phi("linear").expr ** 2] * 3, S)  # <z1² z2² z3²>
    register_phi("sq_quad_test", sp.Lambda(y, y ** 2), overwrite=True)
    assert expect("sq_quad_test", S) == pytest.approx(exact, rel=1e-10)
    # perfectly anti-correlated pair: 2-D quadrature of a singular covariance
    c = 1.3
    assert expect("tanh", [[c, -c], [-c, c]]) == pytest.approx(-single_reference("tanh", c, (0, 0)), abs=2e-7)
    with pytest.raises(ValueError, match="positive semi-definite"):
        expect("tanh", [[1.0, 1.5], [1.5, 1.0]])
    with pytest.raises(ValueError, match="negative variance"):
        expect("tanh", [[-1.0]])
    with pytest.raises(ValueError, match="not available"):
        expect("relu", [[1.0, 0.2], [0.2, 1.0]], [2, 0])


def test_collapse_sites():
    S = random_spd(2, 5)
    big = S[np.ix_([0, 1, 0], [0, 1, 0])]
    red, sites = collapse_sites(big)
    assert sites == [0, 1, 0] and np.allclose(red, S)
    assert expect("tanh", big, [0, 1, 2]) == pytest.approx(expect("tanh", S, [0, 1, 2], sites=[0, 1, 0]), abs=1e-15)


def test_batch_and_block_agree_with_single():
    rng = np.random.default_rng(7)
    covs = np.stack([random_spd(3, s) for s in range(5)])
    batch = expect_batch("tanh", covs, [0, 1, 0])
    assert np.allclose(batch, [expect("tanh", c, [0, 1, 0]) for c in covs], atol=1e-14)
    X = rng.standard_normal((6, 4))
    C = X @ X.T / 4
    d = np.diag(C).copy()
    full = expect2_block("tanh", d, d, C)
    sym = expect2_block("tanh", d, d, C, symmetric=True)
    assert np.allclose(full, sym, atol=1e-15) and np.allclose(sym, sym.T)
    assert full[1, 2] == pytest.approx(expect("tanh", C[np.ix_([1, 2], [1, 2])]), abs=1e-15)
    # diagonal: singular 2x2 block (2-D rule) vs the collapsed 1-D rule
    assert full[3, 3] == pytest.approx(expect("tanh", [[d[3], d[3]], [d[3], d[3]]]), abs=1e-7)


def test_default_orders():
    assert DEFAULT_NODES == {1: 80, 2: 60, 3: 24, 4: 14}


def test_generated_module_is_cached_across_processes(tmp_path):
    """A second process loads φ's generated module and its compiled kernels from the cache."""
    code = textwrap.dedent("""
        import json, sys
        from symfield.gauss import expect
        from symfield.gauss.quadrature import phi_module
        from symfield.codegen import cache
        v = expect("tanh", [[1.0, 0.3], [0.3, 0.8]], [0, 1])
        st = phi_module("tanh").expect2.stats
        print(json.dumps([v, len(cache.written), sum(st.cache_hits.values()), sum(st.cache_misses.values())]))
    """)
    env = dict(os.environ, SYMFIELD_CACHE=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    outs = []
    for r in runs:  # noqa: B007
        assert r.returncode == 0, r.stderr
        outs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    assert outs[0][0] == outs[1][0]
    assert outs[0][1] == 1 and outs[0][3] >= 1      # first: module written, kernel compiled
    assert outs[1][1] == 0 and outs[1][3] == 0 and outs[1][2] >= 1  # second: nothing written or compiled
