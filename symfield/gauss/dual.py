"""Numeric dual kernel <φ(u)φ(v)> for any φ, by the Mehler (Hermite) expansion.

For Var u = a², Var v = b², correlation ρ = c12/(ab):

    <φ^(o1)(u) φ^(o2)(v)> = Σ_k ρ^k c_k(a) d_k(b),   c_k(a) = <φ^(o1)(a x) h_k(x)>,
                                                      d_k(b) = <φ^(o2)(b x) h_k(x)>,

h_k = He_k/√k! (orthonormal probabilists' Hermite polynomials, x ~ N(0,1)).  c_k(a) is
tabulated once per distinct variance with an N-node Gauss–Hermite rule in the stable
Golub–Welsch form c_k = Σ_i V[k,i] V[0,i] φ(a x_i) (V[k,i] = √w_i h_k(x_i)), k ≤ K
(orders above FIRST_ROWS only for variances that still miss mass); each pair then costs one
power sum in ρ (only odd k for odd φ, even k for even φ, detected numerically).

Error control (Cauchy–Schwarz): the remainder after term j is bounded by
|ρ|^(j+1) √(T_a(j+1) T_b(j+1)), with T(j) = Σ_{k≥j} c_k² + m and m the mass the table misses,
m(a) = Σ_i w_i φ(a x_i)² − Σ_k c_k² (discrete Parseval; it also catches an under-resolved
φ(a x)); the node sum itself must agree with <φ²> of the panel rule to ALIAS_RTOL·tol (else the nodes
alias φ(a x) and the variance is handed over).  Tolerances are relative to the Cauchy–Schwarz scale √(<φ²>_a <φ²>_b) of the pair: summation
stops once the bound is below ``tol``·1e-4 of it; a pair whose bound is still above ``tol`` of it after K
terms (slow Hermite decay: kinks, large variance — tanh(a x) → sign(x) —, |ρ| → 1, or φ overflowing on
the nodes) is computed by the graded panel rule (:mod:`symfield.gauss.panels`) instead, which must
certify ``tol`` by its own error estimate or raise AccuracyError.  ρ = ±1 exactly is fine.
For φ with a kink or a feature narrower than GH_MIN_WIDTH standard deviations, and at variances where the
Gauss–Hermite node sum <φ²> misses the panel rule's (aliasing: tanh from variance ~16 on), the c_k come from graded
panels instead of the Gauss–Hermite nodes (:meth:`DualKernel._panel_table`); ``pair(..., with_error=True)``
reports the error estimate and the method of every pair.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import sympy as sp
from numba import njit, prange

from ..errors import AccuracyError, NotPositiveDefinite
from .panels import RHO_TOL, ZMAX, _rule as _panel_rule, pair as panel_pair
from .quadrature import hermite_functions
from .registry import get_phi, x as _x

KMAX = 320
NODES = 640
TOL = 1e-6
#: Hermite orders tabulated for every variance; higher ones only where the mass is not yet exhausted
FIRST_ROWS = 128
#: stop adding Hermite orders for a variance once the missing mass is below this fraction of <φ²>
MISS_TARGET = 1e-13
_PARITY_TOL = 1e-12
#: the tabulated <φ²> (node sum) may differ from the panel rule's by ALIAS_RTOL·tol of it
ALIAS_RTOL = 1e-2
#: c_k by panels (not Gauss–Hermite) when φ^(o) has a kink, or a feature narrower than GH_MIN_WIDTH standard
#: deviations (``Nonlinearity.features``: tanh, SiLU at variance > 256, softplus β = 20 at variance > 0.64;
#: at 1/16 SiLU at variance 1e2 took the Mehler sum at ρ = 1 with a bound of 6.4e-7 of the scale, not the panels)
GH_MIN_WIDTH = 1 / 64
#: widest panel (in standard deviations) when c_k is tabulated by panels: h_k, k <= KMAX, oscillates on ~π/√(2k)
HERMITE_PANEL = 0.25
#: variances whose Gauss–Hermite node sum aliases are tabulated again by panels (False: their pairs all go to the 2-D
#: panel rule, as before; benchmarks/bench_tanh_large_variance.py times the two in one process)
RETABULATE = True
#: panel-tabulated rows c_k(√v) kept per (φ, order) for reuse (~2.6 kB each; the store is emptied when full)
PANEL_ROWS = 4096
#: rounding of the Mehler sum in the reported error, relative to √(<φ²>_a <φ²>_b) (KMAX terms of it)
ROUNDING = KMAX * np.finfo(float).eps


class PairEstimate(NamedTuple):
    """:meth:`DualKernel.pair` with ``with_error=True``: value, absolute error estimate and the method used
    per pair ("mehler", "panels" or "parity"); arrays of the broadcast shape, or scalars."""

    value: np.ndarray | float
    error: np.ndarray | float
    method: np.ndarray | str


@njit(cache=True)
def _mehler(Da, Ta, ia, Db, Tb, ib, rho, step, off, stop2):
    """(ρ^off Σ_j (ρ^step)^j Da[ia,j] Db[ib,j], squared remainder bound)."""
    r = rho if step == 1 else rho * rho
    s = 0.0
    pw = 1.0
    M = Da.shape[1]
    for j in range(M):
        s += pw * Da[ia, j] * Db[ib, j]
        pw *= r
        if (j & 7) == 7:
            bound2 = pw * pw * Ta[ia, j + 1] * Tb[ib, j + 1]
            if bound2 <= stop2:
                return (rho * s if off == 1 else s), bound2
    bound2 = pw * pw * Ta[ia, M] * Tb[ib, M]
    return (rho * s if off == 1 else s), bound2


@njit(cache=True)
def _rho(c, sa, sb):
    """Correlation (0 for a zero variance); nan marks |ρ| > 1 + RHO_TOL or c ≠ 0 at zero variance."""
    den = sa * sb
    if den == 0.0:
        return 0.0 if c == 0.0 else np.nan
    rho = c / den
    if rho > 1.0:
        return 1.0 if rho <= 1.0 + RHO_TOL else np.nan
    if rho < -1.0:
        return -1.0 if rho >= -1.0 - RHO_TOL else np.nan
    return rho


@njit(cache=True, parallel=True)
def _block_kernel(Da, Ta, ia, sa, Na, Db, Tb, ib, sb, Nb, c12, step, off, stop2, tol2, symmetric, out, bad):
    """out[i,j] for all pairs (upper triangle mirrored if symmetric); bad[i,j] marks a pair whose
    remainder bound exceeds tol·√(<φ²>_a <φ²>_b) (Na, Nb: <φ²> per variance) or an invalid covariance."""
    P1, P2 = c12.shape
    nloop = (P1 + 1) // 2 if symmetric else P1
    for tt in prange(nloop):
        t = np.int64(tt)
        for half in range(2 if symmetric else 1):
            i = t if half == 0 else np.int64(P1 - 1) - t
            if half == 1 and i == t:
                continue
            for j in range(i if symmetric else 0, P2):
                rho = _rho(c12[i, j], sa[i], sb[j])
                scale2 = Na[ia[i]] * Nb[ib[j]]
                if np.isnan(rho):
                    v, b2 = np.nan, np.inf
                else:
                    v, b2 = _mehler(Da, Ta, ia[i], Db, Tb, ib[j], rho, step, off, stop2 * scale2)
                out[i, j] = v
                if symmetric:
                    out[j, i] = v
                bad[i, j] = not b2 <= tol2 * scale2


@njit(cache=True, parallel=True)
def _pairs_kernel(Da, Ta, ia, sa, Na, Db, Tb, ib, sb, Nb, c12, step, off, stop2, tol2, out, bad, bound):
    """Elementwise version: pair n has sites ia[n], ib[n] and covariance c12[n]; bound[n] is the
    Cauchy–Schwarz bound on the truncated remainder."""
    for n in prange(c12.shape[0]):
        rho = _rho(c12[n], sa[n], sb[n])
        if np.isnan(rho):
            out[n], bad[n], bound[n] = np.nan, True, np.inf
        else:
            scale2 = Na[ia[n]] * Nb[ib[n]]
            v, b2 = _mehler(Da, Ta, ia[n], Db, Tb, ib[n], rho, step, off, stop2 * scale2)
            out[n] = v
            bad[n] = not b2 <= tol2 * scale2
            bound[n] = np.sqrt(b2)


@dataclass(frozen=True)
class HermiteTable:
    """c_k(√v) for k = 0..K (``coef[u, k]``), the missed mass m (``miss[u]``) and <φ²> (``norm2[u]``,
    the node sum Σ w_i φ(√v x_i)²) per variance v, and the parity of the function (1 odd, 0 even, None)."""

    coef: np.ndarray
    miss: np.ndarray
    parity: int | None
    variances: np.ndarray
    norm2: np.ndarray
    #: |node sum - panel rule's <φ²>| / <φ²> per variance (tabulation error of the c_k, see :meth:`pair`)
    alias: np.ndarray
    #: ‖c - c'‖ per variance, c' the coefficients by the embedded Gauss rule (panel tabulation; 0 for Gauss–Hermite)
    coef_err: np.ndarray


def _alias(total, exact):
    """|node sum − panel rule's <φ²>| / <φ²> per variance (0 where they agree exactly)."""
    with np.errstate(all="ignore"):
        return np.where(exact == total, 0.0, np.abs(total - exact) / np.abs(exact))


