"""One-loop (1/N) corrections of DNN and RNN kernels (theory Sec. 8).

With pair variables u = {s, s'} in causal order, F_u(C) = Σdet_u + M g² <φφ>, J = 1 - F',
K_uv = g_u² g_v² M_u M_v Cov(Φ_u, Φ_v) (all at C̄):

    N Δ = J⁻¹ K J⁻ᵀ                                     (kernel covariance, Sec. 8.2)
    N (<C> - C̄) = J⁻¹ [ ½ F''[NΔ] + Σ_{v,w} K'_{·v,w} (J⁻¹)_{wv} ]   (tadpole + weight sharing, Sec. 8.3)
    N Var K̂_u = C_ss C_s's' + C_ss'² + NΔ_uu + 2 Σ_v g_v² M_v Cov(z_s z_s', Φ_v) (J⁻¹)_uv   (Sec. 8.7)

J, F'' come from the action's derivatives on the pair template (``Action.derivatives``), compiled;
K and K' from four-point moments with Price gradients (``symfield.gauss.moments``); all of them
for the φ of :func:`vertex_phi` (tanh: its erf sum, closed forms at every scale).  J is sparse
(three entries per row) and unit lower triangular: J⁻¹ is built by sparse forward substitution.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import comb

import numpy as np
import scipy.sparse as sps
import sympy as sp
from scipy.linalg import lapack, solve_triangular

from .. import codegen
from ..api import check_choice, check_mapping, check_spec, legacy_positional, renamed
from ..errors import NonFiniteError, NotPositiveDefinite, NotSupportedError, ResourceError, SpecError, SymfieldError
from ..progress import progress_bar
from ..resources import check_memory, check_time
from ..action import GPAction
from ..action import template as tp
from ..gauss import Nonlinearity, get_phi
from ..gauss.registry import x as phi_arg
from ..gauss.erf_sums import erf_sum_surrogate
from ..gauss.moments import DEFAULT_NODES, NODE_MAX, NODE_MIN, closed_form, moments, nodes_for, pair_columns
from ..spec import NetworkSpec
from .mean_field import MeanField, mean_field
from . import assembly
from .kernel_covariance import KernelCovariance
from .lift import Lift
from .pairs import PairSpace, pair_space

HESS = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]


# ------------------------------------------------------------------ compiled template derivatives
def derivative_source(phi: Nonlinearity) -> str:
    """Module with E, ∂E/∂c_i (3) and ∂²E/∂c_i∂c_j (6) of E = <φφ>(c11, c22, c12), taken from the
    action's derivatives (F' = m g² ∂E) at m = g² = 1, plus a batch driver."""
    act = GPAction.for_phi(phi)
    d = act.derivatives()
    unit = {tp.m: 1, tp.g2: 1, tp.sdet: 0}
    exprs = [act.saddle_point().rhs.subs(unit)] + [e.subs(unit) for e in d["Fp"]] + \
        [d["Fpp"][ij].subs(unit) for ij in HESS]
    helpers: set = set()
    funcs = [codegen.scalar_source(f"e{k}", tp.ARGS, sp.simplify(e), inline=True, helpers=helpers)
             for k, e in enumerate(exprs)]
    calls = "\n".join(f"        out[i, {k}] = e{k}(c11[i], c22[i], c12[i])" for k in range(len(exprs)))
    driver = ('@njit(cache=True, error_model="numpy")\n'
              "def batch(c11, c22, c12, out):\n    for i in range(c11.shape[0]):\n" + calls + "\n")
    return codegen.module_text("symfield.theory.one_loop", f"E, dE, d2E for phi(x) = {phi.expr}",
                               [("helpers", codegen.helper_source(helpers)), ("derivatives", "\n\n".join(funcs)),
                                ("batch", driver)])


_MODULES: dict = {}  #: compiled derivative modules by φ content (``phi.key``), not by φ object


def _derivative_module(key: str, phi: Nonlinearity):
    if key not in _MODULES:  # by content (phi.key: name, parameters, expression), on disk by derived_source
        source = codegen.derived_source("oneloop", key, lambda: derivative_source(phi))
        _MODULES[key] = codegen.load_module(source, f"oneloop_{key}")
    return _MODULES[key]


def check_smooth(phi: Nonlinearity) -> None:
    """one_loop needs ∂²<φφ>/∂c_i∂c_j, i.e. <φ''φ''> etc.: refuse a kinked φ, saying why."""
    kinks = phi.kinks(0) or phi.kinks(1)
    if kinks:  # ReLU: ∂²E/∂c12² = <φ''φ''> = 1/(2π√(c11c22 - c12²)), infinite at every variance pair
        raise NotSupportedError(f"one_loop needs a smooth phi: phi={phi.name!r} is not smooth at x = "
                                f"{list(kinks)}, so the vertices ∂²<phi phi>/∂c_i∂c_j (<phi''phi''> is the "
                                "Gaussian density at the kink) diverge at perfect correlation (c12² = c11 c22), "
                                "which every variance pair {s, s} has. Use a smooth phi (erf, tanh, linear, ...) "
                                "for one_loop; for this phi, mean_field/gp (leading order) or simulate.kernel_moments")


#: Price's theorem for the template, as (factor, derivative orders of φ(u), φ(v)) per column:
#: E = <φφ>, ∂E/∂c11 = ½<φ''φ>, ∂E/∂c22 = ½<φφ''>, ∂E/∂c12 = <φ'φ'>, then HESS order
#: ∂²E/∂c11² = ¼<φ''''φ>, ∂²E/∂c11∂c22 = ¼<φ''φ''>, ∂²E/∂c11∂c12 = ½<φ'''φ'>, ..., ∂²E/∂c12² = <φ''φ''>
PRICE_TEMPLATE = [(1.0, (0, 0)), (0.5, (2, 0)), (0.5, (0, 2)), (1.0, (1, 1)),
                  (0.25, (4, 0)), (0.25, (2, 2)), (0.5, (3, 1)), (0.25, (0, 4)), (0.5, (1, 3)), (1.0, (2, 2))]


#: template columns E, ∂E/∂c11, ∂E/∂c22, ∂E/∂c12 from the 2-site moment columns value, ∂/∂Σ00, ∂/∂Σ01, ∂/∂Σ11
#: (``moments.pair_columns(2)`` order)
_GRADIENT_FROM_MOMENTS = [0, 1, 3, 2]


def numeric_template_derivatives(phi: Nonlinearity, c11, c22, c12, with_error: bool = False, hessian: bool = True):
    """:func:`template_derivatives` for a φ without a closed form of <φφ> (GELU, SiLU, softplus, ...) by Price's
    theorem (PRICE_TEMPLATE), each column certified or refused:

    * E and ∂E (columns 0-3): the self-choosing 2-site moments ``moments(phi, Σ, (1, 1), with_error=True)``
      (graded nested panels: every column within ``moments.TOL`` of its absolute moment, else AccuracyError);
      a kink of φ' is fine, and so is a jump (hardtanh): the δ terms of φ'' are conditional integrals
      (``moments.delta_atoms``);
    * ∂²E (columns 4-9, ``hessian``): ``DualKernel(phi).pair(..., orders, with_error=True)`` (Mehler sum or graded
      panels: within ``dual.TOL`` of √(<φ^(o1)²> <φ^(o2)²>), else AccuracyError); NotSupportedError where the
      third or fourth derivative of φ is a distribution (a kink of φ' or φ'').

    Returns (n, 10) (or (n, 4) without ``hessian``); ``with_error``: (values, absolute error estimates)."""
    from ..gauss import dual_kernel
    c11, c22, c12 = (np.ascontiguousarray(a, dtype=float).ravel() for a in (c11, c22, c12))
    covs = np.stack([np.stack([c11, c12], -1), np.stack([c12, c22], -1)], -2)
    ncol = 10 if hessian else 4
    out, err = np.zeros((len(covs), ncol)), np.zeros((len(covs), ncol))
    if len(covs):
        est = moments(phi, covs, np.ones((len(covs), 2), np.int64), with_error=True)
        out[:, :4], err[:, :4] = est.value[:, _GRADIENT_FROM_MOMENTS], est.error[:, _GRADIENT_FROM_MOMENTS]
        kernel = dual_kernel(phi)
        for col, (f, orders) in enumerate(PRICE_TEMPLATE[4:ncol], start=4):
            try:
                pair = kernel.pair(c11, c22, c12, orders=orders, with_error=True)
            except ValueError as exc:
                if isinstance(exc, SymfieldError) or "distribution" not in str(exc):
                    raise
                raise NotSupportedError(f"the second derivatives of <phi phi> for phi={phi.name!r} need "
                                        f"<phi^({orders[0]}) phi^({orders[1]})>: {exc}") from None
            out[:, col], err[:, col] = f * pair.value, f * pair.error
    return (out, err) if with_error else out


def erf_sum_template_derivatives(coeffs, scales, c11, c22, c12) -> np.ndarray:
    """:func:`template_derivatives` of φ = Σ_k c_k erf(κ_k x) from those of erf(x): by bilinearity and
    <erf(κ_k u) erf(κ_l v)>(c11, c22, c12) = E_erf(κ_k² c11, κ_l² c22, κ_k κ_l c12),

        E = Σ_kl c_k c_l E_erf(s·c),   ∂E/∂c_i = Σ_kl c_k c_l s_i ∂_i E_erf,   ∂²E/∂c_i∂c_j = Σ_kl c_k c_l s_i s_j ∂_ij E_erf

    with s = (κ_k², κ_l², κ_k κ_l): closed form at every variance (no nodes)."""
    c, kappa = np.asarray(coeffs, float), np.asarray(scales, float)
    k, l = (a.ravel() for a in np.meshgrid(np.arange(len(c)), np.arange(len(c)), indexing="ij"))
    s = np.stack([kappa[k] ** 2, kappa[l] ** 2, kappa[k] * kappa[l]], axis=1)            # (K², 3)
    factor = np.concatenate([np.ones((len(k), 1)), s, np.stack([s[:, i] * s[:, j] for i, j in HESS], 1)], 1)
    n = len(c11)
    D = template_derivatives(get_phi("erf"), *(np.outer(s[:, i], a).ravel() for i, a in enumerate((c11, c22, c12))))
    return np.einsum("q,qnj,qj->nj", c[k] * c[l], D.reshape(len(k), n, 10), factor)


def template_derivatives(phi: Nonlinearity, c11, c22, c12) -> np.ndarray:
    """(n, 10): E, ∂E (c11, c22, c12), ∂²E in HESS order, at each (c11, c22, c12): compiled from the
    action's derivatives where <φφ> has a closed form, :func:`erf_sum_template_derivatives` for a sum of
    erfs, else :func:`numeric_template_derivatives`."""
    check_smooth(phi)
    c11, c22, c12 = (np.ascontiguousarray(a, dtype=float) for a in (c11, c22, c12))
    form = closed_form(phi)
    if phi.has_closed_form:
        out = np.empty((len(c11), 10))
        _derivative_module(phi.key, phi).batch(c11, c22, c12, out)
    elif form is not None and form[0] == "erf":
        out = erf_sum_template_derivatives(form[1], form[2], c11, c22, c12)
    else:
        out = numeric_template_derivatives(phi, c11, c22, c12)
    if not np.all(np.isfinite(out)):
        raise NonFiniteError(f"non-finite derivative of <phi phi> for phi={phi.name!r}; one_loop needs variances "
                             f"of ordinary size (largest here {max(np.max(c11, initial=0), np.max(c22, initial=0)):.3g}:"
                             " rescale X)")
    return out


# ------------------------------------------------------------------ ingredients
@dataclass
class Ingredients:
    ps: PairSpace           #: field variables: pairs of the driving covariance (= C without skip)
    lift: Lift              #: ∂C/∂D between site pairs and the field variables
    Cf: np.ndarray          #: (TP, TP) mean-field covariance of all sites
    mg2: np.ndarray         #: M_u r_u g_u² per pair (r_u g_u² = r_a1 r_a2 g_a1 g_a2 of the producing weights)
    D: np.ndarray           #: (n, 10) template derivatives of E at the previous sites
    prev: list              #: ∂C/∂D rows of the previous-site pairs {g1,g1}, {g2,g2}, {g1,g2} of each variable
    J: object               #: 1 - F' (sparse without skip, dense with it)
    Jinv: np.ndarray        #: (n, n) by forward substitution
    phi: Nonlinearity       #: the φ of the vertices (:func:`vertex_phi`)


def vertex_phi(phi: Nonlinearity, reference: bool = False) -> Nonlinearity:
    """The φ whose Gaussian moments make the one-loop vertices (J, K, K', F''): φ itself, except c·tanh(κx),
    which is replaced by its erf sum φ̃ (:func:`symfield.gauss.erf_sums.erf_sum_surrogate`, |φ̃ - φ| <= 9.44e-6 |c|)
    so that every moment is closed form: NΔ = J⁻¹ Cov_φ̃ J⁻ᵀ is PSD by construction and costs the same at
    every input scale.  ``reference``: φ itself (tanh by Gauss–Hermite, the implementation before)."""
    return phi if reference else (erf_sum_surrogate(phi) or phi)


def ingredients(spec: NetworkSpec, mf: MeanField, invert: bool = True, reference: bool = False) -> Ingredients:
    """F'_u = m_u g_u² Σ_i ∂E/∂c_i ∂c_i/∂D at the previous sites of each variable; J = 1 - F'
    (E of :func:`vertex_phi`; ``reference``: of φ itself)."""
    T, P = spec.T, mf.P
    ps = pair_space(spec, P, spec.weight_mask() != 0) if spec.has_skip else pair_space(spec, P)
    lift = Lift(spec, ps)
    Cf = mf.C.transpose(0, 2, 1, 3).reshape(T * P, T * P)
    g1, g2 = ps.pairs[:, 0] - P, ps.pairs[:, 1] - P
    a1, a2 = ps.pairs[:, 0] // P, ps.pairs[:, 1] // P
    gs = np.concatenate([[0.0], spec.g_values()])  # gs[a]: scale of the weights producing time a
    mg2 = spec.branch_mask()[a1, a2] * gs[a1] * gs[a2]
    phi = vertex_phi(spec.phi_fn, reference)
    D = template_derivatives(phi, Cf[g1, g1], Cf[g2, g2], Cf[g1, g2])
    prev = [lift.rows(x, y) for x, y in ((g1, g1), (g2, g2), (g1, g2))]
    if lift.identity:
        Fp = sum(sps.diags(mg2 * D[:, 1 + i]) @ prev[i] for i in range(3))
        J = (sps.identity(ps.n, format="csr") - Fp).tocsr()
        Jinv = causal_solve(J, np.eye(ps.n)) if (ps.n and invert) else np.zeros((0, 0))
    else:
        J = np.eye(ps.n) - sum((mg2 * D[:, 1 + i])[:, None] * prev[i] for i in range(3))
        Jinv = solve_triangular(J, np.eye(ps.n), lower=True, unit_diagonal=True) if invert else np.zeros((0, 0))
    return Ingredients(ps, lift, Cf, mg2, D, prev, J, Jinv, phi)


def causal_solve(J: sps.spmatrix, B: np.ndarray) -> np.ndarray:
    """J⁻¹ B in place of B (returned) for the sparse unit lower-triangular J = 1 - F' (causal order):
    forward substitution over rows, O(3 n·cols), no second array."""
    Fp = (sps.identity(J.shape[0], format="csr") - J).tocsr()
    Fp.eliminate_zeros()
    Fp.sort_indices()
    if np.any(Fp.indices >= np.repeat(np.arange(J.shape[0]), np.diff(Fp.indptr))):
        raise RuntimeError("J is not unit lower triangular in causal order")
    assembly.forward_substitute(Fp.indptr, Fp.indices, Fp.data, B)
    return B


def causal_propagate(J: sps.spmatrix, K: np.ndarray) -> np.ndarray:
    """NΔ = J⁻¹ K J⁻ᵀ in the memory of K (consumed): X = J⁻¹K, then J⁻¹Xᵀ (= J⁻¹ K J⁻ᵀ for symmetric K),
    symmetrized."""
    causal_solve(J, K)
    assembly.transpose_inplace(K)
    causal_solve(J, K)
    assembly.symmetrize_inplace(K)
    return K


def dense_propagators(J: sps.spmatrix, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference: invert the full Hessian S⁽²⁾ = [[0, -Jᵀ/2], [-J/2, K/4]] densely (theory Sec. 8.2).

    The propagator 𝒢 = -(1/N) S⁽²⁾⁻¹ gives NΔ = N𝒢_CC and NR = N𝒢_CC̃ = 2 J⁻¹; returns (NΔ, J⁻¹).
    """
    n = K.shape[0]
    Jd = J.toarray() if sps.issparse(J) else J
    S2 = np.block([[np.zeros((n, n)), -Jd.T / 2], [-Jd / 2, K / 4]])
    G = -np.linalg.inv(S2)
    return G[:n, :n], G[:n, n:] / 2


def _multisets(ps: PairSpace, iu, iv):
    """Sorted previous-site 4-tuples of the pair pairs (iu[k], iv[k]) and their unique rows."""
    P = ps.P
    quad = np.sort(np.concatenate([ps.pairs[iu], ps.pairs[iv]], axis=1) - P, axis=1)
    uniq, inverse = np.unique(quad, axis=0, return_inverse=True)
    return uniq, inverse.ravel()


def four_point(phi, Cf: np.ndarray, quads: np.ndarray, n_nodes=None, quadrature: bool = False):
    """<φφφφ> at the site multisets ``quads`` (B, 4) and its Price gradient (B, 10) with the full-site
    pair of each entry.  Gauss–Hermite with ``n_nodes[m]`` nodes per dimension for m distinct sites if given
    (also for erf: the quadrature reference), else the self-choosing :func:`symfield.gauss.moments.moments`
    (closed form for c·erf(κx), c·x; otherwise certified to ``moments.TOL`` or AccuracyError).  ``quadrature``:
    Gauss–Hermite with :func:`symfield.gauss.moments.nodes_for` nodes of the multiset's largest variance, also
    where a closed form exists (the reference of ``one_loop(method="reference")``)."""
    if n_nodes is not None:
        n_nodes = {m: _checked_nodes(m, n) for m, n in check_mapping("n_nodes", n_nodes).items()}
    phi = get_phi(phi)
    polynomial = phi.expr.is_polynomial(phi_arg) and sp.degree(phi.expr, phi_arg) < NODE_MIN[4] // 2  # exact at NODE_MIN
    B = len(quads)
    value = np.empty(B)
    grad_sites = np.full((B, 10, 2), -1, dtype=np.int64)   # full-site pair of each gradient entry
    grad = np.zeros((B, 10))
    quads = np.sort(np.asarray(quads), axis=1)
    gid = np.concatenate([np.zeros((B, 1), np.int64), np.cumsum(quads[:, 1:] != quads[:, :-1], axis=1)], axis=1)
    rows = np.arange(B)[:, None]
    sites, counts = np.zeros((B, 4), np.int64), np.zeros((B, 4), np.int64)
    sites[rows, gid] = quads                      # distinct sites in increasing order, then their counts
    np.add.at(counts, (np.broadcast_to(rows, gid.shape), gid), 1)
    sizes = gid[:, -1] + 1
    for m in range(1, 5):
        sel = np.nonzero(sizes == m)[0]
        if not len(sel):
            continue
        ds, ks = sites[sel, :m], counts[sel, :m]
        covs = Cf[ds[:, :, None], ds[:, None, :]]
        if n_nodes is not None and m in n_nodes:
            nodes = np.full(len(sel), n_nodes[m])
        elif quadrature:  # the reference: Gauss-Hermite adapted to the widest variable of each multiset
            nodes = nodes_for(m, np.max(np.diagonal(covs, axis1=1, axis2=2), axis=1), polynomial=polynomial)
        else:  # no nodes: the self-choosing moments (closed form, else certified to TOL or AccuracyError)
            nodes = np.zeros(len(sel), int)
        for n in np.unique(nodes):
            part = nodes == n
            out = moments(phi, covs[part], ks[part], n=int(n) or None)
            rows = sel[part]
            value[rows] = out[:, 0]
            for c, (i, j) in enumerate(pair_columns(m)):
                grad[rows, c] = out[:, 1 + c]
                grad_sites[rows, c, 0] = ds[part, i]
                grad_sites[rows, c, 1] = ds[part, j]
    return value, grad, grad_sites


def _checked_nodes(m: int, n) -> int:
    """An explicit ``n_nodes[m]``: a positive integer, at most NODE_MAX[m] (else ResourceError)."""
    if m not in NODE_MAX:
        raise SpecError(f"n_nodes keys must be site counts 1..4, got {m!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SpecError(f"n_nodes[{m}] must be a positive integer, got {n!r}")
    if n > NODE_MAX[m]:
        raise ResourceError(f"n_nodes[{m}] = {n} is above the maximum NODE_MAX[{m}] = {NODE_MAX[m]} "
                            f"(cost ~ nodes^{m} per site set); reduce n_nodes")
    return int(n)


#: peak memory of one_loop: bytes per (pair variables)² (dense n×n arrays), per distinct four-point multiset,
#: per multiset row of one moment chunk, per pair pair of one assembly chunk.  Compiled path (no skip, not
#: "reference"): K → NΔ in place, J⁻¹, the PSD check's copy; value + gradient per multiset and a rank slot
#: per possible multiset; the moment chunk's temporaries (tracemalloc, RNN erf: T = 10, P = 4: 102 MiB,
#: T = 20, P = 2: 124 MiB, ~1.15 kB per multiset below one chunk).  Numpy path (skip connections,
#: "reference"): the chunked index arrays and the forward substitution's temporaries.
BYTES_PER_PAIR2 = {"compiled": 8 * 3, "causal": 8 * 10, "reference": 8 * 12, "dense": 8 * 150}
BYTES_PER_MULTISET = {"compiled": 8 + 80, "numpy": 8 + 80 + 80}
BYTES_PER_RANK = 8 + 1
BYTES_PER_MOMENT_ROW = 1200
BYTES_PER_CHUNK_PAIR = 1500


def pair_count(spec: NetworkSpec, P: int) -> int:
    """Number n of pair variables (as :func:`pair_space` counts them) without building them."""
    T = spec.T
    if T < 2:
        return 0
    ex = spec.block_support()[1:, 1:]
    return int(P * P * np.triu(ex, 1).sum() + P * (P + 1) // 2 * np.trace(ex))


def estimate_bytes(spec: NetworkSpec, P: int, method: str = "causal") -> float:
    """Peak memory of :func:`one_loop` (∝ n², n pair variables, and ∝ the distinct four-point multisets;
    see BYTES_PER_PAIR2) plus its mean field."""
    n = pair_count(spec, P)
    pairs2 = n * (n + 1) / 2
    sites = (spec.T - 1) * P
    ranks = comb(sites + 3, 4)
    multisets = min(pairs2, ranks)
    mean_field = 8.0 * (spec.T * P) ** 2
    if method != "reference" and not spec.has_skip:
        per_pair2 = BYTES_PER_PAIR2["compiled"] + (BYTES_PER_PAIR2["dense"] if method == "dense" else 0)
        return (float(per_pair2) * n * n + BYTES_PER_MULTISET["compiled"] * multisets + BYTES_PER_RANK * ranks +
                BYTES_PER_MOMENT_ROW * min(multisets, CHUNK) + mean_field)
    return (float(BYTES_PER_PAIR2[method]) * n * n + BYTES_PER_MULTISET["numpy"] * multisets +
            BYTES_PER_CHUNK_PAIR * min(pairs2, CHUNK) + mean_field)


#: operations (at resources.RATE) per 4×4 orthant moment and its gradient (``sign_moments``: 6 pair integrals
#: of ~17 Gauss–Legendre evaluations, with the batching around it: RNN erf T = 30, P = 4, 7.9e6 multisets,
#: 124 s CPU in all), per Gauss–Hermite node of a four-site moment, per related pair pair (the compiled
#: loops and the O(n²) substitutions), and per n³ (the PSD Cholesky, BLAS)
ORTHANT_OPS = 12000
NODE_OPS = 30
PAIR_PAIR_OPS = 200
CHOLESKY_OPS = 1 / 30


def orthant_terms(phi: Nonlinearity) -> int:
    """Orthant moments per distinct four-point multiset for the closed form of ``phi``: K⁴ for an erf sum of
    K terms (1 for c·erf(κx), 256 for the 4-term erf sum of tanh; multisets with a repeated site need fewer:
    a bound), 0 without one (Gauss–Hermite, or Isserlis for c·x)."""
    form = closed_form(phi)
    return len(form[1]) ** 4 if form is not None and form[0] == "erf" else 0


def estimate_operations(spec: NetworkSpec, P: int, method: str = "causal", n_nodes: dict | None = None) -> float:
    """Operations of :func:`one_loop` (seconds at resources.RATE): the distinct four-point multisets times the
    cost of one (:func:`orthant_terms` × ORTHANT_OPS for an erf sum, nodes⁴ × NODE_OPS by Gauss–Hermite), the
    related pair pairs, the PSD Cholesky; "dense" inverts the 2n×2n Hessian, "reference" adds its numpy
    assembly (~100 n² T)."""
    n = pair_count(spec, P)
    pairs2 = n * (n + 1) / 2
    multisets = min(pairs2, comb((spec.T - 1) * P + 3, 4))
    phi = vertex_phi(spec.phi_fn, reference=method == "reference" or n_nodes is not None)
    if method != "reference" and not (n_nodes and 4 in n_nodes) and closed_form(phi) is not None:
        per_multiset = orthant_terms(phi) * ORTHANT_OPS or 100.0  # erf sum, or Isserlis for c·x
    else:
        per_multiset = NODE_OPS * float((n_nodes or {}).get(4, DEFAULT_NODES[4])) ** 4
    ops = multisets * per_multiset + PAIR_PAIR_OPS * pairs2 + CHOLESKY_OPS * float(n) ** 3
    if method == "dense":
        ops += 8.0 * float(n) ** 3
    if method == "reference":
        ops += 100.0 * n * n * spec.T
    return ops


def _binomials(top: int) -> list:
    """C(a, k) for a < top, k = 1..4 (int64 tables of the combinatorial number system)."""
    return [None, *assembly.binomial_table(top)]


def multiset_rank(quads: np.ndarray, binom: list) -> np.ndarray:
    """Rank of each sorted site 4-multiset q0 <= q1 <= q2 <= q3 among all of them (a_k = q_k + k strictly
    increasing: rank = Σ_k C(a_k, k + 1)), a dense index without sorting or np.unique."""
    return sum(binom[k + 1][quads[:, k] + k] for k in range(4))


def multiset_unrank(ranks: np.ndarray, binom: list) -> np.ndarray:
    """Inverse of :func:`multiset_rank`: the sorted 4-multisets of ``ranks``."""
    r = np.array(ranks, dtype=np.int64)
    out = np.empty((len(r), 4), dtype=np.int64)
    for k in range(4, 0, -1):
        a = np.searchsorted(binom[k], r, side="right") - 1
        r -= binom[k][a]
        out[:, k - 1] = a - (k - 1)
    return out


def _related_chunks(spec: NetworkSpec, ps: PairSpace, budget: int):
    """The pair pairs (u, v), u <= v, whose noises can be correlated, in u-major order, as chunks of
    about ``budget`` pairs.  K and K' are averages over the same neurons, so Cov(Φ_u, Φ_v) vanishes only
    where no previous site of u is correlated with one of v (a block that does not exist); with skip
    connections or grouped sharing that is not M_uv = 0."""
    n = ps.n
    tp = ps.pairs // ps.P - 1
    exists = spec.block_support()
    u0 = 0
    while u0 < n:
        sizes = np.cumsum(n - np.arange(u0, n))
        u1 = u0 + max(1, int(np.searchsorted(sizes, budget)))
        us = np.arange(u0, min(u1, n))
        iu = np.repeat(us, n - us)
        start = np.concatenate([[0], np.cumsum(n - us)[:-1]])
        iv = np.arange(len(iu)) - np.repeat(start, n - us) + iu
        related = np.zeros(len(iu), bool)
        for i in range(2):
            for j in range(2):
                related |= exists[tp[iu, i], tp[iv, j]]
        yield iu[related], iv[related]
        u0 = u1


#: pair pairs per chunk of the vertex assembly (~1 kB of temporaries each)
CHUNK = 250_000


def _vertices(spec: NetworkSpec, ing: Ingredients, n_nodes, quadrature: bool, bar, propagate, chunk: int = CHUNK):
    """K (n, n), then ``propagate(K)`` = (NΔ, J⁻¹), then the weight-sharing vertex
    t_u = Σ_v Σ_w ∂K_uv/∂C_w (J⁻¹)_wv (before J⁻¹); returns (NΔ, J⁻¹, t).

    Four-point moments once per distinct site multiset (dense multiset ranks, :func:`multiset_rank`),
    then the pair pairs in chunks of ``chunk`` (twice: K, then the vertex)."""
    ps, lift, Cf, mg2, D = ing.ps, ing.lift, ing.Cf, ing.mg2, ing.D
    n, P = ps.n, ps.P
    binom = _binomials(max(int(ps.pairs.max(initial=P)) - P + 4, 5))
    g1, g2 = ps.pairs[:, 0] - P, ps.pairs[:, 1] - P

    def quads_of(iu, iv):
        return np.sort(np.concatenate([ps.pairs[iu], ps.pairs[iv]], axis=1) - P, axis=1)

    top = len(binom[1]) - 4  # the largest previous site
    needed = np.zeros(int(multiset_rank(np.full((1, 4), top), binom)[0]) + 1, bool)
    for iu, iv in _related_chunks(spec, ps, chunk):
        needed[multiset_rank(quads_of(iu, iv), binom)] = True
    ranks = np.flatnonzero(needed)
    del needed
    bar.set_postfix_str(f"{len(ranks)} distinct four-point site sets for K")
    bar.update(1)
    quads = multiset_unrank(ranks, binom)
    E4, G4, S4 = np.empty(len(quads)), np.empty((len(quads), 10)), np.empty((len(quads), 10, 2), np.int32)
    for b0 in range(0, len(quads), chunk):
        sl = slice(b0, b0 + chunk)
        E4[sl], G4[sl], S4[sl] = four_point(ing.phi, Cf, quads[sl], n_nodes, quadrature=quadrature)
    del quads
    bar.set_postfix_str("four-point moments done")
    bar.update(1)
    E2 = D[:, 0]

    def chunks():
        """Per chunk: pair pairs, their multiset rows, weights, and which are independent (zero
        covariance between their sites: Cov(Φ_u, Φ_v) and its within-u or within-v derivatives vanish
        exactly; set so instead of keeping quadrature error)."""
        for iu, iv in _related_chunks(spec, ps, chunk):
            su, sv = ps.pairs[iu] - P, ps.pairs[iv] - P
            indep = np.all(Cf[su[:, :, None], sv[:, None, :]] == 0, axis=(1, 2))
            yield iu, iv, np.searchsorted(ranks, multiset_rank(quads_of(iu, iv), binom)), mg2[iu] * mg2[iv], su, indep

    K = np.zeros((n, n))
    for iu, iv, inverse, w_uv, su, indep in chunks():
        Kvals = w_uv * (E4[inverse] - E2[iu] * E2[iv])
        Kvals[indep] = 0.0
        K[iu, iv] = Kvals
        K[iv, iu] = Kvals
    NDelta, Jinv = propagate(K)
    del K
    bar.set_postfix_str("N Delta done")
    bar.update(1)
    prev1, prev2 = np.stack([g1, g2, g1], axis=1), np.stack([g1, g2, g2], axis=1)
    share_pre = np.zeros(n)
    for iu, iv, inverse, w_uv, su, indep in chunks():
        # the Price gradient's site pairs, then ∂(E2_u E2_v) at the previous sites
        gval = w_uv[:, None] * G4[inverse]
        pval = -w_uv[:, None] * np.concatenate([D[iu, 1:4] * E2[iv, None], D[iv, 1:4] * E2[iu, None]], axis=1)
        S4c = S4[inverse]
        if np.any(indep):
            a_in_u = np.any(S4c[indep][:, :, :1] == su[indep][:, None, :], axis=2)
            b_in_u = np.any(S4c[indep][:, :, 1:] == su[indep][:, None, :], axis=2)
            gval[indep] *= a_in_u != b_in_u                                        # keep cross entries only
            pval[indep] = 0.0
        S1 = np.concatenate([S4c[:, :, 0], prev1[iu], prev1[iv]], axis=1)
        S2 = np.concatenate([S4c[:, :, 1], prev2[iu], prev2[iv]], axis=1)
        V = np.where(S1 >= 0, np.concatenate([gval, pval], axis=1), 0.0)
        np.add.at(share_pre, iu, np.sum(V * lift.lifted(Jinv, S1, S2, iv[:, None]), axis=1))
        off = iu != iv
        np.add.at(share_pre, iv[off], np.sum(V[off] * lift.lifted(Jinv, S1[off], S2[off], iu[off, None]), axis=1))
    return NDelta, Jinv, share_pre


def _vertices_compiled(spec: NetworkSpec, ing: Ingredients, n_nodes, bar, propagate, chunk: int = CHUNK):
    """:func:`_vertices` without skip connections by the compiled loops of :mod:`.assembly`: the same K,
    NΔ and t_u, with no per-pair-pair index arrays (memory: the moments per distinct multiset, n² arrays)."""
    ps, Cf, D = ing.ps, ing.Cf, ing.D
    n, P = ps.n, ps.P
    sites = np.ascontiguousarray(ps.pairs - P)
    times = sites // P
    exists = np.ascontiguousarray(spec.block_support())
    tables = _binomials(max(int(ps.pairs.max(initial=P)) - P + 4, 5))
    binom = np.stack(tables[1:])
    top = binom.shape[1] - 4  # the largest previous site
    needed = np.zeros(int(multiset_rank(np.full((1, 4), top), tables)[0]) + 1, bool)
    assembly.mark_multisets(sites, times, exists, binom, needed)
    ranks = np.flatnonzero(needed)
    slot = np.cumsum(needed, dtype=np.int64) - 1
    del needed
    bar.set_postfix_str(f"{len(ranks)} distinct four-point site sets for K")
    bar.update(1)
    E4, G4 = np.empty(len(ranks)), np.empty((len(ranks), 10))
    for b0 in range(0, len(ranks), chunk):  # the gradient's site pairs follow from the multiset (weight_sharing)
        sl = slice(b0, b0 + chunk)
        E4[sl], G4[sl], _ = four_point(ing.phi, Cf, multiset_unrank(ranks[sl], tables), n_nodes)
    del ranks
    bar.set_postfix_str("four-point moments done")
    bar.update(1)
    E2 = np.ascontiguousarray(D[:, 0])
    K = np.zeros((n, n))
    assembly.assemble_covariance(sites, times, exists, binom, slot, E4, E2, ing.mg2, Cf, K)
    del E4

    def sharing(Jinv):
        share_pre = np.zeros(n)
        assembly.transpose_inplace(Jinv)  # (J⁻¹)ᵀ for the duration of the loop: contiguous columns of J⁻¹
        try:
            assembly.weight_sharing(sites, times, exists, binom, slot, G4, E2, np.ascontiguousarray(D), ing.mg2, Cf,
                                    ps.lookup, np.ascontiguousarray(ps.prev), Jinv, share_pre)
        finally:
            assembly.transpose_inplace(Jinv)
        return share_pre

    if ing.Jinv.shape == (n, n):  # the vertex before NΔ: the moments are freed before K becomes NΔ
        share_pre = sharing(ing.Jinv)
        del G4, slot
        NDelta, Jinv = propagate(K)
    else:  # "dense": J⁻¹ comes with NΔ from the Hessian's inverse
        NDelta, Jinv = propagate(K)
        share_pre = sharing(Jinv)
    del K
    bar.set_postfix_str("N Delta done")
    bar.update(1)
    return NDelta, Jinv, share_pre


# ------------------------------------------------------------------ result
@dataclass
class OneLoop:
    """One-loop statistics of the kernel; N-scaled, per pair and as dense (T, T, P, P) views."""

    spec: NetworkSpec
    mf: MeanField
    ps: PairSpace = field(repr=False)
    NDelta: np.ndarray = field(repr=False)            #: (n, n) N Cov(C_u, C_v)
    shift_terms: dict = field(repr=False)             #: per-pair mean shift by vertex
    emp_var: np.ndarray = field(repr=False)           #: (TP, TP) N Var K̂
    Jinv: np.ndarray = field(repr=False)

    @property
    def C(self) -> np.ndarray:
        """The mean-field kernel C̄ (T, T, P, P) about which the one loop expands (``self.mf.C``)."""
        return self.mf.C

    @property
    def mean_shift(self) -> np.ndarray:
        """N (<C> - C̄), shape (T, T, P, P), all vertices."""
        return self.ps.to_dense(sum(self.shift_terms.values()))

    @property
    def terms(self) -> dict:
        """The mean shift by vertex: 'tadpole' (F'') and 'weight_sharing' (K'), each (T, T, P, P)."""
        return {k: self.ps.to_dense(v) for k, v in self.shift_terms.items()}

    @property
    def kernel_covariance(self) -> KernelCovariance:
        """N Cov(C[t,s,mu,nu], C[t',s',mu',nu']), shape (T, T, P, P, T, T, P, P), lazy: blocks, index tuples
        and the diagonal read NΔ; ``.dense()`` / ``np.asarray`` builds the (TP)⁴ array after a size check."""
        return KernelCovariance(self.ps, self.NDelta)

    def variance(self) -> np.ndarray:
        """N Var C[t, s, mu, nu]: the diagonal of kernel_covariance, shape (T, T, P, P)."""
        return self.kernel_covariance.diagonal()

    def covariance_block(self, t: int, s: int, t2: int, s2: int) -> np.ndarray:
        """N Cov(C[t, s], C[t2, s2]) as a (P, P, P, P) array (0-based times)."""
        return self.kernel_covariance.block(t, s, t2, s2)

    @property
    def empirical_variance(self) -> np.ndarray:
        """N Var of the empirical kernel (1/N) Σ_i h_i h_iᵀ, shape (T, T, P, P)."""
        T, P = self.spec.T, self.mf.P
        return self.emp_var.reshape(T, P, T, P).transpose(0, 2, 1, 3)

    def to_xarray(self):
        """Labelled Dataset (dims t, s, mu, nu; spec in attrs): :func:`symfield.labelled.one_loop`."""
        from ..labelled import one_loop as labelled
        return labelled(self.spec, self.C, self.mean_shift, self.terms, self.variance(), self.empirical_variance)


#: NΔ must be positive semi-definite: NΔ + PSD_RTOL·max(diag NΔ)·1 has a Cholesky factor, else
#: NotPositiveDefinite (the four-point moments are exact to ~1e-12 (closed form) or ~1e-5 (quadrature))
PSD_RTOL = 1e-6


def check_psd(NDelta: np.ndarray, what: str = "N Delta") -> None:
    """Raise NotPositiveDefinite unless ``NDelta`` ≥ -PSD_RTOL·max(diag)·1 (Cholesky certificate)."""
    if not len(NDelta):
        return
    scale = float(np.max(np.abs(np.diag(NDelta)), initial=0.0))
    if not np.all(np.isfinite(NDelta)):
        raise NonFiniteError(f"{what} has non-finite entries")
    work = NDelta.copy()  # one n² copy, factored in place (LAPACK potrf on one triangle)
    work[np.diag_indices_from(work)] += PSD_RTOL * scale + 1e-300
    info = lapack.dpotrf(work.T, lower=True, clean=False, overwrite_a=True)[1]  # F-order view: no copy
    del work
    if info != 0:
        low = float(np.linalg.eigvalsh(NDelta)[0])
        raise NotPositiveDefinite(f"{what} is not positive semi-definite: smallest eigenvalue {low:.3g} against "
                                  f"a largest diagonal entry {scale:.3g} (tolerance {PSD_RTOL:g} of it); the "
                                  "four-point moments are not accurate enough here (quadrature of this phi at "
                                  "these variances) - pass larger n_nodes or rescale X") from None


@legacy_positional("n_nodes", "progress", "solver")
def one_loop(spec: NetworkSpec, X, *, method: str | None = None, n_nodes: dict | None = None, progress: bool = False,
             solver: str | None = None) -> OneLoop:
    """One-loop kernel covariance, mean shift (by vertex) and empirical-kernel variance of ``spec``.

    ``method``: "causal" (J⁻¹ by sparse forward substitution, default), "dense" (reference: dense
    inverse of the full pair-of-pairs Hessian, for benchmarks and checks) or "reference" (the
    implementation before the closed-form four-point moments: Gauss–Hermite for every φ and dense
    products J⁻¹ K J⁻ᵀ, kept for benchmarks); ``solver`` is its deprecated name.  NΔ is checked to
    be positive semi-definite (:func:`check_psd`).  φ = c·tanh(κx) uses its erf sum for every vertex
    (:func:`vertex_phi`: exact for φ̃, |φ̃ - φ| <= 9.44e-6 |c|, at every input scale) unless ``n_nodes``
    is given or ``method="reference"`` (then tanh itself by Gauss–Hermite).
    """
    check_spec(spec)
    solver, name = renamed(method, solver, "solver", "method", default="causal", where="one_loop")
    check_choice(solver, name, ("causal", "dense", "reference"))
    P = spec.check_inputs(X).shape[0]
    if n_nodes is not None:  # checked before anything is computed
        n_nodes = {m: _checked_nodes(m, n) for m, n in check_mapping("n_nodes", n_nodes).items()}
    check_memory(estimate_bytes(spec, P, solver), f"one_loop ({pair_count(spec, P)} pair variables, P = {P})",
                 "the number of inputs X (P) or T")
    n = pair_count(spec, P)
    check_time(estimate_operations(spec, P, solver, n_nodes), f"one_loop ({n} pair variables, "
               f"{orthant_terms(vertex_phi(spec.phi_fn, solver == 'reference' or n_nodes is not None))} orthant "
               "moments per four-point multiset)", "P or T")
    with progress_bar(6, "one_loop", progress) as bar:
        return _one_loop(spec, X, solver, n_nodes, bar)


def _one_loop(spec, X, solver, n_nodes, bar) -> OneLoop:
    mf = mean_field(spec, X)
    ing = ingredients(spec, mf, invert=solver != "dense", reference=solver == "reference" or n_nodes is not None)
    ps, lift, Cf, mg2, D = ing.ps, ing.lift, ing.Cf, ing.mg2, ing.D
    n = ps.n
    bar.set_postfix_str(f"{n} pair variables, J assembled")
    bar.update(1)

    def propagate(K):
        if solver == "dense":
            return dense_propagators(ing.J, K)
        if solver == "causal" and sps.issparse(ing.J) and n:  # two sparse forward substitutions in place, O(n²)
            return causal_propagate(ing.J, K), ing.Jinv
        return ing.Jinv @ K @ ing.Jinv.T, ing.Jinv

    if solver == "reference" or not lift.identity:
        NDelta, Jinv, share_pre = _vertices(spec, ing, n_nodes, solver == "reference", bar, propagate)
    else:
        NDelta, Jinv, share_pre = _vertices_compiled(spec, ing, n_nodes, bar, propagate)
    # F'' tadpole: ½ Σ_ij F''_{u,ij} (∂c_i/∂D NΔ ∂c_j/∂Dᵀ)_uu at the previous-site pairs c_i
    tad_pre = np.zeros(n)
    for (i, j) in HESS:
        mult = 1.0 if i == j else 2.0
        if lift.identity:  # the gather NΔ[prev_i, prev_j] (0 where a previous pair is at time 0)
            pi, pj = ps.prev[:, i], ps.prev[:, j]
            rows = np.where((pi >= 0) & (pj >= 0), NDelta[np.maximum(pi, 0), np.maximum(pj, 0)], 0.0)
        else:
            rows = _row_products(ing.prev[i], ing.prev[j], NDelta)
        tad_pre += 0.5 * mult * mg2 * D[:, 4 + HESS.index((i, j))] * rows
    terms = {"tadpole": Jinv @ tad_pre, "weight_sharing": Jinv @ share_pre}
    R = Jinv
    if not lift.identity:  # report the kernel C = 𝒜 D 𝒜ᵀ on its own pairs
        ps = pair_space(spec, ps.P)
        Lo = lift.rows(ps.pairs[:, 0], ps.pairs[:, 1])
        NDelta, R = Lo @ NDelta @ Lo.T, Lo @ Jinv
        terms = {k: Lo @ v for k, v in terms.items()}
    bar.update(1)
    emp_var = _empirical_variance(ps, ing.ps, Cf, mg2, D, np.diag(NDelta), R)
    check_psd(NDelta)
    bar.set_postfix_str("done")
    bar.update(1)
    return OneLoop(spec, mf, ps, NDelta, terms, emp_var, R)


def _row_products(Li, Lj, M: np.ndarray) -> np.ndarray:
    """(Li M Ljᵀ)_uu for every row u (dense Li, Lj: with skip connections)."""
    return np.sum(Lj * (Li @ M), axis=1)


def _empirical_variance(ps: PairSpace, var: PairSpace, Cf, mg2, D, NDelta_diag, R) -> np.ndarray:
    """N Var K̂ for all site pairs: sampling + NΔ + response term (Stein: Cov(z_s z_s', φ_c φ_d) =
    Σ_{j,k∈{c,d}} C_sj C_s'k <∂_j ∂_k φ_c φ_d>, with <φ''φ> = 2 ∂E/∂c11, <φ'φ'> = ∂E/∂c12).

    ``ps``: the kernel's pairs {s, s'}; ``var``: the field variables (previous sites c, d);
    ``R`` (ps.n, var.n): ∂C_{ss'}/∂(noise of the variable), J⁻¹ without skip."""
    d = np.diag(Cf)
    out = np.outer(d, d) + Cf ** 2
    if ps.n == 0 or var.n == 0:
        return out
    P = ps.P
    s, s2 = ps.pairs[:, 0], ps.pairs[:, 1]
    c, dd = var.pairs[:, 0] - P, var.pairs[:, 1] - P
    response = np.empty(ps.n)
    step = max(1, CHUNK // max(var.n, 1))
    for r0 in range(0, ps.n, step):  # rows in chunks: temporaries of (step, var.n), not (n, n)
        r = slice(r0, r0 + step)
        Csc, Cs2c = Cf[s[r, None], c[None, :]], Cf[s2[r, None], c[None, :]]
        Csd, Cs2d = Cf[s[r, None], dd[None, :]], Cf[s2[r, None], dd[None, :]]
        cov = 2 * Csc * Cs2c * D[None, :, 1] + 2 * Csd * Cs2d * D[None, :, 2] + \
            (Csc * Cs2d + Csd * Cs2c) * D[None, :, 3]
        response[r] = 2 * np.sum(mg2[None, :] * cov * R[r], axis=1)
    extra = NDelta_diag + response
    out[s, s2] += extra
    out[s2, s] = out[s, s2]
    return out


def dnn_recursion(spec: NetworkSpec, X, n_nodes: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """DNN closed recursions (theory Sec. 8.4), layer by layer on within-layer pairs:

        NΔ⁽ᵃ⁾ = K_a + F'_a NΔ⁽ᵃ⁻¹⁾ F'_aᵀ,    m⁽ᵃ⁾ = F'_a m⁽ᵃ⁻¹⁾ + ½ F''_a[NΔ⁽ᵃ⁻¹⁾],   Δ⁽¹⁾ = m⁽¹⁾ = 0.

    Returns (NΔ, N(<C> - C̄)) per pair, in the order of ``pair_space(spec, P)``.
    """
    if (spec.weight_mask() != np.eye(spec.T)).any() or spec.has_skip:
        raise SpecError("dnn_recursion needs fresh weights per layer and no skip (use one_loop otherwise)")
    mf = mean_field(spec, X)
    ing = ingredients(spec, mf, reference=n_nodes is not None)
    ps, D, mg2 = ing.ps, ing.D, ing.mg2
    layer = ps.pairs[:, 0] // ps.P
    NDelta = np.zeros((ps.n, ps.n))
    shift = np.zeros(ps.n)
    Fp = (sps.identity(ps.n, format="csr") - ing.J).toarray()
    for a in range(1, spec.T):
        cur = np.nonzero(layer == a)[0]
        prv = np.nonzero(layer == a - 1)[0]
        iu, iv = np.triu_indices(len(cur))
        quads, inverse = _multisets(ps, cur[iu], cur[iv])
        E4 = four_point(ing.phi, ing.Cf, quads, n_nodes)[0][inverse]
        Ka = np.zeros((len(cur), len(cur)))
        Ka[iu, iv] = mg2[cur[iu]] * mg2[cur[iv]] * (E4 - D[cur[iu], 0] * D[cur[iv], 0])
        Ka[iv, iu] = Ka[iu, iv]
        Fa = Fp[np.ix_(cur, prv)]
        NDelta[np.ix_(cur, cur)] = Ka + Fa @ NDelta[np.ix_(prv, prv)] @ Fa.T
        tad = np.zeros(len(cur))
        for (i, j) in HESS:
            pi, pj = ps.prev[cur, i], ps.prev[cur, j]
            ok = (pi >= 0) & (pj >= 0)
            tad[ok] += 0.5 * (1.0 if i == j else 2.0) * mg2[cur[ok]] * D[cur[ok], 4 + HESS.index((i, j))] * \
                NDelta[pi[ok], pj[ok]]
        shift[cur] = Fa @ shift[prv] + tad
    return NDelta, shift
