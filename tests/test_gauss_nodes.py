"""The one Gauss–Hermite rule (hermite_nodes / hermite_functions) against 30-digit mpmath."""
import mpmath as mp
import numpy as np
import pytest

from symfield.gauss.quadrature import NUMPY_MAX_NODES, hermite_functions, hermite_nodes


def mp_rule(n, x0, rows):
    """Node, weight and √w h_k (k in rows) near x0: Newton on the orthonormal h_n, Christoffel weight."""
    with mp.workdps(30):
        r = mp.mpf(float(x0))
        for _ in range(5):
            hm, hk = mp.mpf(0), mp.mpf(1)
            for k in range(n):
                hm, hk = hk, (r * hk - mp.sqrt(k) * hm) / mp.sqrt(k + 1)
            r -= hk / (mp.sqrt(n) * hm)   # h_n(r) / h_n'(r), h_n' = √n h_{n-1}
        hs, hm, hk = [mp.mpf(1)], mp.mpf(0), mp.mpf(1)
        for k in range(n - 1):
            hm, hk = hk, (r * hk - mp.sqrt(k) * hm) / mp.sqrt(k + 1)
            hs.append(hk)
        w = 1 / mp.fsum(h * h for h in hs)
        return float(r), w, [float(mp.sqrt(w) * hs[k]) for k in rows]


@pytest.mark.parametrize("n", [40, 151, 400])
def test_nodes_weights_and_hermite_functions_against_mpmath(n):
    x, w = hermite_nodes(n)
    xv, V = hermite_functions(n)
    assert np.array_equal(x, xv)  # one node table
    assert np.array_equal(x, -x[::-1]) and np.array_equal(w, w[::-1]) and abs(w.sum() - 1) < 1e-14
    rows = [0, 1, n // 2, n - 1]
    for i in sorted({n - 1, n - 1 - n // 10, n // 2 + 1, (3 * n) // 4}):
        r, wr, vr = mp_rule(n, x[i], rows)
        assert abs(x[i] - r) < 1e-14 * max(1.0, abs(r))
        if wr > mp.mpf(10) ** -290:  # relative accuracy even for tiny tail weights
            assert abs(w[i] - float(wr)) <= 2e-13 * float(wr), (i, w[i], wr)
        for k, v in zip(rows, vr):
            assert abs(V[k, i] - v) <= 1e-14 + 2e-13 * abs(v), (k, i, V[k, i], v)
    assert np.abs(V @ V.T - np.eye(n)).max() < 1e-13


def test_numpy_rule_kept_where_it_is_finite():
    """Up to NUMPY_MAX_NODES the rule is numpy's hermegauss (normalised): quadrature results unchanged."""
    for n in (14, 80, NUMPY_MAX_NODES):
        x, w = np.polynomial.hermite_e.hermegauss(n)
        hx, hw = hermite_nodes(n)
        assert np.array_equal(hx, x) and np.array_equal(hw, w / w.sum())