class DualKernel:
    """<φ^(o1)(u) φ^(o2)(v)> by the Mehler expansion; one instance per (phi.key, kmax, nodes, tol).

    ``kmax``: highest Hermite order K; ``nodes``: Gauss–Hermite nodes N used to tabulate
    c_k (N ≥ 2K recommended); ``tol``: absolute accuracy target — a pair whose truncation
    bound exceeds it raises ValueError (measured errors stay well below the bound).
    """

    _instances: dict = {}

    def __new__(cls, phi, kmax: int = KMAX, nodes: int = NODES, tol: float = TOL):
        phi = get_phi(phi)
        key = (phi.key, int(kmax), int(nodes), float(tol))
        inst = cls._instances.get(key)
        if inst is None:
            if not 1 <= kmax < nodes:
                raise ValueError(f"need 1 <= kmax < nodes, got kmax={kmax}, nodes={nodes}")
            inst = super().__new__(cls)
            inst.phi, inst.kmax, inst.nodes, inst.tol = phi, int(kmax), int(nodes), float(tol)
            inst._funcs, inst._cache = {}, {}
            cls._instances[key] = inst
        return inst

    # ------------------------------------------------------------------ tabulation
    def _func(self, order: int):
        if order not in self._funcs:
            expr = self.phi.expr if order == 0 else self.phi.derivative(order)
            if expr.has(sp.DiracDelta):
                raise ValueError(f"derivative {order} of phi {self.phi.name!r} is a distribution")
            self._funcs[order] = sp.lambdify(_x, self.phi.numeric(order), modules=["scipy", "numpy"])
        return self._funcs[order]

    def parity(self, order: int = 0):
        """1 if φ^(order) is odd, 0 if even, None otherwise (tested on the nodes at three scales)."""
        key = ("parity", order)
        if key not in self._cache:
            x, _ = hermite_functions(self.nodes)
            arg = np.multiply.outer(x, [0.7, 1.3, 2.9])
            with np.errstate(all="ignore"):
                F = np.broadcast_to(np.asarray(self._func(order)(arg), dtype=float), arg.shape)
            scale = max(float(np.nanmax(np.abs(F))), 1e-300)
            odd = np.nanmax(np.abs(F + F[::-1])) <= _PARITY_TOL * scale
            even = np.nanmax(np.abs(F - F[::-1])) <= _PARITY_TOL * scale
            self._cache[key] = 1 if odd else 0 if even else None
        return self._cache[key]

    def _basis(self, parity):
        """Nodes x_i and the rows V[k,i]V[0,i] (k of the given parity) used for tabulation.

        With a parity only x_i > 0 is kept (weight doubled); nodes with V[0,i] < 1e-160 are
        dropped and entries < 1e-200 flushed to 0 (subnormal numbers make BLAS ~10x slower).
        """
        key = ("basis", parity)
        if key not in self._cache:
            x, V = hermite_functions(self.nodes)
            keep = V[0] >= 1e-160
            fold = np.ones_like(x)
            if parity is not None:
                keep &= x >= 0
                fold = np.where(x > 0, 2.0, 1.0)
                rows = np.arange(parity, self.kmax + 1, 2)
            else:
                rows = np.arange(self.kmax + 1)
            w0 = (V[0] * fold)[keep]
            basis = V[rows][:, keep] * w0
            basis[np.abs(basis) < 1e-200] = 0.0
            w_total = V[0, keep] * w0
            w_total[w_total < 1e-300] = 0.0
            self._cache[key] = (x[keep], np.ascontiguousarray(basis), w_total)
        return self._cache[key]

    def table(self, variances, order: int = 0) -> HermiteTable:
        """Coefficients c_k(√v), k = 0..K, for each variance v (rows), and the missed mass: by the Gauss–Hermite
        nodes (:meth:`_hermite_table`) or, for a kinked or narrow φ(√v x), by panels (:meth:`_panel_table`).
        """
        variances = np.asarray(variances, dtype=float).ravel()
        parity = self.parity(order)
        narrow = min(w for _, w in self.phi.features(order))
        by_panels = np.sqrt(variances) * GH_MIN_WIDTH > narrow
        if self.phi.kinks(order):
            by_panels[:] = True
        coef, total = np.zeros((variances.size, self.kmax + 1)), np.zeros(variances.size)
        coef_err, lost = np.zeros(variances.size), np.zeros(variances.size, dtype=bool)
        # the node sum must match <φ²> of the panel rule: else the nodes alias φ(√v x) (tanh from variance ~16 on,
        # kinks, sin at large v) and the coefficients are wrong although Parseval holds on the nodes; such
        # variances are tabulated again by panels (before, every pair at them went to the 2-D panel rule:
        # tanh at variance 16-4096, ~70 ms a pair)
        exact = panel_pair(self.phi, variances, variances, variances, (order, order))[0]
        hermite = ~by_panels
        if hermite.any():
            coef[hermite], total[hermite], coef_err[hermite], lost[hermite] = \
                self._hermite_table(variances[hermite], order, parity)
            if RETABULATE:
                by_panels |= hermite & ~(_alias(total, exact) <= ALIAS_RTOL * self.tol)
        if by_panels.any():
            coef[by_panels], total[by_panels], coef_err[by_panels], lost[by_panels] = \
                self._panel_table(variances[by_panels], order, parity)
        alias = _alias(total, exact)
        miss = total - np.sum(coef * coef, axis=1)
        miss = np.maximum(miss, 0.0) + 1e-15 * total
        lost |= ~(alias <= ALIAS_RTOL * self.tol)
        miss[lost], total[lost] = np.inf, np.nan  # nan scale: every pair of it is refused by the Mehler sum
        return HermiteTable(coef, miss, parity, variances, total, alias, coef_err)

    def _hermite_table(self, variances, order, parity):
        """(c_k, node sum <φ²>, 0, lost) by the N-node Gauss–Hermite rule; ``lost``: φ not finite on the nodes."""
        xs, basis, w_total = self._basis(parity)
        K = self.kmax
        rows = np.arange(K + 1) if parity is None else np.arange(parity, K + 1, 2)
        arg = np.multiply.outer(xs, np.sqrt(variances))
        with np.errstate(all="ignore"):
            F = np.broadcast_to(np.asarray(self._func(order)(arg), dtype=float), arg.shape)
        lost = ~np.isfinite(F).all(axis=0)  # overflow on the nodes: these variances go to the panel rule
        F = np.where(lost[None, :], 0.0, F)
        coef = np.zeros((variances.size, K + 1))
        total = w_total @ (F * F)
        # orders 0..FIRST_ROWS for all variances; the others only for the variances whose
        # missing mass is still above MISS_TARGET·<φ²>
        head = rows <= FIRST_ROWS
        coef[:, rows[head]] = (basis[head] @ F).T
        miss = total - np.sum(coef * coef, axis=1)
        more = np.nonzero(miss > MISS_TARGET * total)[0]
        if more.size and not head.all():
            coef[np.ix_(more, rows[~head])] = (basis[~head] @ F[:, more]).T
        return coef, total, np.zeros(variances.size), lost

    def _panel_table(self, variances, order, parity=None):
        """(c_k, <φ²>, ‖c_k(K15) - c_k(G7)‖, lost) by graded Gauss–Kronrod panels in x ~ N(0, 1), split at
        the kinks p/a of φ^(order)(a x) (graded by their widths, :func:`symfield.gauss.panels._rule`) and at
        every HERMITE_PANEL: Gauss–Hermite nodes converge only algebraically across a kink and slowly across
        a feature narrower than their spacing (measured with 640 nodes: ReLU's c_k, and softplus β = 20 at
        variance 1e4, off by ~1e-4 of √<φ²>, while the node sum <φ²> of the smoother φ² agreed)."""
        K = self.kmax
        grid = np.arange(-ZMAX, ZMAX + HERMITE_PANEL / 2, HERMITE_PANEL)
        pts, ws = (np.array([f[i] for f in self.phi.features(order)]) for i in (0, 1))
        f = self.phi.numeric_function(order)
        coef, total, err = np.zeros((variances.size, K + 1)), np.zeros(variances.size), np.zeros(variances.size)
        lost = np.zeros(variances.size, dtype=bool)
        roots = np.sqrt(np.arange(K + 2))
        rows = self._cache.setdefault(("panel rows", order), {})
        for u, v in enumerate(variances):
            if float(v) in rows:  # an RNN reads the variances of each time in ~T blocks
                coef[u], total[u], err[u], lost[u] = rows[float(v)]
                continue
            if len(rows) >= PANEL_ROWS:
                rows.clear()
            a = np.sqrt(v)
            p, w = (pts / a, ws / a) if a > 0 else (pts[:0], ws[:0])
            z, wk, wg, _ = _panel_rule(0.0, 1.0, np.concatenate([p, grid]),
                                       np.concatenate([w, np.full(grid.size, 4 * ZMAX)]))
            z, wk, wg = z.ravel(), wk.ravel(), wg.ravel()
            fz = f(a * z)
            if not np.all(np.isfinite(fz)):
                lost[u] = True
                continue
            H = np.empty((K + 1, z.size))
            H[0] = 1.0
            if K:
                H[1] = z
            for k in range(1, K):
                H[k + 1] = (z * H[k] - roots[k] * H[k - 1]) / roots[k + 1]
            coef[u] = H @ (wk * fz)
            err[u] = np.linalg.norm(coef[u] - H @ (wg * fz))
            total[u] = wk @ (fz * fz)
            rows[float(v)] = (coef[u].copy(), total[u], err[u], False)
        return coef, total, err, lost

    @staticmethod
    def _compress(t1: HermiteTable, t2: HermiteTable):
        """Common parity selection: (D1, T1, N1, D2, T2, N2, step, off) or None if the sum vanishes."""
        p1, p2 = t1.parity, t2.parity
        if p1 is not None and p2 is not None and p1 != p2:
            return None
        par = p1 if p1 is not None else p2
        step, off = (1, 0) if par is None else (2, par)
        out = []
        for t in (t1, t2):
            D = np.ascontiguousarray(t.coef[:, off::step])
            tail = np.cumsum((D * D)[:, ::-1], axis=1)[:, ::-1]
            T = np.empty((D.shape[0], D.shape[1] + 1))
            T[:, :-1] = tail + t.miss[:, None]
            T[:, -1] = t.miss
            out += [D, T, np.ascontiguousarray(t.norm2)]
        return (*out, step, off)

    def _prepare(self, d1, d2, orders):
        for name, d in (("variance d1", d1), ("variance d2", d2)):
            if not np.all(np.isfinite(d)):
                raise ValueError(f"{name} contains NaN or inf")
            if np.any(d < 0):
                raise ValueError(f"{name} is negative: {d[d < 0][0]:.6g}")
        o1, o2 = (int(o) for o in orders)
        if o1 == o2:
            uniq, inv = np.unique(np.concatenate([d1, d2]), return_inverse=True)
            t = self.table(uniq, o1)
            t1 = t2 = t
            i1, i2 = inv[:d1.size], inv[d1.size:]
        else:
            u1, i1 = np.unique(d1, return_inverse=True)
            u2, i2 = np.unique(d2, return_inverse=True)
            t1, t2 = self.table(u1, o1), self.table(u2, o2)
        return t1, t2, i1.astype(np.int64), i2.astype(np.int64)

    @staticmethod
    def _tabulation_error(t1: HermiteTable, t2: HermiteTable, i1, i2):
        """Error of Σ ρ^k c_k d_k from the tabulated coefficients: ‖δc‖ √<g²> + √<f²> ‖δd‖ (Cauchy–Schwarz,
        δ from the panel tabulation) plus (alias_a + alias_b + ROUNDING) √(<f²><g²>)."""
        n1, n2 = np.abs(t1.norm2[i1]), np.abs(t2.norm2[i2])
        return (t1.coef_err[i1] * np.sqrt(n2) + np.sqrt(n1) * t2.coef_err[i2]
                + (t1.alias[i1] + t2.alias[i2] + ROUNDING) * np.sqrt(n1 * n2))

    def _fallback(self, c11, c22, c12, orders) -> tuple[np.ndarray, np.ndarray]:
        """Pairs the Mehler sum cannot certify: (value, error estimate) of the graded panels
        (:mod:`symfield.gauss.panels`), accepted if the estimate is within tol·√(<φ^(o1)²>_c11 <φ^(o2)²>_c22),
        else AccuracyError."""
        value, err = panel_pair(self.phi, c11, c22, c12, orders)
        n1 = panel_pair(self.phi, c11, c11, c11, (orders[0],) * 2)[0]
        n2 = panel_pair(self.phi, c22, c22, c22, (orders[1],) * 2)[0]
        over = ~(err <= self.tol * np.sqrt(np.abs(n1 * n2)))
        if over.any():
            k = int(np.nonzero(over)[0][0])
            raise AccuracyError(f"<phi phi> of phi {self.phi.name!r} (orders {tuple(orders)}) cannot reach "
                             f"{self.tol:g} (relative to its scale) at c11={c11[k]:.6g}, c22={c22[k]:.6g}, "
                             f"c12={c12[k]:.6g}: the Mehler sum does not converge and the panel rule's error "
                             f"estimate is {err[k]:.3g}")
        return value, err

    # ------------------------------------------------------------------ public API
    def pair_block(self, d1, d2, c12, symmetric: bool = False, orders=(0, 0)) -> np.ndarray:
        """K[i,j] = <φ^(o1)(u_i) φ^(o2)(v_j)>, Var u_i = d1[i], Var v_j = d2[j], Cov = c12[i,j].

        ``symmetric=True``: d1 is d2 and c12 is symmetric; only the upper triangle is computed.
        """
        d1 = np.ascontiguousarray(d1, dtype=float).ravel()
        d2 = np.ascontiguousarray(d2, dtype=float).ravel()
        c12 = np.ascontiguousarray(c12, dtype=float)
        if c12.shape != (d1.size, d2.size):
            raise ValueError(f"c12 has shape {c12.shape}, expected {(d1.size, d2.size)}")
        if symmetric and (d1.size != d2.size or orders[0] != orders[1]):
            raise ValueError("symmetric=True needs d1 == d2 (same length) and equal orders")
        if not np.all(np.isfinite(c12)):
            raise ValueError("c12 contains NaN or inf")
        t1, t2, i1, i2 = self._prepare(d1, d2, orders)
        comp = self._compress(t1, t2)
        if comp is None:
            return np.zeros(c12.shape)
        D1, T1, N1, D2, T2, N2, step, off = comp
        out = np.empty(c12.shape)
        bad = np.zeros(c12.shape, dtype=np.bool_)
        _block_kernel(D1, T1, i1, np.sqrt(d1), N1, D2, T2, i2, np.sqrt(d2), N2, c12, step, off,
                      (self.tol * 1e-4) ** 2, self.tol ** 2, bool(symmetric), out, bad)
        if t1.coef_err.any() or t2.coef_err.any():
            tab = self._tabulation_error(t1, t2, i1[:, None], i2[None, :])
            bad |= ~(tab <= self.tol * np.sqrt(np.multiply.outer(N1[i1], N2[i2])))
            if symmetric:
                bad = np.triu(bad)
        if bad.any():
            i, j = np.nonzero(bad)
            out[i, j] = self._fallback(d1[i], d2[j], c12[i, j], orders)[0]
            if symmetric:
                out[j, i] = out[i, j]
        return out

    def pair(self, c11, c22, c12, orders=(0, 0), with_error: bool = False):
        """<φ^(o1)(u) φ^(o2)(v)> for broadcastable arrays (or scalars) c11, c22, c12.

        ``with_error=True`` returns a :class:`PairEstimate` (value, error, method) instead: per pair the
        method that was used ("mehler", "panels", or "parity" for a sum that vanishes by symmetry) and its
        error estimate, an absolute error:
            Mehler: the Cauchy–Schwarz bound on the truncated remainder plus the tabulation error
                    (:meth:`_tabulation_error`: |K15 - G7| of panel-tabulated c_k, and the relative difference
                    of the tabulated <φ²> and the panel rule's, plus rounding);
            panels: the panel rule's estimate (|K15 - G7| per panel, plus rounding).
        Measured on the accuracy grid (derivations/expectations_grid.py, tests/test_expectations_grid.py): the
        actual error against mpmath stays below the estimate.  Either way the call raises AccuracyError
        where the estimate would exceed ``tol`` √(<φ^(o1)²> <φ^(o2)²>)."""
        c11, c22, c12 = np.broadcast_arrays(*(np.asarray(c, dtype=float) for c in (c11, c22, c12)))
        shape = c12.shape
        d1, d2, c = (np.ascontiguousarray(v).ravel() for v in (c11, c22, c12))
        if not np.all(np.isfinite(c)):
            raise ValueError("c12 contains NaN or inf")
        t1, t2, i1, i2 = self._prepare(d1, d2, orders)
        comp = self._compress(t1, t2)
        out, err = np.zeros(c.size), np.zeros(c.size)
        method = np.full(c.size, "parity", dtype=object)
        if comp is not None:
            D1, T1, N1, D2, T2, N2, step, off = comp
            bad = np.zeros(c.size, dtype=np.bool_)
            _pairs_kernel(D1, T1, i1, np.sqrt(d1), N1, D2, T2, i2, np.sqrt(d2), N2, c, step, off,
                          (self.tol * 1e-4) ** 2, self.tol ** 2, out, bad, err)
            tab = self._tabulation_error(t1, t2, i1, i2)
            err += tab
            bad |= ~(tab <= self.tol * np.sqrt(N1[i1] * N2[i2]))
            method[:] = "mehler"
            if bad.any():
                out[bad], err[bad] = self._fallback(d1[bad], d2[bad], c[bad], orders)
                method[bad] = "panels"
        out, err, method = out.reshape(shape), err.reshape(shape), method.reshape(shape)
        if out.ndim == 0:
            out, err, method = float(out), float(err), str(method[()])
        return PairEstimate(out, err, method) if with_error else out

    def dpair(self, c11, c22, c12):
        """<φ'(u) φ'(v)> (= ∂<φφ>/∂c12 by Price's theorem)."""
        return self.pair(c11, c22, c12, orders=(1, 1))

    def dpair_block(self, d1, d2, c12, symmetric: bool = False) -> np.ndarray:
        """Block version of :meth:`dpair`."""
        return self.pair_block(d1, d2, c12, symmetric=symmetric, orders=(1, 1))


def dual_kernel(phi, **kw) -> DualKernel:
    """The (cached) :class:`DualKernel` of φ."""
    return DualKernel(phi, **kw)
