"""Moments of products of φ with their Price gradients, for the one-loop vertices.

For m ≤ 4 distinct sites with multiplicities k_i (a multiset of up to four sites),

    M(Σ) = < Π_i g_i(z_i) >,   g_i = φ^{k_i},   z ~ N(0, Σ)  (m×m),

and its gradient in the unordered covariance entries (Price's theorem, theory Sec. 5.1)

    ∂M/∂Σ_ij = < g_i' g_j' Π_{l≠i,j} g_l >   (i < j),     ∂M/∂Σ_ii = ½ < g_i'' Π_{l≠i} g_l >,

with g' = k φ^{k-1} φ' and g'' = k(k-1) φ^{k-2} φ'² + k φ^{k-1} φ''.  Output columns: value, then
(i, j) for i <= j in row-major order.

Methods (``moments(..., method=)``; "auto" chooses: the closed form where there is one, else below):

* ``"closed"`` (four factors, φ = c·erf(κx), a sum of such, or φ = c·x): the multiset is expanded to four unit
  factors on the 4×4 covariance Σₑ (a site of multiplicity k repeated k times).  For erf,
  erf(κz) = <sign(z + η)>_η with η ~ N(0, 1/(2κ²)) independent per factor, so
  M = c⁴ G(Σₑ + I/(2κ²)) with the orthant moment G(S) = <Π_p sign(y_p)>, y ~ N(0, S) — a
  positive-definite S at every Σ, also singular ones (identical or antipodal sites).  With R the
  correlation matrix of S, Price's theorem for sign (sign' = 2δ) gives

      ∂G/∂ρ_pq = (4/π²) asin(ρ_rs·pq) / √(1 - ρ_pq²)        ({r, s} the other two factors,
                                                              ρ_rs·pq their partial correlation),

  the closed-form gradient, and, along R(t) = 1 + t(R - 1) with s = asin(t ρ_pq),

      G(R) = (4/π²) Σ_{p<q} ∫_0^{asin ρ_pq} asin(ρ_rs·pq(R(sin s / ρ_pq))) ds,

  a smooth one-dimensional integral per pair, done by Gauss–Legendre with growing orders (LEGENDRE_ORDERS)
  until two agree to ``CLOSED_TOL`` (:func:`sign_moments`).  A sum φ = Σ_j c_j erf(κ_j x) (e.g. the
  erf sum standing for tanh, :mod:`symfield.gauss.erf_sums`) is multilinear in the factors: M is the sum
  over the term j_p of each factor of Π_p c_{j_p} G(Σₑ + diag(1/(2κ_{j_p}²))), K⁴ orthant moments for K
  terms (fewer for repeated sites: a site's copies are symmetric), PD and scale-free like one erf.
  For linear φ, Isserlis.
* ``"quadrature"``: one tensor-product Gauss–Hermite sweep (z = L x), compiled per φ into a
  generated module.  L is a pivoted Cholesky factor that drops directions of variance below
  ``NULL_TOL``·max(Σ_ii): a level whose pivot is dropped is integrated with the single node x = 0,
  so a (near-)singular Σ costs and is integrated as the lower-dimensional integral it is.  Its node count grows
  with √(largest variance) (:func:`nodes_for`); with ``with_error`` it is checked against two-thirds of n.
* ``"nested"``: nested conditional integration z = L x on graded Gauss–Kronrod panels placed at the features of
  each site given the outer coordinates (:mod:`symfield.gauss.nested`): nodes per level grow like log σ, error
  estimate from the embedded Gauss rule, the absolute moment <|Π f|> with it.  Three or four sites: the innermost
  level from a per-covariance Chebyshev table of its integral in its mean (``nested.tabulated_level``, with an
  interpolation error estimate), so the tensor product has one level fewer: (nodes per level)^(m-1) leaves.
  A jump of φ' (hardtanh, ReLU) puts δ terms c δ(x - a) into φ'' (:func:`delta_atoms`): each adds to the diagonal
  column ½<g_i'' Π g_j> the (m-1)-site conditional integral ½ c k φ(a)^(k-1) N(a; 0, Σ_ii) <Π_{j≠i} g_j | z_i = a>
  (:func:`_atom_problems`); Gauss–Hermite refuses such φ.
* "auto" without a closed form (:func:`_auto_moments`): one or two sites, the nested rule; three or four,
  Gauss–Hermite at CHECK_NODES (value and check order) where φ has no kink and its nodes resolve φ's features
  (GH_RESOLUTION), and the nested rule where not or where the check fails, if its predicted cost is within
  NESTED_BUDGET.  Every column must be within TOL of its absolute moment, else AccuracyError.
  ``with_error=True`` returns a :class:`MomentEstimate` (values, error estimates, method per covariance).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations_with_replacement
from math import factorial

import numpy as np
import sympy as sp
from numba import njit, prange

from ..codegen import load_module, module_text, scalar_source
from ..codegen.builder import IMPORTS
from ..resources import check_time
from ..errors import AccuracyError, ConvergenceError, NonFiniteError, NotPositiveDefinite, NotSupportedError, ResourceError
from . import nested
from .price import _gaussian_derivative
from .quadrature import cholesky_factors, hermite_nodes
from .registry import Nonlinearity, _derivative, _kinks, get_phi, x as _x

#: Gauss-Hermite nodes per dimension for unit variance; the 3-site integrals carry the K' vertex and
#: need the most (erf, g = 2, C ≈ 2.6: mean shift within 0.3 % of 150/100/64/20 nodes)
DEFAULT_NODES = {1: 120, 2: 80, 3: 48, 4: 12}
#: nodes grow like the width of the integrand: n = max(NODE_MIN, ceil(NODE_SCALE sqrt(largest variance)))
NODE_SCALE = {1: 75, 2: 50, 3: 30, 4: 8}
NODE_MIN = {1: 40, 2: 24, 3: 16, 4: 8}
#: documented maximum nodes per dimension (cost nodes^m per site set; each is reached at a largest
#: variance of about 150-2800, far above inputs of ordinary size); more raises ResourceError
NODE_MAX = {1: 4000, 2: 1200, 3: 400, 4: 100}


def nodes_for(m: int, variance, argument: str = "X", polynomial: bool = False) -> np.ndarray:
    """Nodes per dimension for m-site moments whose largest variance is ``variance`` (array):
    n = max(NODE_MIN, ceil(NODE_SCALE sqrt(variance))), at most NODE_MAX (else ResourceError naming
    ``argument``, the input whose scale sets the variances).  A ``polynomial`` φ of degree d is
    integrated exactly by any n > 2d at every scale (the rescaled problem): n is capped, not refused."""
    variance = np.asarray(variance, float)
    with np.errstate(invalid="ignore"):  # a negative variance gives nan: refused below
        need = np.maximum(NODE_MIN[m], np.ceil(NODE_SCALE[m] * np.sqrt(variance)))
    if not np.all(np.isfinite(need)):
        raise NonFiniteError(f"the {m}-site moments got a non-finite or negative variance "
                             f"({variance[~np.isfinite(need)].ravel()[0]!r}); check the scale of {argument}")
    if polynomial:
        need = np.minimum(need, NODE_MAX[m])
    if np.any(need > NODE_MAX[m]):
        worst = float(np.max(variance))
        raise ResourceError(f"the {m}-site Gauss-Hermite moments would need {np.max(need):.3g} nodes per dimension "
                            f"(largest variance {worst:.3g}; cost ~ nodes^{m} per site set), above the maximum "
                            f"NODE_MAX[{m}] = {NODE_MAX[m]}; the variances grow with the input scale: rescale "
                            f"{argument} (or the weight/bias variances)")
    return need.astype(int)
MAX_MULTIPLICITY = 4

_SITE = '''
@njit(cache=True, error_model="numpy", inline="always")
def site(z, k):
    """(g, g', g'') of g = phi(z)**k."""
    p = phi0(z)
    d = phi1(z)
    e = phi2(z)
    if k == 1:
        return p, d, e
    if k == 2:
        return p * p, 2.0 * p * d, 2.0 * d * d + 2.0 * p * e
    if k == 3:
        return p * p * p, 3.0 * p * p * d, 6.0 * p * d * d + 3.0 * p * p * e
    return p * p * p * p, 4.0 * p * p * p * d, 12.0 * p * p * d * d + 4.0 * p * p * p * e
'''


def pair_columns(m: int) -> list[tuple[int, int]]:
    """The (i, j), i <= j, of the gradient columns 1.. in output order."""
    return [(i, j) for i in range(m) for j in range(i, m)]


def _product(factors):
    return " * ".join(factors) if factors else "1.0"


def _kernel_source(m: int) -> str:
    """``moments{m}(L, kk, x, w, out, absout)``: nested loops, one level per site (z_l formed at level l);
    ``absout`` the same sums of |w f| (the absolute moments, the scale of the tolerance)."""
    cols = pair_columns(m)
    acc = ["a_v"] + [f"a_{i}{j}" for i, j in cols]
    lines = ["", '@njit(cache=True, error_model="numpy", parallel=True)', f"def moments{m}(L, kk, x, w, out, absout):",
             "    n = x.shape[0]", "    for b in prange(L.shape[0]):"]
    pad = " " * 8
    lines += [f"{pad}l{r}{c} = L[b, {r}, {c}]" for r in range(m) for c in range(r + 1)]
    lines += [f"{pad}k{r} = kk[b, {r}]" for r in range(m)]
    lines += [f"{pad}{a} = 0.0" for a in acc] + [f"{pad}b{a[1:]} = 0.0" for a in acc]
    for lev in range(m):
        z = f"l00 * xv" if lev == 0 else f"q{lev}_{lev - 1} + l{lev}{lev} * xv"
        wv = "w[i0]" if lev == 0 else f"w{lev - 1} * w[i{lev}]"
        # a dropped pivot (l_ll = 0: z_l fixed by the earlier levels) is integrated with one node
        lines += [f"{pad}n{lev} = n if l{lev}{lev} != 0.0 else 1",
                  f"{pad}for i{lev} in range(n{lev}):", f"{pad}    xv = x[i{lev}] if n{lev} > 1 else 0.0",
                  f"{pad}    w{lev} = {wv} if n{lev} > 1 else {wv.replace(f'w[i{lev}]', '1.0')}",
                  f"{pad}    g{lev}, d{lev}, e{lev} = site({z}, k{lev})"]
        for d in range(lev + 1, m):
            prev = "" if lev == 0 else f"q{d}_{lev - 1} + "
            lines.append(f"{pad}    q{d}_{lev} = {prev}l{d}{lev} * xv")
        pad += " " * 4
    W = f"w{m - 1}"
    g = [f"g{i}" for i in range(m)]
    terms = [_product(g)]
    for i, j in cols:
        if i == j:
            terms.append("0.5 * " + _product([f"e{i}"] + [g[l] for l in range(m) if l != i]))
        else:
            terms.append(_product([f"d{i}", f"d{j}"] + [g[l] for l in range(m) if l not in (i, j)]))
    for a, term in zip(acc, terms):
        lines += [f"{pad}t = {W} * {term}", f"{pad}{a} += t", f"{pad}b{a[1:]} += abs(t)"]
    lines += [f"        out[b, {c}] = {a}" for c, a in enumerate(acc)]
    lines += [f"        absout[b, {c}] = b{a[1:]}" for c, a in enumerate(acc)]
    return "\n".join(lines) + "\n"


def moments_source(phi: Nonlinearity) -> str:
    """The generated module of φ: φ, φ', φ'' in their overflow-free form (``Nonlinearity.numeric``), ``site``,
    the Gauss–Hermite kernels ``moments1`` .. ``moments4`` and the nested graded-panel kernel ``nested``."""
    funcs = [scalar_source(f"phi{k}", ["x"], _function_part(phi.numeric(k), atoms=k == 2), inline=True)
             for k in range(3)]
    return module_text("symfield.gauss.moments", f"phi(x) = {phi.expr}",
                       [("phi", "\n\n".join(funcs)), ("site", _SITE)] +
                       [(f"moments{m}", _kernel_source(m)) for m in range(1, 5)] + [("nested", nested.KERNEL)],
                       imports=IMPORTS + nested.IMPORTS)


def _function_part(expr: sp.Expr, atoms: bool = False) -> sp.Expr:
    """``expr`` without its terms c(x)·δ(a(x)) whose coefficient vanishes where a = 0 (softsign's φ'' has
    x·δ(x) = 0); a δ with a non-zero weight (ReLU's φ'' = δ(x)) is a distribution: NotSupportedError, unless
    ``atoms`` (φ'' of a φ whose φ' jumps): then every δ term is dropped, its weight being the jump of φ' that
    :func:`delta_atoms` returns and the nested rule integrates on its own."""
    if not expr.has(sp.DiracDelta):
        return expr
    if atoms:
        return expr.subs({d: 0 for d in expr.atoms(sp.DiracDelta)})
    kept = []
    for term in sp.Add.make_args(sp.expand(expr)):
        deltas = term.atoms(sp.DiracDelta)
        if not deltas:
            kept.append(term)
            continue
        (delta,) = deltas if len(deltas) == 1 else (None,)
        try:  # a δ whose root SymPy cannot locate (hardtanh's δ(Min(1, x) + 1)) is kept: refused below
            roots = sp.solve(delta.args[0], _x) if delta is not None and len(delta.args) == 1 else None
        except NotImplementedError:
            roots = None
        if not roots or any(sp.simplify(term.subs(delta, 1).subs(_x, r)) != 0 for r in roots):
            raise NotSupportedError(f"the moments need phi, phi' and phi'' as functions; {expr} contains the "
                                    f"distribution {term} (a kink of phi or a jump of phi')")
    return sp.Add(*kept)


#: functions that make an expression piecewise
_PIECEWISE = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise)


def _pieces(expr: sp.Expr) -> tuple:
    """(branch, condition) pairs of ``expr`` as one folded Piecewise (one pair (expr, True) if it has no pieces)."""
    pw = sp.piecewise_fold(expr.rewrite(sp.Piecewise)) if expr.has(*_PIECEWISE) else expr
    return pw.args if isinstance(pw, sp.Piecewise) else ((pw, sp.true),)


def _one_sided(expr: sp.Expr, points: tuple, k: int, side: int):
    """The value at points[k] of the branch of ``expr`` (as a Piecewise) active just right (side +1) or left (-1)
    of it: the branch holding at the midpoint to the neighbouring point (or ±1/2 past the last), evaluated at the
    point itself; None if no branch holds or its value is not finite."""
    p = points[k]
    q = (p + points[k + side]) / 2 if 0 <= k + side < len(points) else p + side / 2
    branches = _pieces(expr)
    for branch, cond in branches:
        if sp.sympify(cond).subs(_x, q) == sp.true:
            value = complex(sp.N(branch.subs(_x, p), 20))
            return value.real if np.isfinite(value.real) and value.imag == 0 else None
    return None


@lru_cache(maxsize=None)
def _delta_atoms(expr: sp.Expr) -> tuple[tuple[float, float], ...]:
    d1 = _derivative(expr, 1)
    for f, what in ((expr, "phi"), (d1, "phi'")):
        pts = _kinks(f)
        jumps = [(p, _one_sided(f, pts, k, 1), _one_sided(f, pts, k, -1)) for k, p in enumerate(pts)]
        if any(r is None or l is None for _, r, l in jumps):
            raise NotSupportedError(f"cannot evaluate the one-sided limits of {what} = {f} at its kinks {list(pts)}: "
                                    "the moments need its jumps (the delta terms of phi'')")
        if what == "phi":
            if any(abs(r - l) > 1e-15 * max(1.0, abs(r), abs(l)) for _, r, l in jumps):
                raise NotSupportedError(f"phi = {expr} jumps at x = {[p for p, r, l in jumps if r != l]}: phi' is a "
                                        "distribution, the moments need phi and phi' as functions")
            continue
        return tuple((float(p), float(r - l)) for p, r, l in jumps if r != l)
    return ()


def delta_atoms(phi: Nonlinearity) -> tuple[tuple[float, float], ...]:
    """The δ terms of φ'' as (a, c) pairs, φ'' = (function) + Σ c δ(x - a): the jumps c = φ'(a+) - φ'(a-) of φ' at
    its kinks a (hardtanh: (-1, 1), (1, -1); ReLU: (0, 1); softsign: none, φ' is continuous).  NotSupportedError
    where φ itself jumps or a one-sided limit cannot be evaluated."""
    return _delta_atoms(phi.expr)


@lru_cache(maxsize=None)
def _piecewise_polynomial(expr: sp.Expr) -> bool:
    """φ is a polynomial between its kinks (hardtanh, ReLU, leaky ReLU): its kinks are its only features."""
    if not expr.has(*_PIECEWISE):
        return False
    return all(e.is_polynomial(_x) for e, _ in _pieces(expr))


_MODULES: dict = {}  #: generated modules by φ content (``phi.key``), not by φ object: a new spec re-derives nothing


def _module(key: str, phi: Nonlinearity):
    if key not in _MODULES:
        _MODULES[key] = load_module(moments_source(phi), f"moments_{key}")
    return _MODULES[key]


#: relative variance (of the largest) below which a pivot is a null direction of Σ and dropped
NULL_TOL = 1e-12
#: residuals more negative than this (relative) mean Σ is not a covariance
PSD_TOL = 1e-9


def _pivoted(cov: np.ndarray, null_tol: float, first: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(order, L) of one covariance: pivots by largest residual variance (site ``first`` first, if given), L (m, m)
    lower triangular in the permuted order, columns of pivots below null_tol·max Σ_ii set to zero."""
    A = np.array(cov, dtype=float)
    m = len(A)
    scale = max(float(np.max(np.diag(A))), 0.0)
    order = np.arange(m)
    L = np.zeros((m, m))
    for k in range(m):
        forced = k == 0 and first is not None
        j = first if forced else k + int(np.argmax(np.diag(A)[k:]))
        A[[k, j]] = A[[j, k]]
        A[:, [k, j]] = A[:, [j, k]]
        L[[k, j]] = L[[j, k]]
        order[[k, j]] = order[[j, k]]
        piv = A[k, k]
        if piv <= null_tol * scale and not (forced and piv > 0):  # a forced first pivot is kept while positive
            rest = A[k:, k:]
            if np.max(np.abs(rest), initial=0.0) > PSD_TOL * max(scale, 1e-300) and scale > 0:
                raise NotPositiveDefinite(f"covariance is not positive semi-definite (residual "
                                          f"{np.min(np.diag(rest)):.3g} at scale {scale:.3g})")
            break
        L[k, k] = np.sqrt(piv)
        L[k + 1:, k] = A[k + 1:, k] / L[k, k]
        A[k + 1:, k + 1:] -= np.outer(L[k + 1:, k], L[k + 1:, k])
    return order, L


def _quadrature_moments(phi: Nonlinearity, covs: np.ndarray, kk: np.ndarray, n: int, absolute: bool = False):
    """The Gauss–Hermite method; (near-)singular Σ by the pivoted factor with dropped null pivots.
    ``absolute``: also the absolute moments <|Π f|> of the rule (returns (values, absolute moments))."""
    m = covs.shape[1]
    if delta_atoms(phi):
        raise NotSupportedError(f"phi'' of phi {phi.name!r} has delta terms (phi' jumps at "
                                f"{[a for a, _ in delta_atoms(phi)]}): Gauss-Hermite cannot integrate them; use "
                                "method='nested' or 'auto'")
    x, w = hermite_nodes(int(n))
    out = np.empty((covs.shape[0], 1 + m * (m + 1) // 2))
    absout = np.empty_like(out)
    if not covs.shape[0]:
        return (out, absout) if absolute else out
    L = np.array(cholesky_factors(covs))
    scale = np.max(np.diagonal(covs, axis1=1, axis2=2), axis=1)
    singular = np.nonzero(np.any(np.diagonal(L, axis1=1, axis2=2) ** 2 <= NULL_TOL * scale[:, None], axis=1))[0]
    kernel = getattr(_module(phi.key, phi), f"moments{m}")
    kernel(np.ascontiguousarray(L), kk, x, w, out, absout)
    if len(singular):  # permuted sites: integrate in pivot order, map the gradient columns back
        Lp, kp, back = _pivoted_stack(covs[singular], kk[singular])
        part, apart = np.empty((len(singular), out.shape[1])), np.empty((len(singular), out.shape[1]))
        kernel(Lp, kp, x, w, part, apart)
        out[singular] = np.take_along_axis(part, back, axis=1)
        absout[singular] = np.take_along_axis(apart, back, axis=1)
    return (out, absout) if absolute else out


def _pivoted_stack(covs: np.ndarray, kk: np.ndarray):
    """(L, multiplicities, back) in pivot order for each covariance (:func:`_pivoted`); ``back[b]`` picks the
    output columns of the original site order from those computed in pivot order."""
    B, m = covs.shape[:2]
    cols = {c: i for i, c in enumerate(pair_columns(m))}
    Lp, kp, back = np.empty((B, m, m)), np.empty((B, m), np.int64), np.empty((B, 1 + len(cols)), np.int64)
    for b in range(B):
        order, Lp[b] = _pivoted(covs[b], NULL_TOL)
        kp[b] = kk[b, order]
        inv = np.argsort(order)
        back[b] = [0] + [1 + cols[tuple(sorted((inv[i], inv[j])))] for i, j in pair_columns(m)]
    return Lp, kp, back


def _feature_table(phi: Nonlinearity) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points, widths, kink flags) of φ, φ', φ'' together (the factors g, g', g'' of a site): the narrowest
    width at each point (``Nonlinearity.features``), flagged where one of them has a kink.  A piecewise polynomial
    φ (hardtanh, ReLU) has its kinks only, of infinite width: a site's own factor is a polynomial between them (one
    breakpoint, no grading), an inner site's is graded over the smoothing width s/8 only (nested.level_rule)."""
    kinks = {p for order in range(3) for p in phi.kinks(order)}
    if _piecewise_polynomial(phi.expr):
        pts = np.array(sorted(kinks), float)
        return pts, np.full(len(pts), np.inf), np.ones(len(pts), bool)
    found: dict = {}
    for order in range(3):
        for p, w in phi.features(order):
            found[p] = min(found.get(p, w), w)
    pts = np.array(sorted(found), float)
    return pts, np.array([found[p] for p in pts]), np.array([p in kinks for p in pts])


#: largest predicted leaf count (:func:`symfield.gauss.nested.predicted_leaves`; three or four sites: without the
#: tabulated innermost level) of one covariance in the nested rule (~0.4-2 µs per leaf on one core of the shared
#: machine: 2e8 leaves ≈ 2-7 min); above it "auto" raises AccuracyError instead of running longer.  Generic
#: covariances, four sites at variance 1e4: GELU 6.9e7-7.9e7, hardtanh 5e7-1.15e8, softplus β = 20 1.75e8 (measured: 2.5e8 leaves
#: in 276 s at load 5-7, certified to 2e-11; the time estimate LEAF_OPERATIONS / RATE per leaf gave 350 s); 2e8,
#: not 1e8, so that the last returns; three sites <= 3.1e5 (nested.GRADE_MAX = 2)
NESTED_BUDGET = 2e8
#: largest predicted leaf count summed over all covariances of one call (the number of site sets grows with the
#: patterns and steps; ~2 µs per leaf: 1e10 ≈ 6 h on one core); above it ResourceError before integrating.
#: Configurable: ``moments(..., total_budget=)``, this constant, and the time limit (``symfield.set_time_limit``,
#: SYMFIELD_TIME_LIMIT; checked with LEAF_OPERATIONS per leaf)
NESTED_TOTAL_BUDGET = 1e10
#: floating-point operations per leaf of the nested rule for the time limit (~2 µs at resources.RATE = 1e9/s)
LEAF_OPERATIONS = 2000.0


def nested_moments(phi, covs: np.ndarray, kk: np.ndarray, base=nested.BASE, grade_max=nested.GRADE_MAX,
                   budget: float | None = None, tabled: bool | None = None, total_budget: float | None = None,
                   argument: str = "X"):
    """(values, error estimates, absolute moments <|Π f|>, leaf evaluations) of the columns of :func:`moments`
    by nested conditional integration on graded panels (:mod:`symfield.gauss.nested`), for (B, m, m)
    covariances (validated) and (B, m) multiplicities.  ``tabled`` (default: three or four sites): the innermost
    level from a per-covariance Chebyshev table of its integral (:func:`symfield.gauss.nested.tabulated_level`),
    one level fewer in the tensor product.  The δ terms of φ'' (:func:`delta_atoms`) enter the diagonal columns as
    the lower-dimensional integrals of :func:`_atom_problems`.  ``budget``: refuse (AccuracyError) covariances whose
    predicted leaf count exceeds it, before integrating; ``total_budget``: refuse (ResourceError naming ``argument``)
    a call whose predicted leaves summed over the covariances exceed it or whose time estimate exceeds the time
    limit (``resources.check_time``)."""
    phi = get_phi(phi)
    B, m = covs.shape[:2]
    ncol = 1 + m * (m + 1) // 2
    leaves = np.zeros(B, np.int64)
    if not B:
        return np.empty((B, ncol)), np.empty((B, ncol)), np.empty((B, ncol)), leaves
    main, atoms, rule, back = _problems(phi, covs, kk, base, grade_max, tabled)
    if budget is not None or total_budget is not None:
        need = _need(main, atoms, rule)
        total = float(np.sum(need))
        what = (f"the {m}-site moments of phi {phi.name!r} at {B} covariances ({total:.3g} predicted nested-rule "
                f"evaluations in total, at most {np.max(need):.3g} per covariance)")
        if total_budget is not None and not total <= total_budget:
            raise ResourceError(f"{what} exceed the total budget {total_budget:.3g} (moments(total_budget=...), "
                                f"symfield.gauss.moments.NESTED_TOTAL_BUDGET); the number of site sets grows with the "
                                f"patterns and steps: reduce {argument} (fewer patterns) or T, or rescale {argument}")
        check_time(total * LEAF_OPERATIONS, what, argument)
    if budget is not None:
        if np.any(need > budget):
            b = int(np.argmax(need))
            raise AccuracyError(f"the {m}-site moments of phi {phi.name!r} at the covariance with variances "
                                f"{np.diag(covs[b]).tolist()} cannot be certified to {TOL:g}: Gauss-Hermite fails "
                                f"its check and the scale-free nested rule would need {need[b]:.3g} evaluations "
                                f"(budget NESTED_BUDGET = {budget:.3g}); rescale X (or the weight/bias variances)")
    module = _module(phi.key, phi)
    parts, leaves = main.run(module, phi, rule)
    out, err, absval = (np.take_along_axis(a, back, axis=1) for a in parts)
    if atoms is not None:
        atoms.add_to(module, phi, rule, out, err, absval, leaves)
    return out, err, absval, leaves


def _problems(phi, covs, kk, base, grade_max, tabled):
    """(main problem, δ-term problems or None, rule, column map back to the site order) of :func:`nested_moments`."""
    B, m = covs.shape[:2]
    cholesky_factors(covs)  # validation: finite, symmetric, PSD
    Lp, kp, back = _pivoted_stack(covs, kk)
    main = _NestedProblem(Lp, kp, np.zeros((B, m)), m >= 3 if tabled is None else bool(tabled) and m >= 2)
    atoms = _atom_problems(phi, covs, kk, delta_atoms(phi), tabled)
    return main, atoms, (*_feature_table(phi), np.array(base, float), float(grade_max), *nested.rule()), back


def _need(main, atoms, rule) -> np.ndarray:
    need = main.predicted(rule)
    if atoms is not None and len(atoms.owner):
        need = need + np.bincount(atoms.owner, atoms.problem.predicted(rule), minlength=len(need))
    return need


def predicted_leaves(phi, covs, kk, tabled: bool | None = None) -> np.ndarray:
    """Predicted leaf evaluations of :func:`nested_moments` per covariance (the main integral and the δ-term
    problems; :func:`symfield.gauss.nested.predicted_leaves`), as checked against NESTED_BUDGET."""
    phi = get_phi(phi)
    covs, kk = np.asarray(covs, float), np.ascontiguousarray(kk, np.int64)
    main, atoms, rule, _ = _problems(phi, covs, kk, nested.BASE, nested.GRADE_MAX, tabled)
    return _need(main, atoms, rule)


@dataclass(frozen=True)
class _NestedProblem:
    """Integrals <Π_l f_l(z_l)>, z = mu + L x (L pivoted, lower triangular), by the nested kernel; ``tab``: the
    innermost level tabulated."""

    L: np.ndarray
    kk: np.ndarray
    mu: np.ndarray
    tab: bool

    @property
    def S(self) -> np.ndarray:
        """S[b, d, l]: residual standard deviation of z_d given x_0 .. x_l."""
        B, m = self.L.shape[:2]
        tail = np.cumsum((self.L ** 2)[:, :, ::-1], axis=2)[:, :, ::-1]
        return np.ascontiguousarray(np.sqrt(np.concatenate([tail[:, :, 1:], np.zeros((B, m, 1))], axis=2)))

    def predicted(self, rule) -> np.ndarray:
        fp, fw, fkink, base, grade_max, xk, _, _ = rule
        return nested.predicted_leaves(self.L, self.S, fp, fw, fkink, base, grade_max, xk,
                                       nested.max_breaks(self.L.shape[1], len(fp)), self.tab, self.mu)

    def run(self, module, phi, rule):
        """((values, errors, absolute moments) in pivot order (B, columns), leaves (B,))."""
        fp, fw, fkink, base, grade_max, xk, wk, wg = rule
        B, m = self.L.shape[:2]
        nbrk, S = nested.max_breaks(m, len(fp)), self.S
        if self.tab:
            table = nested.tabulated_level(module, self.L, S, self.kk, fp, fw, fkink, base, grade_max, xk, wk, wg,
                                           nbrk, self.mu)[:5]
        else:
            table = (np.zeros((B, 2)), np.zeros(B, np.int64), np.zeros((B, 1, 3)), np.zeros((B, 1, 3)),
                     np.zeros((B, 1, 3)))
        parts = [np.empty((B, 1 + m * (m + 1) // 2)) for _ in range(3)]
        leaves = np.zeros(B, np.int64)
        module.nested(self.L, S, self.mu, self.kk, nested.column_kinds(m), fp, fw, fkink, base, grade_max, xk, wk, wg,
                      nbrk, self.tab, *table, *parts, leaves)
        return parts, leaves


@dataclass(frozen=True)
class _AtomProblems:
    """The δ terms of the diagonal columns: ``problem`` (the other sites given z_i = a), its row's covariance
    ``owner``, output ``column`` and ``weight`` ½ c k φ(a)^(k-1) N(a; 0, Σ_ii); rows without other sites (m = 1) in
    ``alone`` (owner, column, weight)."""

    problem: _NestedProblem | None
    owner: np.ndarray
    column: np.ndarray
    weight: np.ndarray
    alone: tuple

    def add_to(self, module, phi, rule, out, err, absval, leaves):
        """Add the δ terms to the nested rule's columns (in place): value w·<Π_{j≠i} g_j | z_i = a>, error
        |w|·its error, absolute moment |w|·<|Π_{j≠i} g_j| | z_i = a>."""
        if self.problem is not None and len(self.owner):
            (val, e, ab), n = self.problem.run(module, phi, rule)
            for arr, part, scale in ((out, val, self.weight), (err, e, np.abs(self.weight)),
                                     (absval, ab, np.abs(self.weight))):
                np.add.at(arr, (self.owner, self.column), scale * part[:, 0])
            np.add.at(leaves, self.owner, n)
        owner, column, weight = self.alone
        np.add.at(out, (owner, column), weight)
        np.add.at(err, (owner, column), ROUNDING_ATOM * np.abs(weight))
        np.add.at(absval, (owner, column), np.abs(weight))


#: relative rounding of a δ term's weight ½ c k φ(a)^(k-1) N(a; 0, Σ_ii) (a few operations and an exp)
ROUNDING_ATOM = 64 * np.finfo(float).eps


def _atom_problems(phi, covs, kk, atoms, tabled) -> _AtomProblems | None:
    """The δ terms c δ(x - a) of φ'' at every site i of every covariance: ½<g_i'' Π_{j≠i} g_j> gains
    ½ c k_i φ(a)^(k_i - 1) N(a; 0, Σ_ii) <Π_{j≠i} g_j | z_i = a>, the conditional expectation over the other
    sites: Σ pivoted with site i first (``_pivoted(first=i)``), x_0 = a / L_00 fixed, so z_j = mu_j + (L[1:, 1:] x)_j
    with mu = L[1:, 0] a / L_00 — an (m-1)-site nested integral with means.  A site of variance 0 has no density
    at a ≠ 0 (no term) and an infinite one at a = 0 (NonFiniteError)."""
    if not atoms:
        return None
    B, m = covs.shape[:2]
    cols = {c: i for i, c in enumerate(pair_columns(m))}
    f0 = phi.numeric_function(0)
    rows, alone = ([], [], [], [], [], []), ([], [], [])
    for b in range(B):
        for i in range(m):
            var = float(covs[b, i, i])
            for a, c in atoms:
                if var <= 0.0:
                    if a == 0.0:
                        raise NonFiniteError(f"phi {phi.name!r} has phi'' = {c:g} δ(x) and a site of the moments has "
                                             "variance 0: the gradient column ½<phi'' ...> is infinite there")
                    continue
                k = int(kk[b, i])
                w = 0.5 * c * k * float(f0(a)) ** (k - 1) * np.exp(-0.5 * a * a / var) / np.sqrt(2 * np.pi * var)
                if m == 1:
                    alone[0].append(b), alone[1].append(1 + cols[(i, i)]), alone[2].append(w)
                    continue
                order, L = _pivoted(covs[b], NULL_TOL, first=i)
                for lst, v in zip(rows, (b, 1 + cols[(i, i)], w, L[1:, 1:], kk[b, order[1:]], L[1:, 0] * a / L[0, 0])):
                    lst.append(v)
    alone = tuple(np.array(v, dtype=t) for v, t in zip(alone, (np.int64, np.int64, float)))
    owner, column, weight, Ls, ks, mus = rows
    if not owner:
        return _AtomProblems(None, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), alone)
    problem = _NestedProblem(np.ascontiguousarray(Ls, float), np.ascontiguousarray(ks, np.int64),
                             np.ascontiguousarray(mus, float), m - 1 >= 3 if tabled is None else bool(tabled) and m >= 3)
    return _AtomProblems(problem, np.array(owner, np.int64), np.array(column, np.int64), np.array(weight), alone)


#: accuracy of the self-choosing method: every column within TOL of its absolute moment <|Π f|> (else AccuracyError)
TOL = 1e-6
#: Gauss–Hermite orders (value, check) per site count of the self-choosing method: the error estimate is the
#: difference of the two (cost 40^4 + 28^4 = 3.2e6 evaluations for four sites: GELU at variance ~1 needs 40 vs 28
#: for 1e-6 of the absolute moment; 24 vs 16 reached 6e-4)
CHECK_NODES = {1: (120, 80), 2: (72, 48), 3: (64, 44), 4: (40, 28)}


@dataclass(frozen=True)
class MomentEstimate:
    """``moments(..., with_error=True)``: values and absolute error estimates (B, columns), and per covariance
    the method used ("closed", "hermite": Gauss–Hermite checked against a lower order, "nested": graded panels,
    "quadrature": Gauss–Hermite with the given n, its error from two-thirds of n)."""

    value: np.ndarray
    error: np.ndarray
    method: np.ndarray


#: rounding of a Gauss–Hermite sum of up to 40^4 terms, relative to its absolute moment (measured: 6e-13 at
#: variance 1e-6, softplus β = 20, four sites)
GH_ROUNDING = 1e-12
#: the Gauss–Hermite check is trusted only where φ has no kink and its narrowest feature (width w) is at least
#: 1/GH_RESOLUTION of the node spacing π/√(2n) of the lower order in every direction: σ_max ≤ GH_RESOLUTION w √(2n)/π.
#: A narrower feature can fall between the nodes of both orders: softplus β = 20 at variance 1e4 (four sites,
#: antipodal pairs) gave the same wrong value (error 1.0 of the absolute moment) at 40 and 28 nodes
GH_RESOLUTION = 2.0


def _hermite_checked(phi, covs, kk, n_hi: int, n_lo: int):
    """(values at n_hi, |Q(n_hi) - Q(n_lo)| + rounding, absolute moments) of Gauss–Hermite."""
    hi, absval = _quadrature_moments(phi, covs, kk, n_hi, absolute=True)
    lo = _quadrature_moments(phi, covs, kk, n_lo)
    return hi, np.abs(hi - lo) + GH_ROUNDING * absval, absval


def _hermite_resolves(phi, covs, n_lo: int) -> np.ndarray:
    """Per covariance: whether the Gauss–Hermite check may be trusted (see GH_RESOLUTION)."""
    _, widths, kinks = _feature_table(phi)
    if np.any(kinks):
        return np.zeros(len(covs), bool)
    top = np.sqrt(np.max(np.diagonal(covs, axis1=1, axis2=2), axis=1))
    return top <= GH_RESOLUTION * np.min(widths) * np.sqrt(2 * n_lo) / np.pi


def _auto_moments(phi, covs, kk, tol: float, total_budget: float = NESTED_TOTAL_BUDGET, argument: str = "X"):
    """Self-choosing method for φ without a closed form: two sites, the nested rule; three or four, Gauss–Hermite
    checked against a lower order, and the nested rule (within NESTED_BUDGET) where the check fails."""
    m = covs.shape[1]
    if m <= 2:
        out, err, absval, _ = nested_moments(phi, covs, kk, budget=NESTED_BUDGET, total_budget=total_budget,
                                             argument=argument)
        method = np.full(len(covs), "nested", dtype=object)
    else:
        trusted = _hermite_resolves(phi, covs, CHECK_NODES[m][1])
        if np.any(trusted):
            out, err, absval = _hermite_checked(phi, covs, kk, *CHECK_NODES[m])
        else:  # a kinked φ (and δ terms in φ''): the nested rule for every covariance (NaN: not yet computed)
            out, err, absval = (np.full((len(covs), 1 + m * (m + 1) // 2), np.nan) for _ in range(3))
        method = np.full(len(covs), "hermite", dtype=object)
        bad = np.nonzero(np.any(err > tol * absval, axis=1) | ~np.all(np.isfinite(out), axis=1) | ~trusted)[0]
        if len(bad):
            out[bad], err[bad], absval[bad], _ = nested_moments(phi, covs[bad], kk[bad], budget=NESTED_BUDGET,
                                                                total_budget=total_budget, argument=argument)
            method[bad] = "nested"
    worst = np.max(np.where(absval > 0, err / np.maximum(absval, 1e-300), err), axis=1, initial=0.0)
    if np.any(~(worst <= tol)):
        b = int(np.argmax(np.where(np.isfinite(worst), worst, np.inf)))
        raise AccuracyError(f"the {m}-site moments of phi {phi.name!r} at the covariance with variances "
                            f"{np.diag(covs[b]).tolist()} reach only {worst[b]:.3g} of their absolute moment "
                            f"(tolerance {tol:g}, method {method[b]}); rescale X (or the weight/bias variances)")
    return out, err, method


# ---------------------------------------------------------------------------- closed forms
#: absolute accuracy of the closed-form four-point values (two Gauss–Legendre orders agree to it)
CLOSED_TOL = 1e-12
#: a pair integral whose last two orders still differ by more than this raises ConvergenceError (between
#: CLOSED_TOL and it: accepted; only at 2κ²·variance ≳ 1e6, e.g. 1.3e-9 for four identical sites at 2e6)
CLOSED_ACCEPT = 1e-8
#: largest 2κ²·variance of the erf closed form (the partial variances, ~1/(2κ²·variance), keep 8 digits)
CLOSED_MAX_SCALE = 1e8
#: Gauss–Legendre orders tried in turn for each pair integral of :func:`sign_moments` (growth √2: the
#: error falls ~50× per order at ordinary correlations, so 7 and 10 agree to CLOSED_TOL for ~99 % of the
#: integrals of an RNN at unit input scale: 17 integrand evaluations where orders 8, 16 took 24)
LEGENDRE_ORDERS = (7, 10, 14, 20, 28, 40, 57, 80, 113, 160, 226, 320, 453, 640)
_OTHERS = np.array([[0, 1, 2, 3], [0, 2, 1, 3], [0, 3, 1, 2], [1, 2, 0, 3], [1, 3, 0, 2], [2, 3, 0, 1]])


@lru_cache(maxsize=None)
def _legendre_table() -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes/weights on [0, 1], one row per order of LEGENDRE_ORDERS (zero padded)."""
    top = max(LEGENDRE_ORDERS)
    xs, ws = np.zeros((len(LEGENDRE_ORDERS), top)), np.zeros((len(LEGENDRE_ORDERS), top))
    for r, n in enumerate(LEGENDRE_ORDERS):
        x, w = np.polynomial.legendre.leggauss(n)
        xs[r, :n], ws[r, :n] = (x + 1) / 2, w / 2
    return xs, ws


@njit(cache=True, inline="always")
def _partial_correlation(R, p, q, r, s, t):
    """Correlation of factors r, s given p, q under R(t) = 1 + t (R - 1): with a = tρ_pq and
    b_xy = t R_xy, Σ_rs·pq = t R_rs - (b_rp b_sp - a (b_rp b_sq + b_rq b_sp) + b_rq b_sq) / (1 - a²)
    (and Σ_rr·pq, Σ_ss·pq alike), all three multiplied by 1 - a² (which cancels in the ratio)."""
    a = t * R[p, q]
    det = 1.0 - a * a
    brp, brq, bsp, bsq = t * R[r, p], t * R[r, q], t * R[s, p], t * R[s, q]
    srr = det - (brp * brp - 2.0 * a * brp * brq + brq * brq)
    sss = det - (bsp * bsp - 2.0 * a * bsp * bsq + bsq * bsq)
    srs = t * R[r, s] * det - (brp * bsp - a * (brp * bsq + brq * bsp) + brq * bsq)
    c = srs / np.sqrt(srr * sss)
    return min(1.0, max(-1.0, c))


@njit(cache=True, parallel=True, error_model="numpy")
def _sign_kernel(S, others, orders, xs, ws, tol, out, err):
    """out[b] = (G, ∂G/∂S_pq for p <= q) of G = <Π_p sign(y_p)>, y ~ N(0, S[b]) (4×4, positive definite)."""
    c = 4.0 / np.pi ** 2
    for b in prange(S.shape[0]):
        R = np.empty((4, 4))
        sd = np.empty(4)
        for i in range(4):
            sd[i] = np.sqrt(S[b, i, i])
        for i in range(4):
            for j in range(4):
                R[i, j] = S[b, i, j] / (sd[i] * sd[j])
        grad = np.zeros((4, 4))
        value = 0.0
        bad = 0.0
        for k in range(6):
            p, q, r, s = others[k, 0], others[k, 1], others[k, 2], others[k, 3]
            rho = R[p, q]
            h = c * np.arcsin(_partial_correlation(R, p, q, r, s, 1.0)) / np.sqrt(1.0 - rho * rho)
            grad[p, q] += h / (sd[p] * sd[q])
            grad[p, p] -= h * rho / (2.0 * S[b, p, p])
            grad[q, q] -= h * rho / (2.0 * S[b, q, q])
            if rho == 0.0:
                continue
            top = np.arcsin(rho)
            prev = 0.0
            delta = 0.0
            for lev in range(orders.shape[0]):
                acc = 0.0
                for i in range(orders[lev]):
                    acc += ws[lev, i] * np.arcsin(_partial_correlation(R, p, q, r, s, np.sin(top * xs[lev, i]) / rho))
                acc *= c * top
                delta = abs(acc - prev)
                prev = acc
                if lev > 0 and delta <= tol:
                    break
            else:
                bad = max(bad, delta)
            value += prev
        out[b, 0] = value
        col = 1
        for p in range(4):
            for q in range(p, 4):
                out[b, col] = grad[p, q]
                col += 1
        err[b] = bad


def sign_moments(S, tol: float = CLOSED_TOL) -> np.ndarray:
    """(B, 11): G = <Π_p sign(y_p)>, y ~ N(0, S) for positive-definite 4×4 S, and ∂G/∂S_pq (p <= q,
    unordered entries; module docstring).  Each pair integral raises its order (LEGENDRE_ORDERS) until two agree to
    ``tol``; ConvergenceError if the last two of LEGENDRE_ORDERS still differ by more than CLOSED_ACCEPT."""
    S = np.ascontiguousarray(S, dtype=float)
    out = np.empty((len(S), 11))
    err = np.zeros(len(S))
    if len(S):
        xs, ws = _legendre_table()
        _sign_kernel(S, _OTHERS, np.array(LEGENDRE_ORDERS, np.int64), xs, ws, float(tol), out, err)
    if np.any(err > CLOSED_ACCEPT):
        raise ConvergenceError(f"four-point sign moment: a pair integral reached only {np.max(err):.2g} "
                               f"(asked {tol:.2g}, accepted {CLOSED_ACCEPT:.0e}) with {max(LEGENDRE_ORDERS)} "
                               "Gauss-Legendre nodes (near-step erf at a very large variance: rescale X)")
    return out


def closed_form(phi: Nonlinearity):
    """('erf', (c_k), (κ_k)) for φ = Σ_k c_k·erf(κ_k x) (one term: c·erf(κx); more: e.g. the erf sum of
    :mod:`symfield.gauss.erf_sums`), ('linear', c, 0) for φ = c·x, else None (see module docstring)."""
    return _closed_form(phi.expr)


@lru_cache(maxsize=None)
def _closed_form(expr: sp.Expr):  # by content: SymPy expressions hash by value
    if expr.is_polynomial(_x) and sp.degree(expr, _x) == 1 and expr.subs(_x, 0) == 0:
        return ("linear", float(sp.diff(expr, _x)), 0.0)
    if isinstance(expr, sp.Add):  # a sum of erfs: every term one
        terms = [_closed_form(t) for t in expr.args]
        if not all(t is not None and t[0] == "erf" for t in terms):
            return None
        return ("erf", tuple(c for t in terms for c in t[1]), tuple(k for t in terms for k in t[2]))
    try:
        A, beta = _gaussian_derivative(expr)
    except (ValueError, TypeError):
        return None
    if not (A.is_number and beta.is_number and beta.is_positive) or sp.simplify(expr.subs(_x, 0)) != 0:
        return None
    kappa = sp.sqrt(beta)
    return ("erf", (float(A * sp.sqrt(sp.pi) / (2 * kappa)),), (float(kappa),))


@lru_cache(maxsize=None)
def _fold(k: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Expansion of a multiset with multiplicities k (Σk = 4): factor -> site, and the (10, m(m+1)/2)
    0/1 matrix summing ∂/∂Σₑ_pq (p <= q) into ∂/∂Σ_ij of the distinct sites."""
    site = np.repeat(np.arange(len(k)), k)
    cols = {c: i for i, c in enumerate(pair_columns(len(k)))}
    F = np.zeros((10, len(cols)))
    for r, (p, q) in enumerate(pair_columns(4)):
        F[r, cols[tuple(sorted((site[p], site[q])))]] = 1.0
    return site, F


@lru_cache(maxsize=None)
def _term_choices(k: tuple, K: int) -> tuple[np.ndarray, np.ndarray]:
    """For an erf sum of K terms on the expanded multiset with multiplicities k: the term of each of the
    four factors (C, 4), sorted within each site (the moment is symmetric in a site's copies), and how
    many term assignments each row stands for (multinomial counts; they sum to K⁴)."""
    rows, counts = [()], [1]
    for m in k:
        site = list(combinations_with_replacement(range(K), m))
        perms = [factorial(m) // np.prod([factorial(c.count(i)) for i in set(c)]) for c in site]
        rows = [r + c for r in rows for c in site]
        counts = [n * p for n in counts for p in perms]
    return np.array(rows, np.int64).reshape(-1, 4), np.array(counts, float)


#: rows (multiset x term choice) per call of :func:`sign_moments` in the erf-sum closed form
ERF_SUM_BATCH = 65536


def _erf_moments(coeffs, scales, k: tuple, Se: np.ndarray) -> np.ndarray:
    """(B, 11): <Π_p φ(z_p)>, z ~ N(0, Se) (4×4) and its gradient in Se_pq (p <= q), for
    φ = Σ_j c_j erf(κ_j x): Σ over the terms j_p of the factors of Π_p c_{j_p} · G(Se + diag(1/(2κ_{j_p}²)))
    (erf(κz) = <sign(z + η)>, η ~ N(0, 1/(2κ²)) per factor; module docstring)."""
    choice, count = _term_choices(k, len(coeffs))
    c, kappa = np.asarray(coeffs, float), np.asarray(scales, float)
    weight = count * np.prod(c[choice], axis=1)
    noise = np.zeros((len(choice), 4, 4))
    noise[:, np.arange(4), np.arange(4)] = 1.0 / (2.0 * kappa[choice] ** 2)
    out = np.empty((len(Se), 11))
    step = max(1, ERF_SUM_BATCH // len(choice))
    for r0 in range(0, len(Se), step):
        S = Se[r0:r0 + step, None] + noise[None]
        G = sign_moments(S.reshape(-1, 4, 4)).reshape(S.shape[0], len(choice), 11)
        out[r0:r0 + step] = np.einsum("bcj,c->bj", G, weight)
    return out


def _closed_moments(form, covs: np.ndarray, kk: np.ndarray) -> np.ndarray:
    """The closed-form method for multisets of four factors (module docstring)."""
    kind, c, kappa = form
    m = covs.shape[1]
    top = float(np.max(np.diagonal(covs, axis1=1, axis2=2), initial=0.0))
    if kind == "erf" and 2 * max(kappa) ** 2 * top > CLOSED_MAX_SCALE:
        raise NonFiniteError(f"variance {top:.3g} is too large for the erf four-point closed form (2 scale² "
                             f"variance > {CLOSED_MAX_SCALE:.0e}: erf is a step there and the orthant integrals "
                             "lose their digits); rescale X (or the weight/bias variances)")
    out = np.empty((len(covs), 1 + m * (m + 1) // 2))
    code = kk @ (5 ** np.arange(m))  # one integer per multiplicity pattern (entries 1..4)
    for c0 in np.unique(code):
        rows = np.nonzero(code == c0)[0]
        k = tuple(kk[rows[0]].tolist())
        site, F = _fold(k)
        Se = covs[rows][:, site][:, :, site]
        if kind == "erf":
            G = _erf_moments(c, kappa, k, Se)
        else:  # Isserlis: <y0 y1 y2 y3> = S01 S23 + S02 S13 + S03 S12, ∂/∂S_pq = S of the other pair
            G = np.zeros((len(rows), 11))
            G[:, 0] = sum(Se[:, p, q] * Se[:, r, s] for p, q, r, s in _OTHERS[:3])
            for p, q, r, s in _OTHERS:
                G[:, 1 + pair_columns(4).index((p, q))] = Se[:, r, s]
            G *= c ** 4
        out[rows, 0] = G[:, 0]
        out[rows, 1:] = G[:, 1:] @ F
    return out


def moments(phi, covs, multiplicities, n: int | None = None, method: str = "auto", with_error: bool = False,
            tol: float = TOL, total_budget: float | None = None, argument: str = "X"):
    """Value and Price gradient of <Π_i φ(z_i)^{k_i}> for a stack of (B, m, m) covariances.

    ``multiplicities``: (B, m) integers 1..4.  Returns (B, 1 + m(m+1)/2); see :func:`pair_columns`.
    ``method``: "auto" (closed form for four factors of φ = Σ c erf(κx) or c·x; else Gauss–Hermite with ``n``
    nodes if given; else the self-choosing rule :func:`_auto_moments`: every column within ``tol`` of its absolute
    moment or AccuracyError), "closed", "quadrature" (Gauss–Hermite, ``n`` or DEFAULT_NODES) or "nested"
    (graded panels, :mod:`symfield.gauss.nested`).  ``with_error``: a :class:`MomentEstimate` (values, absolute
    error estimates, method per covariance) instead of the values.  ``total_budget`` (default NESTED_TOTAL_BUDGET):
    the nested rule's predicted evaluations summed over the covariances, checked before integrating (ResourceError
    naming ``argument``, the input whose size and scale set the covariances), as is the time limit.
    """
    phi = get_phi(phi)
    covs = np.asarray(covs, dtype=float)
    if covs.ndim != 3 or not 1 <= covs.shape[1] <= 4:
        raise ValueError(f"covs must have shape (B, m, m) with m in 1..4, got {covs.shape}")
    if method not in ("auto", "closed", "quadrature", "nested"):
        raise ValueError(f"method must be 'auto', 'closed', 'quadrature' or 'nested', got {method!r}")
    kk = np.ascontiguousarray(np.broadcast_to(multiplicities, covs.shape[:2]), dtype=np.int64)
    if np.any(kk < 1) or np.any(kk > MAX_MULTIPLICITY) or np.any(kk.sum(axis=1) > MAX_MULTIPLICITY):
        raise ValueError("multiplicities must be >= 1 with at most 4 factors in total")
    form = closed_form(phi)
    four = bool(len(kk)) and bool(np.all(kk.sum(axis=1) == 4))
    if method == "closed" and (form is None or not four):
        raise ValueError(f"no closed form for phi={phi.name!r} with multiplicities summing to "
                         f"{sorted(set(kk.sum(axis=1).tolist()))} (closed forms: sums of c*erf(kx), c*x; four factors)")
    if method == "closed" or (method == "auto" and n is None and form is not None and four):
        if not np.all(np.isfinite(covs)) or np.any(np.diagonal(covs, axis1=1, axis2=2) < 0) or \
                not np.allclose(covs, np.swapaxes(covs, 1, 2), rtol=1e-12, atol=0.0):
            raise ValueError("covariance is not symmetric, contains NaN or inf, or has a negative variance")
        scale = np.max(np.diagonal(covs, axis1=1, axis2=2), axis=1)
        try:  # positive semi-definite to PSD_TOL (batched Cholesky certificate)
            np.linalg.cholesky(covs + (PSD_TOL * scale + 1e-300)[:, None, None] * np.eye(covs.shape[1]))
        except np.linalg.LinAlgError:
            raise NotPositiveDefinite("a covariance passed to moments is not positive semi-definite") from None
        out = _closed_moments(form, covs, kk)
        if not np.all(np.isfinite(out)):
            raise NonFiniteError("non-finite closed-form four-point moment (covariance at the edge of PSD?)")
        # the orthant integrals are accepted at CLOSED_ACCEPT each; a moment sums K^4 of them weighted by Π c
        err = np.full(out.shape, CLOSED_ACCEPT * float(np.sum(np.abs(form[1]))) ** 4)
        return MomentEstimate(out, err, np.full(len(out), "closed", dtype=object)) if with_error else out
    if method == "nested":
        out, err, _, _ = nested_moments(phi, covs, kk, argument=argument,
                                        total_budget=NESTED_TOTAL_BUDGET if total_budget is None else total_budget)
        return MomentEstimate(out, err, np.full(len(out), "nested", dtype=object)) if with_error else out
    if method == "quadrature" or n is not None:
        nq = int(n or DEFAULT_NODES[covs.shape[1]])
        if not with_error:
            return _quadrature_moments(phi, covs, kk, nq)
        out, err, _ = _hermite_checked(phi, covs, kk, nq, max(1, (2 * nq) // 3))
        return MomentEstimate(out, err, np.full(len(out), "quadrature", dtype=object))
    out, err, used = _auto_moments(phi, covs, kk, tol, NESTED_TOTAL_BUDGET if total_budget is None else total_budget,
                                   argument)
    return MomentEstimate(out, err, used) if with_error else out
