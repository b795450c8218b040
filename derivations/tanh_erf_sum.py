"""Refit tanh(x) ≈ Σ_k a_k erf(b_k x) (symfield.gauss.erf_sums): minimax over x >= 0 with Σ_k a_k = 1.

Run:  python derivations/tanh_erf_sum.py [K]      (K = 4: the stored constants, max error 9.434e-6)

Least squares from log-spaced scales, then the minimax problem min t s.t. |φ̃(x_i) - tanh(x_i)| <= t on a
dense grid (SLSQP, restarted until it stops improving); prints a_k, b_k, the max error on a finer grid and
the error's extrema (K = 4: 8 equal-magnitude alternating extrema, x ≈ 0.2 ... 5.1: the minimax optimum).
"""
from __future__ import annotations

import sys

import numpy as np
from scipy.optimize import least_squares, minimize
from scipy.special import erf

X = np.concatenate([np.linspace(0, 6, 6001), np.linspace(6, 30, 300)])


def unpack(p):
    K = (len(p) + 1) // 2
    return np.append(p[K:], 1 - np.sum(p[K:])), np.exp(p[:K])


def error(p, x=X):
    a, b = unpack(p)
    return (a * erf(b * x[:, None])).sum(1) - np.tanh(x)


def minimax(p):
    cons = [{"type": "ineq", "fun": lambda q: q[-1] - error(q[:-1])},
            {"type": "ineq", "fun": lambda q: q[-1] + error(q[:-1])}]
    q = minimize(lambda q: q[-1], np.append(p, np.max(np.abs(error(p)))), constraints=cons, method="SLSQP",
                 options={"maxiter": 500, "ftol": 1e-16}).x
    return q[:-1]


def fit(K: int):
    p = np.concatenate([np.log(np.geomspace(0.45, 1.45, K)), np.full(K - 1, 1.0 / K)])
    p = least_squares(error, p).x
    best = np.inf
    while True:
        p = minimax(p)
        e = np.max(np.abs(error(p)))
        if e >= best * (1 - 1e-9):
            return p
        best = e


if __name__ == "__main__":
    K = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    p = fit(K)
    a, b = unpack(p)
    fine = np.linspace(0, 12, 1200001)
    e = error(p, fine)
    turn = np.nonzero(np.diff(np.sign(np.diff(e))))[0] + 1
    print("weights", a.tolist())
    print("scales ", b.tolist())
    print(f"max error {np.max(np.abs(e)):.6e}; extrema", [(round(fine[i], 3), f"{e[i]:+.4e}") for i in turn])
