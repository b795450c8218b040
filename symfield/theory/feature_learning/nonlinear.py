"""μP feature learning for any φ: the forward–backward equations with the tilted measure (theory Secs. 3, 4, 6).

    C = ⟨φφᵀ⟩,   Ĉ = Bᵀ(Wm ∘ Aᵀ(Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹)A)B + σ_v² E_S(M_out ∘ wwᵀ),   w = A(C)⁻¹ y_S
    S/N = −½ tr(ĈC) + ln Z(Σ(C), Ĉ) − ½ y_Sᵀ A(C)⁻¹ y_S                                     (:func:`action`)

averages over p(h) ∝ N(h; 0, Σ(C)) e^{½φᵀĈφ}.  Solved by Anderson-accelerated fixed-point iteration on
(C, Ĉ) (:func:`anderson`), and Newton–Krylov where that stalls (:func:`newton_krylov`: the map is not
contractive at strong signal), with continuation in the signal scale s (targets s·Y).  Measures:

- linear φ: the exact Gaussian measure (:class:`~.tilted_quadrature.GaussianMeasure`);
- factorised (Σ, Ĉ time-block-diagonal: no cross-time W, input or readout terms, or an odd φ on the
  symmetric branch): per time step, by Gauss–Hermite quadrature (P <= 3) or Monte Carlo;
- the full T·P-dimensional measure: quadrature for T·P <= 3, else importance sampling with common random
  numbers (:class:`~.tilted_mc.TiltedMC`).

Where the symmetric branch exists and loses stability in a lag sector (:mod:`.threshold`), the broken
branch is seeded along the unstable direction and solved with the full measure; the branch of largest
action — evaluated by the same (full) estimator for every candidate — is selected.  Without a symmetric
sector, an odd number of real eigenvalues of the map's Jacobian above 1 marks the continued branch as a saddle
of the action (a bifurcation was passed): the path moves to the stationary point of largest action found along
the top such mode (:meth:`NonlinearSolver.symmetric`, :meth:`NonlinearSolver.unstable_modes`).
"""
from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
from scipy.linalg import lu_factor, lu_solve
from scipy.optimize import brentq
from scipy.sparse.linalg import LinearOperator, eigs, gmres

from ...errors import NotPositiveDefinite, SpecError
from ...progress import progress_bar
from ...solve import ConvergenceError, continue_in
from .action import LinearAction, gp_kernel
from .prediction import FINE_INNER_NODES, INNER_NODES, joint_kernel, joint_mirror, readout, tilted_joint_kernel
from .problem import FLProblem
from .result import SYMMETRIC_TOL, cross_time_size, largest_action, mirror, outside_bulk
from .linearised import LinearisedMeasure
from .threshold import top_lag
from .tilted_mc import TiltedMC
from .tilted_quadrature import MAX_QUADRATURE_DIM, BlockMeasure, GaussianMeasure, TiltedQuadrature

#: the sampled-moment proposal covariance is (1 + PROPOSAL_WIDENING/√d) × the tilted ⟨hhᵀ⟩: tails heavier than the
#: measure, by less in high dimension d (the log-weight spread of a widened Gaussian grows like √d)
PROPOSAL_WIDENING = 0.5
#: a lag-sector Hessian eigenvalue above this counts as an instability
UNSTABLE_TOL = 1e-9
#: real eigenvalues of the map's Jacobian above 1 + this are counted; an odd count marks a saddle (no symmetric sector)
UNSTABLE_MAP = 1e-6
#: the map's Jacobian is formed densely (one evaluation per unknown) up to this many unknowns
DENSE_JACOBIAN = 128
#: GMRES iterations (one cycle) per Newton step: the map's Jacobian is far from normal (causal chains in time), at
#: T = 8, P = 5, s = 0.375 the exact J needs 30–60 iterations for a relative residual 0.1 without preconditioner
KRYLOV = 120
#: relative residual of the intermediate continuation points (only the end point is reported)
PATH_TOL = 1e-6
#: Monte Carlo estimators: the end point's residual tolerance is at least MC_TOL / √samples
MC_TOL = 1e-3
#: Monte Carlo estimators: intermediate continuation points to this many times the end point's tolerance
MC_PATH_FACTOR = 10
#: Monte Carlo: Newton steps on the map with moving points without a 10 % decrease before the frozen-point map
#: takes over (:meth:`NonlinearSolver.solve`)
MOVING_STALL = 2
#: ... and only from a residual below this (T = 8, P = 5, erf: it converged from 0.017 and below, stalled from 0.012 and
#: above — the log-weights of frozen points change like √d away from where they were drawn)
FROZEN_START = 1e-2
#: the Newton–Krylov corrector is preconditioned by the dense linearised Jacobian up to this many unknowns
#: (2 n², n = T·P <= 41; one factorisation costs n(n+1) cheap map evaluations and O(n⁶) flops; a factorised measure:
#: the 2·T·P(P + 1)/2 entries of its time blocks)
DENSE_PRECONDITIONER = 3400
#: a factorised measure is preconditioned on its time blocks (False: by the full-space rule above, as before — the
#: reference of ``benchmarks/bench_feature_learning_nonlinear.py --dnn``; erf DNN, T = 20, P = 10, 0.3·Y: 1339 map
#: evaluations, 180.8 s, against 350 and 73.7 s)
BLOCK_PRECONDITIONER = True
#: Monte Carlo estimators: a continuation step counts as a jump (a fold) only if its solution lies further than
#: JUMP_SCATTER × |x| / √samples beyond twice the predictor's displacement (sampled solutions scatter by ~|x|/√ESS)
JUMP_SCATTER = 3.0
#: a seeded solution with a smaller cross-time size (relative) counts as the symmetric one (exact measures)
SEED_TOL = 1e-4
#: Newton steps without a 10 % decrease of the residual after which the corrector gives up (at T·P = 40 near a
#: fold it stalled at a constant residual 0.006–0.04 for all 40 allowed steps, 15 s each time)
NEWTON_STALL = 5
#: Newton steps allowed from a point displaced along an unstable mode (a seed that does not converge
#: quickly is dropped: at T·P = 40 one cost ~2500 map evaluations with the general limit of 40)
SEED_NEWTON_STEPS = 10
#: Anderson iterations without halving the residual before the corrector switches to Newton–Krylov
ANDERSON_STALL = 25
#: the full measure by Monte Carlo needs at least this many times n(n+1)/2 points (n = T·P: the entries of ⟨φφᵀ⟩)
#: for the Jacobian of the sampled map to be the theory's: erf, T = 8, P = 5 (n(n+1)/2 = 820), s = 0.25, top real
#: parts 1.42 / 1.08 / 1.039 / 1.034 with 500 / 1000 / 4000 / 16000 points (1000: a spurious real eigenvalue above 1,
#: a false saddle); T = 20, P = 10 with 4000 points: a cluster near 2.4 (benchmarks/bench_fl_mc_jacobian.py)
MC_JACOBIAN_FACTOR = 2
#: the saddle check asks ARPACK for at most this many eigenvalues of largest real part (k doubled from 6)
UNSTABLE_MAX_K = 24


# --------------------------------------------------------------------------- measures
ESTIMATOR_KEYS = ("samples", "seed", "nodes", "control")


def check_estimator(estimator, phi=None) -> dict:
    """Validate ``estimator`` = dict(samples=int >= 100, seed=int >= 0, nodes=int >= 2 or None, control=bool: the
    Monte Carlo control variate of :mod:`.tilted_mc`, default False); refused for linear ``phi`` (the tilted measure
    is Gaussian and solved exactly: there is no rule to set)."""
    if estimator is None:
        return {}
    if phi is not None and phi.name == "linear":
        raise SpecError(f"estimator={estimator!r} sets the quadrature / Monte Carlo rule of the tilted measure of a "
                        "nonlinear φ; for linear φ the measure is Gaussian and solved exactly: leave estimator=None")
    if not isinstance(estimator, dict) or not set(estimator) <= set(ESTIMATOR_KEYS):
        raise SpecError(f"estimator must be a dict with keys from {ESTIMATOR_KEYS}, got {estimator!r}")
    out = dict(estimator)
    if not isinstance(out.get("control", False), (bool, np.bool_)):
        raise SpecError(f"estimator['control'] must be True or False, got {out['control']!r}")
    for key, low in (("samples", 100), ("seed", 0), ("nodes", 2)):
        v = out.get(key)
        if v is None and key == "nodes":
            continue
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low):
            raise SpecError(f"estimator[{key!r}] must be an integer >= {low}, got {v!r}")
    return out


def measure_for(pr: FLProblem, d: int, samples: int, seed: int, nodes=None, control: bool = False):
    """The estimator of a d-dimensional tilted measure: Gaussian (linear φ), quadrature (d <= 3), else MC
    (``control``: with the control variate of :mod:`.tilted_mc`)."""
    phi = pr.spec.phi_fn
    if phi.name == "linear":
        return GaussianMeasure()
    if d <= MAX_QUADRATURE_DIM:
        return TiltedQuadrature(phi, nodes)
    return TiltedMC(phi, samples=samples, seed=seed, control=control)


@lru_cache(maxsize=None)
def _odd(key: str, phi) -> bool:
    return bool(phi.odd)


def odd(phi) -> bool:
    """φ(−x) = −φ(x) (symbolic check, cached per φ)."""
    return _odd(phi.key, phi)


def factorised(pr: FLProblem) -> bool:
    """Is the time-block-diagonal set invariant (the symmetric sector exists) for this φ?"""
    if not pr.block_diagonal_invariant():
        return False
    phi = pr.spec.phi_fn
    cross_w = np.any(pr.wmask[pr.lag() > 0] != 0)
    return bool(phi.name == "linear" or odd(phi) or not cross_w)


def coupled(pr: FLProblem) -> bool:
    """Do the lag >= 1 entries of C enter Σ or the data term (else no lag instability)?"""
    t = pr.times()[pr.sites_S]
    cross_out = (t[:, None] != t[None, :]) & (pr.mask_out_SS != 0)
    return bool(np.any(pr.wmask[pr.lag() > 0] != 0) or cross_out.any())


# --------------------------------------------------------------------------- the map
class FixedPoint:
    """The forward–backward map x = (C, Ĉ) -> (⟨φφᵀ⟩, backward) at signal scale s, with one measure."""

    def __init__(self, pr: FLProblem, s: float, measure):
        self.pr, self.s, self.measure = pr, s, measure
        self.act = LinearAction(pr.with_targets(s * pr.Y))

    def evaluate(self, x: np.ndarray, errors: bool = False):
        C, Chat = x
        p = self.act.point(C, kernel=False)  # Σ⁻¹ on the range of Σ(C); C = ⟨φφᵀ⟩ needs no inverse
        m = self.measure.tilted(p.Sigma, Chat, errors=errors)
        return np.stack([m.phiphi, self.act.chat(p, m.hh, m.tilt)]), p, m

    def action(self, x: np.ndarray, p, m) -> float:
        """S/N = −½ tr(ĈC) + ln Z − ½ y_Sᵀ A⁻¹ y_S (0 at the prior without data)."""
        return float(-0.5 * np.sum(x[1] * x[0]) + m.logZ + self.act.data_term(p))


def anderson(fp: FixedPoint, x0: np.ndarray, tol: float = 1e-10, maxiter: int = 400, memory: int = 6,
             beta: float = 1.0, picard: int = 0, stall: int | None = None,
             label: str = "forward-backward iteration"):
    """Anderson-accelerated iteration x <- G(x) of :class:`FixedPoint` (``picard`` plain damped steps first);
    returns (x, point, moments, map evaluations).  Residual: max |G(x) − x| / max |x|.  A step leaving the
    domain (C or Σ not positive definite) is halved back; ConvergenceError after ``maxiter`` iterations, or
    after ``stall`` iterations without halving the residual (the error's ``best``: the point of smallest residual)."""
    x = x0.copy()
    dX, dF, hist = [], [], []
    x_prev = f_prev = None
    best, mark, it_best = (np.inf, None), np.inf, 0
    for it in range(maxiter):
        try:
            gx, p, m = fp.evaluate(x)
        except NotPositiveDefinite:
            if x_prev is None:
                raise ConvergenceError(f"{label}: the starting point is outside the domain") from None
            x = 0.5 * (x + x_prev)
            dX, dF = [], []
            continue
        f = gx - x
        r = float(np.abs(f).max() / max(np.abs(x).max(), 1e-300))
        hist.append(r)
        if not np.isfinite(r):
            raise ConvergenceError(f"{label}: non-finite residual", hist)
        if r < tol:
            return x, p, m, it + 1
        if r < 0.5 * mark:
            mark, it_best = r, it
        if stall is not None and it - it_best > stall:
            break
        if r < best[0]:
            best = (r, x)
        elif r > 1e3 * best[0]:  # diverging: restart from the best point, damped
            x, beta, dX, dF, x_prev = best[1], 0.5 * beta, [], [], None
            continue
        if x_prev is not None and it >= picard:
            dX.append((x - x_prev).ravel())
            dF.append((f - f_prev).ravel())
            dX, dF = dX[-memory:], dF[-memory:]
        x_prev, f_prev = x, f
        if dF and it >= picard:
            Fm, Xm = np.array(dF).T, np.array(dX).T
            gamma = np.linalg.lstsq(Fm, f.ravel(), rcond=None)[0]
            x = x + beta * f - ((Xm + beta * Fm) @ gamma).reshape(x.shape)
        else:
            x = x + (beta if it >= picard else 0.5 * beta) * f
        x = 0.5 * (x + np.swapaxes(x, -1, -2))
    err = ConvergenceError(f"{label}: no convergence in {it + 1} iterations", hist)
    err.best = best[1]
    raise err


def fixed_point_operator(fp: FixedPoint, x: np.ndarray, g0: np.ndarray, rel_step: float = 1e-7) -> LinearOperator:
    """v -> (1 − J) v with J = ∂G/∂x at x (G(x) = ``g0``), by forward differences of the (smooth) map along
    the symmetrised v; the step is ``rel_step`` × max |x| / max |v|.  For the deterministic rules (quadrature,
    the linearised surrogate); frozen Monte Carlo points have the exact :func:`jacobian_operator`."""
    scale = np.abs(x).max()

    def matvec(v):
        v = np.asarray(v).ravel()
        eps = rel_step * scale / max(np.abs(v).max(), 1e-300)
        xv = x + eps * v.reshape(x.shape)
        xv = 0.5 * (xv + np.swapaxes(xv, -1, -2))
        return v - (fp.evaluate(xv)[0] - g0).ravel() / eps

    return LinearOperator((x.size, x.size), matvec=matvec, dtype=float)


def jacobian_operator(fp: FixedPoint, x: np.ndarray, evaluated=None) -> LinearOperator:
    """v -> (1 − J) v at x (``evaluated``: fp.evaluate(x) if known).  Exact where the measure differentiates its
    estimates (``Moments.jvp``: frozen Monte Carlo points): with v = (δC, δĈ) symmetrised, δΣ = Σ(δC) (linear),

        J v = (δ⟨φφᵀ⟩,  Bᵀ(Wm ∘ Aᵀ δ(Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹) A)B + δ[σ_v² E_S(M_out ∘ wwᵀ)])

    (the last term :meth:`.action.LinearAction.data_hessp`; δ of the middle one the Stein estimate's, or from
    δ⟨hhᵀ⟩ for kinked φ); else forward differences (:func:`fixed_point_operator`)."""
    gx, p, m = fp.evaluate(x) if evaluated is None else evaluated
    if m.jvp is None:
        return fixed_point_operator(fp, x, gx)
    act = fp.act

    def matvec(v):
        v = np.asarray(v).ravel()
        dC, dCh = 0.5 * (v.reshape(x.shape) + np.swapaxes(v.reshape(x.shape), -1, -2))
        dS = act.dsigma(dC)
        dff, dhh, dT = m.jvp(dS, dCh)
        if dT is None:  # δ(Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹)
            Si = p.Sinv
            SdS = Si @ dS @ Si
            X = SdS @ m.hh @ Si
            dT = Si @ dhh @ Si - X - X.T + SdS
        return v - np.stack([dff, act.sigma_adjoint(dT) + act.data_hessp(p, dC)]).ravel()

    return LinearOperator((x.size, x.size), matvec=matvec, dtype=float)


def dense_preconditioner(surrogate: FixedPoint, x: np.ndarray, entries: np.ndarray | None = None,
                         progress: bool = False) -> LinearOperator:
    """M ≈ (1 − J)⁻¹: the LU factors of 1 − J_s of the linearised surrogate map (:mod:`.linearised`; J_s by
    forward differences, one cheap evaluation per symmetric unit direction E_ij + E_ji) on the upper-triangle
    coordinates of (C, Ĉ).  Exact for linear φ; for erf (T = 5, P = 4, s = 0.75) the eigenvalues of
    M(1 − J) lie within 0.72 of 1 (median 0.015), those of 1 − J between 0 and 1.34.  ``entries``: an (n, n)
    mask of the entries the map reads and writes (the time blocks of a factorised measure, where for odd φ the
    others stay 0 and J vanishes on them); M is the identity on the others.  ``progress``: a bar over the columns
    (2200 at T = 20, P = 10: ~30 s)."""
    n = x.shape[-1]
    i, j = np.triu_indices(n)
    if entries is not None:
        keep = entries[i, j]
        i, j = i[keep], j[keep]
    base = np.arange(x.size // (n * n))[:, None] * n * n
    up, low = (base + i * n + j).ravel(), (base + j * n + i).ravel()
    op = fixed_point_operator(surrogate, x, surrogate.evaluate(x)[0])
    cols = np.empty((len(up), len(up)))
    with progress_bar(len(up), "feature_learning: preconditioner columns", progress) as bar:
        for k in range(len(up)):
            e = np.zeros(x.size)
            e[up[k]] = e[low[k]] = 1.0
            cols[:, k] = op.matvec(e)[up]
            bar.update(1)
    lu = lu_factor(cols)

    def apply(v):
        out = np.array(v, dtype=float).ravel()
        out[up] = out[low] = lu_solve(lu, 0.5 * (out[up] + out[low]))
        return out

    return LinearOperator((x.size, x.size), matvec=apply, dtype=float)


def krylov_solve(op: LinearOperator, b: np.ndarray, rtol: float, restart: int, cycles: int = 1, preconditioner=None):
    """v with op v ≈ b by GMRES (``cycles`` restarts of ``restart`` products), right-preconditioned by M ≈ op⁻¹ if
    given: GMRES on op M, v = M u, so that it minimises the true residual (scipy's ``M=`` stops on the
    preconditioned one)."""
    if preconditioner is not None:
        M, plain = preconditioner, op
        op = LinearOperator(op.shape, matvec=lambda u: plain.matvec(M.matvec(u)), dtype=float)
    u = gmres(op, b, rtol=rtol, restart=restart, maxiter=cycles)[0]
    return u if preconditioner is None else preconditioner.matvec(u)


def newton_krylov(fp: FixedPoint, x0: np.ndarray, tol: float = 1e-10, maxiter: int = 40, krylov: int = KRYLOV,
                  label: str = "forward-backward iteration", preconditioner=None, stall: int = NEWTON_STALL,
                  stats: dict | None = None):
    """Newton's method on F(x) = G(x) − x of :class:`FixedPoint`: (1 − J) δx = F by GMRES
    (:func:`jacobian_operator`; relative residual η = min(0.1, ‖F‖/‖x‖) (Eisenstat–Walker), at most
    ``krylov`` products), then backtracking along the Newton direction on max |F| that also halves steps leaving the
    domain (C or Σ not positive definite).  Returns (x, point, moments, map evaluations); residual as in
    :func:`anderson`; ConvergenceError after ``stall`` steps without a 10 % decrease, its ``best``: the point of
    smallest residual.  ``preconditioner``:
    M ≈ (1 − J)⁻¹ (:func:`dense_preconditioner`, applied on the right: GMRES minimises the true residual); J·v by
    :func:`jacobian_operator`, each counted as one evaluation.  Converges where the plain or Anderson iteration of
    G does not (G need not be contractive: its Jacobian has eigenvalues beyond 1 at strong signal, even for
    linear φ).  ``stats["products"]`` (if given) counts the J·v products."""
    x, hist, evals = x0.copy(), [], 0
    stats = {"products": 0} if stats is None else stats
    try:
        gx, p, m = fp.evaluate(x)
    except NotPositiveDefinite:
        raise ConvergenceError(f"{label}: the starting point is outside the domain") from None
    f = gx - x
    r = float(np.abs(f).max() / max(np.abs(x).max(), 1e-300))
    counter, best = [1], (r, x)

    def failed(msg):
        err = ConvergenceError(f"{label}: {msg}", hist)
        err.best, err.evaluations = best[1], int(round(counter[0]))
        return err

    for _ in range(maxiter):
        hist.append(r)
        if not np.isfinite(r):
            raise failed("non-finite residual")
        if r < best[0]:
            best = (r, x)
        if r < tol:
            return x, p, m, int(round(counter[0]))
        if len(hist) > stall and r > 0.9 * hist[-1 - stall]:
            raise failed(f"Newton stalled (residual {r:.3g}, {stall} steps without a 10 % decrease: no root "
                         "nearby, e.g. past a fold)")
        op = jacobian_operator(fp, x, (gx, p, m))
        def product(v):
            counter[0] += 1
            stats["products"] += 1
            return op.matvec(v)

        counted = LinearOperator(op.shape, matvec=product, dtype=float)
        dx = krylov_solve(counted, f.ravel(), min(0.1, max(r, 1e-6)), krylov, 1, preconditioner).reshape(x.shape)
        dx = 0.5 * (dx + np.swapaxes(dx, -1, -2))
        t = 1.0
        for _ in range(12):
            xt = x + t * dx
            try:
                gt, pt, mt = fp.evaluate(xt)
                counter[0] += 1
            except NotPositiveDefinite:
                t *= 0.5
                continue
            ft = gt - xt
            rt = float(np.abs(ft).max() / max(np.abs(xt).max(), 1e-300))
            if rt < (1 - 1e-4 * t) * r or t < 1e-3:
                break
            t *= 0.5
        else:
            raise failed("no step along the Newton direction stays in the domain")
        x, gx, p, m, f, r = xt, gt, pt, mt, ft, rt
    raise failed(f"no convergence in {maxiter} Newton steps")


def solution_deviations(fp: FixedPoint, x: np.ndarray, batches: int = 4, rtol: float = 0.05,
                        preconditioner=None) -> np.ndarray:
    """Deviations δx_k of the solution x* of x = G(x) (entries of C and Ĉ) when only the k-th of ``batches``
    disjoint batches of the common random numbers is used: δx_k = (1 − J)⁻¹ δG_k, with δG_k the deviation of
    the map on batch k and J·v of the whole sample (:func:`jacobian_operator`), solved by GMRES (up to 40 cycles
    of 40 products; right-preconditioned by ``preconditioner``, e.g. the corrector's: erf DNN, T = 20, P = 10, the
    unpreconditioned solves took 41 % of a 113 s solve).  Shape (batches,) + x.shape; the standard error of x* is their std / √batches
    (:func:`batch_error`)."""
    mc = fp.measure.inner if isinstance(fp.measure, BlockMeasure) else fp.measure
    ev = fp.evaluate(x)
    g0 = ev[0]
    devs = []
    try:
        for k in range(batches):
            mc.batch = (k, batches)
            devs.append((fp.evaluate(x)[0] - g0).ravel())
    finally:
        mc.batch = None
    op = jacobian_operator(fp, x, ev)
    dx = []
    for d in devs:
        dx.append(krylov_solve(op, d, rtol, 40, 40, preconditioner))
    return np.array(dx).reshape((batches,) + x.shape)


def batch_error(deviations: np.ndarray) -> np.ndarray:
    """Standard error of the full-sample estimate from the deviations of B disjoint batches: std / √B."""
    return deviations.std(axis=0, ddof=1) / np.sqrt(len(deviations))


# --------------------------------------------------------------------------- result
class NLBranch:
    """One stationary point: ``name``, site kernels ``C``, ``Chat`` (n, n), ``action`` S/N, ``error``."""

    def __init__(self, name, x, action, error, moments):
        self.name, self.C, self.Chat, self.action, self.error, self.moments = name, x[0], x[1], action, error, moments
        self.offlag_eigenvalue = float("nan")  # lag-sector Hessian (symmetric) / J − 1 (continued) eigenvalue
        self.fixed_point = self.deviations = self.proposal = self.sample = None  # set by NonlinearSolver.branch

    C_Chat = property(lambda self: np.stack([self.C, self.Chat]))

    def __repr__(self):
        return f"NLBranch({self.name!r}, action={self.action:.8g}, error={self.error:.2g})"


class NonlinearFeatureLearning:
    """Result of :func:`feature_learning` for any φ: kernels on (t, s, μ, ν), branches, predictions.

    ``error``: the solver's accuracy estimate of C, relative to max |C|: iteration residual + quadrature
    difference at a finer rule, or the largest Monte Carlo standard error of the entries of C at the solution,
    propagated through the fixed point (:func:`solution_deviations`, four batches: the estimate itself scatters
    by tens of per cent, and its maximum over the entries lies above the typical entry's error)."""

    def __init__(self, pr: FLProblem, branches: list, selected: NLBranch, s_branch=None, path=None):
        self.problem, self.branches, self.selected, self.s_branch, self.path = pr, branches, selected, s_branch, path
        self._act = LinearAction(pr)

    spec = property(lambda self: self.problem.spec)
    C_sites = property(lambda self: self.selected.C)
    action = property(lambda self: self.selected.action)
    error = property(lambda self: self.selected.error)

    @property
    def C(self):
        """⟨φφᵀ⟩[t, s, μ, ν], shape (T, T, P, P)."""
        return self.problem.from_sites(self.selected.C)

    @property
    def Chat(self):
        return self.problem.from_sites(self.selected.Chat)

    @property
    def Sigma(self):
        return self.problem.from_sites(self._act.sigma(self.selected.C))

    @property
    def phase(self) -> str:
        return "broken" if cross_time_size(self.problem, self.selected.C) > SYMMETRIC_TOL else "symmetric"

    @property
    def explicitly_broken(self) -> bool:
        return not factorised(self.problem)

    def correlation(self):
        d = np.sqrt(np.diag(self.selected.C))
        return self.problem.from_sites(self.selected.C / np.outer(d, d))

    def order_parameter(self) -> float:
        """|corr(T-1, T)| of pattern 1."""
        return 0.0 if self.problem.T < 2 else float(abs(self.correlation()[-2, -1, 0, 0]))

    def predict(self, X_new=None, *, average_branches: bool = False, error: bool = False):
        """Posterior-predictive mean f̄ = σ_v² (M_out ∘ C)_{·S} A⁻¹ y_S, shape (P, T) (``X_new`` None) or
        (P_new, T) for new patterns or sequences shaped like X, from the learned kernels without re-solving
        (:func:`.prediction.tilted_joint_kernel`: the same estimator as the solve for the training sites,
        conditional Gaussian rules for the new ones; equal to re-solving with them appended unsupervised).

        ``average_branches``: the mean over the selected branch and its Z2 mirror J C J (where the symmetry is
        broken spontaneously; what the finite-N posterior mean converges to), as for linear φ.
        ``error``: also return the standard error of f̄ (same shape): Monte Carlo estimators — the batch
        deviations of the solution (:func:`solution_deviations`) carried through the prediction with the
        points of each batch; deterministic rules — the change under finer inner rules plus ``error`` × |f̄|."""
        br = self.selected
        mirrored = average_branches and self.phase == "broken" and not self.explicitly_broken
        x = np.stack([br.C, br.Chat])
        f = self._predict_at(x, br.moments.points, X_new, mirrored)
        if not error:
            return f
        if br.deviations is None:
            fine = f if X_new is None else self._predict_at(x, br.moments.points, X_new, mirrored, FINE_INNER_NODES)
            return f, np.abs(fine - f) + br.error * np.abs(f)
        fp, mc = br.fixed_point, self._sampler()
        saved = mc.Q, mc.frozen
        mc.adapt(br.proposal)
        mc.frozen = br.sample
        dev = []
        try:
            for k, dx in enumerate(br.deviations):
                mc.batch = (k, len(br.deviations))
                xk = x + dx
                m = fp.evaluate(xk)[2]
                dev.append(self._predict_at(xk, m.points, X_new, mirrored) - f)
        finally:
            mc.batch = None
            mc.adapt(saved[0])
            mc.frozen = saved[1]
        return f, batch_error(np.array(dev))

    def _sampler(self):
        m = self.selected.fixed_point.measure
        return m.inner if isinstance(m, BlockMeasure) else m

    def _predict_at(self, x, points, X_new, mirrored: bool, nodes=INNER_NODES) -> np.ndarray:
        """f̄ at the solution x = (C, Ĉ) with the estimator's ``points`` (mean with the Z2 image if ``mirrored``)."""
        pr = self.problem
        C, Chat = x
        if X_new is None:
            Cs = [C, mirror(pr, C)] if mirrored else [C]
            return np.mean([self._act.predict(c).reshape(pr.T, pr.P).T for c in Cs], axis=0)
        if points is None:  # linear φ, exact Gaussian measure: the closed form
            Cj, a, b = joint_kernel(pr, C, Chat, X_new)
        else:
            odd_blocks = bool(self.selected.moments.extra.get("odd", False))
            Cj, a, b = tilted_joint_kernel(pr, pr.spec.phi_fn, C, points, X_new, odd_blocks, nodes)
        out = []
        for c in ([Cj, joint_mirror(Cj, pr.T)] if mirrored else [Cj]):
            w = self._act.point(c[np.ix_(a, a)], kernel=False).w
            out.append(readout(pr, c, a, b, w))
        return np.mean(out, axis=0)

    def learned_eigenvalues(self) -> np.ndarray:
        """eig(G_φ⁻¹ ⟨Φ_pᵀ H_n⟩/N) for one W shared by all steps (theory Sec. 8, nonlinear form):
        G_φ = ⟨φφᵀ⟩ on the sites t <= T-1, ⟨φ(h_a) h_{b+1}⟩ from the tilted measure."""
        pr = self.problem
        if not np.all(pr.spec.weight_mask()[1:, 1:] == 1):
            raise SpecError("learned_eigenvalues (nonlinear) is implemented for one W shared by all steps")
        P, n = pr.P, pr.n
        pp, nn = np.arange(n - P), np.arange(P, n)
        G = self.selected.C[np.ix_(pp, pp)]
        M = self.selected.moments.phih[np.ix_(pp, nn)]
        return np.linalg.eigvals(np.linalg.lstsq(G, M, rcond=None)[0])

    def outliers(self) -> np.ndarray:
        """Learned eigenvalues (:meth:`learned_eigenvalues`) outside the bulk disc |λ| <= g (theory Sec. 8)."""
        return outside_bulk(self.learned_eigenvalues(), float(self.spec.g_values()[0]))

    def fixed_point_residual(self) -> float:
        return self.selected.extra_residual

    def __repr__(self):
        return (f"NonlinearFeatureLearning({self.spec.label}, phi={self.spec.phi_fn.name}, T={self.problem.T}, "
                f"P={self.problem.P}, phase={self.phase!r}, action={self.action:.6g}, error={self.error:.2g})")


# --------------------------------------------------------------------------- solver
class NonlinearSolver:
    """Continuation in s of the forward–backward fixed point (module docstring).

    Corrector (:meth:`solve`): Anderson iteration while it keeps halving the residual, then Newton–Krylov
    (:func:`newton_krylov`) from its best point (the map is not contractive at strong signal).  Intermediate
    continuation points are solved to ``PATH_TOL``, the last target of a path to ``tol``; with Monte Carlo
    estimators never below ``MC_TOL``/√samples (the sampled map differs from the exact one by ~1/√ESS: a
    smaller residual buys no accuracy).  ``evaluations`` counts the corrector's map evaluations."""

    def __init__(self, pr: FLProblem, samples: int = 20000, seed: int = 0, tol: float = 1e-10, nodes=None,
                 progress: bool = False, control: bool = False):
        self.pr, self.tol, self.progress, self.samples = pr, tol, progress, samples
        self.sym = factorised(pr)
        self.full = measure_for(pr, pr.n, samples, seed, nodes, control)
        self.block = BlockMeasure(measure_for(pr, pr.P, samples, seed, nodes, control), pr.T, pr.P,
                                  odd=odd(pr.spec.phi_fn)) if self.sym else None
        fine = None if nodes is None else int(1.5 * nodes)
        self._fine = (measure_for(pr, pr.n, samples, seed, fine, control), measure_for(pr, pr.P, samples, seed, fine,
                                                                                       control))
        self.evaluations = 0
        self.stats = {"products": 0}  # J·v products of the Newton–Krylov corrector
        self._pre = None  # (s, M, on time blocks): the dense preconditioner, where and for which measure it was factorised

    def check_samples(self, consequence: str = "") -> bool:
        """Warn (and return False) where the full Monte Carlo measure has fewer than MC_JACOBIAN_FACTOR × n(n+1)/2
        points: its sampled Jacobian is then noise-dominated (``consequence``: what the caller skips for it)."""
        n, samples = self.pr.n, self.samples
        needed = MC_JACOBIAN_FACTOR * n * (n + 1) // 2
        if isinstance(self.full, TiltedMC) and samples < needed:
            warnings.warn(f"samples = {samples} Monte Carlo points for the {n}-dimensional tilted measure (T·P = {n}) "
                          f"are fewer than {MC_JACOBIAN_FACTOR} × n(n+1)/2 = {needed}: the Jacobian of the sampled map "
                          "— Newton steps, the saddle check, the error propagated into fl.error — is then dominated "
                          f"by sampling noise (MC_JACOBIAN_FACTOR){consequence}; pass estimator=dict(samples="
                          f"{needed}) or more", stacklevel=4)
            return False
        return True

    def start(self) -> np.ndarray:
        C0 = gp_kernel(self.pr)
        return np.stack([C0, np.zeros_like(C0)])

    def tolerance(self, measure, final: bool = True) -> float:
        tol = self.tol if final else max(self.tol, PATH_TOL)
        floor = MC_TOL / np.sqrt(self.samples) * (1 if final else MC_PATH_FACTOR)
        return tol if getattr(measure, "exact", True) else max(tol, floor)

    def _adapt(self, fp, x):
        """Monte Carlo proposal: the statistically linearised tilted Gaussian (the estimator's rule) or the
        tilted ⟨hhᵀ⟩ at x, widened (heavier tails than the measure) — whichever has the larger effective
        sample size at x (the estimated ⟨hhᵀ⟩ is noisy in high dimension, the linearisation crude where
        the tilt is strong)."""
        if isinstance(fp.measure, TiltedMC):
            fp.measure.adapt(None)
            try:
                m = fp.evaluate(x)[2]
                fp.measure.adapt((1 + PROPOSAL_WIDENING / np.sqrt(self.pr.n)) * m.hh)
                if fp.evaluate(x)[2].ess < m.ess:
                    fp.measure.adapt(None)
            except NotPositiveDefinite:
                fp.measure.adapt(None)

    def solve(self, s, x, measure, picard=0, label="forward-backward iteration", final=True, newton_steps=40,
              precondition=True):
        """The stationary point at s from x: Anderson while it keeps halving the residual, then Newton–Krylov
        (:func:`newton_krylov`) from its best point.  The full Monte Carlo measure has two maps: the points drawn
        at each x from the same random numbers (smooth, close to linear along the path; J·v by forward
        differences over all points), and the points frozen once (an explicit map with exact J·v, but strongly
        nonlinear away from where they were drawn: the log-weights move like √d; at T = 8, P = 5 Newton on it
        stalls from residuals ≳ 1e-2; and the frozen J lacks the motion of the points: Newton on the first map
        with it stalls near 1e-3).  So Anderson and Newton run on the first until converged or stalled; a
        ``final`` (or stalled, from below ``FROZEN_START``) point is then frozen there and solved on the second:
        the proposal sits at the solution reported, and :func:`solution_deviations` uses the exact J of the sample
        solved with (:meth:`unstable_modes` freezes the points at any point it checks)."""
        fp = FixedPoint(self.pr, s, measure)
        tol = self.tolerance(measure, final)
        mc = isinstance(measure, TiltedMC)
        if mc:
            measure.thaw()
        self._adapt(fp, x)
        pre, converged = None, True
        try:
            out = anderson(fp, x, tol=tol, picard=picard, stall=ANDERSON_STALL, label=label)
            self.evaluations += out[3]
        except ConvergenceError as err:
            if getattr(err, "best", None) is None:
                raise
            self.evaluations += len(err.history)
            pre = self.preconditioner(s, err.best, measure) if precondition else None
            try:
                out = self._newton(fp, s, err.best, tol, newton_steps, label, pre,
                                   stall=MOVING_STALL if mc else NEWTON_STALL)
            except ConvergenceError as err2:
                if not mc or getattr(err2, "best", None) is None or min(err2.history) > FROZEN_START:
                    raise
                self.evaluations += err2.evaluations
                out, converged = (err2.best,), False
        if mc and (final or not converged):
            self._freeze(fp, out[0], adapt=not converged)
            if pre is None and precondition:
                pre = self.preconditioner(s, out[0], fp.measure)
            out = self._newton(fp, s, out[0], tol, newton_steps, label, pre)
        return out[0], (fp,) + tuple(out[1:])

    def _freeze(self, fp, x, adapt: bool = True):
        """The full Monte Carlo measure: its points frozen at x (:meth:`.tilted_mc.TiltedMC.freeze`), with the proposal
        chosen there (:meth:`_adapt`) or, ``adapt`` False, with the one the moving-point map was solved with — then
        the frozen map equals it at x (re-adapting can switch proposals on an ESS difference of a few per cent, and
        the frozen map's root then lies a sampling offset away: erf, T = 8, P = 5, s = 1, control variate on, Newton
        from residual 0.012 stalled at 0.0037)."""
        fp.measure.thaw()
        if adapt:
            self._adapt(fp, x)
        try:
            fp.measure.freeze(fp.act.point(x[0], kernel=False).Sigma, x[1])
        except NotPositiveDefinite:
            raise ConvergenceError("the starting point is outside the domain (C or Σ not positive definite)") from None

    def _newton(self, fp, s, x, tol, newton_steps, label, pre, stall=NEWTON_STALL):
        try:
            out = newton_krylov(fp, x, tol=tol, maxiter=newton_steps, label=label, preconditioner=pre, stall=stall,
                                stats=self.stats)
        except ConvergenceError as err:
            if pre is None or self._pre[0] == s or stall < NEWTON_STALL:
                raise
            self.evaluations += err.evaluations
            # a preconditioner factorised at another s: refactorise here and retry once
            out = newton_krylov(fp, x, tol=tol, maxiter=newton_steps, label=label,
                                preconditioner=self.preconditioner(s, x, fp.measure, fresh=True), stats=self.stats)
        self.evaluations += out[3]
        return out

    def preconditioner(self, s, x, measure, fresh=False):
        """:func:`dense_preconditioner` for problems up to ``DENSE_PRECONDITIONER`` unknowns (else None) — with a
        factorised ``measure`` (:class:`BlockMeasure`) on the entries of its time blocks, 2·T·P(P + 1)/2 of them
        (T = 20, P = 10: 2200), with the same blocks of the linearised surrogate — factorised once per kind of
        measure and reused along the path (refactorised with ``fresh``); None where the linearised measure is not
        normalisable."""
        blocks = BLOCK_PRECONDITIONER and isinstance(measure, BlockMeasure)
        entries = self.pr.lag() == 0 if blocks else None
        n = x.shape[-1]
        size = x.size if entries is None else len(x) * (int(entries.sum()) + n) // 2
        if size > DENSE_PRECONDITIONER:
            return None
        if fresh or self._pre is None or self._pre[2] != blocks:
            surrogate = LinearisedMeasure(self.pr.spec.phi_fn)
            if blocks:
                surrogate = BlockMeasure(surrogate, self.pr.T, self.pr.P, odd=measure.odd)
            try:
                M = dense_preconditioner(FixedPoint(self.pr, s, surrogate), x, entries, self.progress)
            except NotPositiveDefinite:
                M = None
            self._pre = (s, M, blocks)
        return self._pre[1]

    def path(self, s_values, x0, measure, s_start=0.0, label="continuation", previous=None):
        span = max(abs(s_values[-1] - s_start), 1e-12) if len(s_values) else 1.0
        with progress_bar(len(s_values), f"feature_learning ({self.pr.spec.phi_fn.name}): {label}",
                          self.progress) as bar:
            def on_step(s, x, info):
                if s in s_values:
                    bar.update(1)
                bar.set_postfix_str(f"s = {s:.4g}, {self.evaluations} map evaluations")
            # Monte Carlo: points on the moving-point map, never frozen (:meth:`branch` re-solves the end point on points
            # frozen there).  Sampled maps (a frozen sample, a proposal adapted at another point) differ by a sampling
            # offset that no step size shrinks: the jump test allows JUMP_SCATTER × |x| / √samples for it (without, it
            # halved the last step to min_step: erf, T = 8, P = 5, minutes near s = 0.94)
            exact = getattr(measure, "exact", True)
            floor = 0.0 if exact else JUMP_SCATTER * np.linalg.norm(x0) / np.sqrt(self.samples)
            return continue_in(lambda s, x: self.solve(s, x, measure, label=label, final=exact and s == s_values[-1]),
                               s_start, x0, list(s_values), min_step=1e-4 * span, callback=on_step, label=label,
                               previous=previous, jump_floor=floor)

    def branch(self, name, s, x, measure, fine) -> NLBranch:
        """The stationary point near x with ``measure`` (re-solved to ``tol`` with the proposal adapted at x),
        its action and error estimate (finer rule or MC errors)."""
        x, (fp, _, _, _) = self.solve(s, x, measure, label=f"{name} branch")
        gx, p, m = fp.evaluate(x, errors=True)
        scale = np.abs(x[0]).max()
        err = float(np.abs(gx[0] - x[0]).max() / scale)
        deviations = None
        if m.stderr is not None:  # Monte Carlo: the sampling error propagated through the fixed point
            deviations = solution_deviations(fp, x, preconditioner=self.preconditioner(s, x, fp.measure))
            err += float(batch_error(deviations)[0].max() / scale)
        elif fine is not None:  # quadrature: the change of the map under a finer rule
            err += float(np.abs(FixedPoint(self.pr, s, fine).evaluate(x)[0][0] - gx[0]).max() / scale)
        b = NLBranch(name, x, fp.action(x, p, m), err, m)
        b.extra_residual = float(np.abs(gx - x).max() / np.abs(x).max())
        # what the predictions need to reuse this estimator: the map, its proposal, the batch deviations
        b.fixed_point, b.deviations = fp, deviations
        b.proposal = None if getattr(fp.measure, "Q", None) is None else fp.measure.Q.copy()
        b.sample = getattr(fp.measure, "frozen", None)  # the frozen Monte Carlo points solved with
        return b

    def symmetric(self, steps):
        """The branch continued from the prior kernel to s = 1.  Without a symmetric sector every accepted
        point is checked for an odd number of real eigenvalues of J above 1 (:meth:`unstable_modes`: the point
        is then a saddle of the action, a bifurcation was passed): the path then keeps, of that point and the
        stationary points reached along the top such mode (:meth:`other_branches`), the one of largest action —
        as the linear solver's maximisation does.  At s = 1 other branches are looked for wherever J has a real
        eigenvalue above 1 (a maximum of larger action may lie along it; erf, T = 8, P = 5: two of them from
        s ≈ 0.6 on, even count), there only: a branch switched to on the way had to be continued, and at T = 8,
        P = 5 that continuation stalled near s ≈ 0.9."""
        grid = np.linspace(0.0, 1.0, steps + 1)
        measure = self.block if self.sym else self.full
        x0, _ = self.solve(0.0, self.start(), measure, label="prior kernel", final=False)
        label = "symmetric branch" if self.sym else "continuation"
        if self.sym:
            return self.path(grid[1:], x0, measure, label=label)
        checked = self.check_samples(", so the continued branch is not checked for being a saddle of the action")
        whole, s0, x, previous = None, 0.0, x0, None
        for s in grid[1:]:
            seg = self.path([s], x, measure, s_start=s0, label=label, previous=previous)
            previous = (s0, x)  # the secant predictor of the next segment
            x = seg.x[-1]
            fp = seg.info[-1][0]
            # too few points: the sampled J's spectrum is noise (T·P = 200, 4000 points: a cluster near 2.4, 3–5 min
            # of ARPACK per check up to UNSTABLE_MAX_K, and an undecided answer)
            modes, saddle = self.unstable_modes(fp, x) if checked else ([], False)
            if saddle or (modes and s == grid[-1]):  # keep the stationary point of largest action in reach
                _, p, m = fp.evaluate(x)
                found = self.other_branches(s, x, modes)
                best = max([(x, fp.action(x, p, m))] + found, key=lambda c: c[1])
                if best[0] is not x:
                    seg.x[-1] = x = best[0]
                    seg.switches = [(s, modes[0][0])]
                    previous = None  # another branch: no secant across the switch
                elif saddle and not found:
                    warnings.warn(f"{label}: the map's Jacobian has an odd number of real eigenvalues above 1 "
                                  f"(largest {modes[0][0]:.4g}) at s = {s:.4g}, so the branch kept is a saddle of the "
                                  "action (a bifurcation on the way), and no other stationary point was reached "
                                  "along the top mode", stacklevel=4)
            whole = seg if whole is None else _joined(whole, seg)
            s0 = s
        return whole

    def seed_broken(self, s, x_sym, p, m):
        """Solve with the full measure from the symmetric solution displaced along the unstable direction."""
        act = FixedPoint(self.pr, s, self.block).act
        lam, D, dChat = top_lag(act, p, m)
        scale = np.abs(np.diag(x_sym[0])).max() / np.abs(D).max()
        for amp in (0.3, 0.1, 0.6):
            x = x_sym + amp * scale * np.stack([D, dChat])
            try:
                # unpreconditioned: a good Newton direction returns to the (nearby, unstable) symmetric root
                xb, _ = self.solve(s, x, self.full, picard=20, label="broken branch", final=s == 1.0,
                                   precondition=False)
            except ConvergenceError:
                continue
            if cross_time_size(self.pr, xb[0]) > max(SYMMETRIC_TOL, 1e-3 if not self.full.exact else SEED_TOL):
                return xb
        raise ConvergenceError("the displaced symmetric solution did not converge to a broken branch")

    def broken_branch(self, path, x_sym, p, m):
        """The broken branch at s = 1: seeded at s = 1 (:meth:`seed_broken`); where that fails (far above the
        threshold the displaced symmetric point lies outside the basin: linear φ, T = 3, y = 8 and 12), seeded
        at the first point of the symmetric ``path`` whose lag sector is unstable — halving towards the last
        stable point while the seed fails — and continued with the full measure to s = 1."""
        try:
            return self.seed_broken(1.0, x_sym, p, m)
        except ConvergenceError as err:
            first_error = err
        lams = []
        for s, x in zip(path.s, path.x):
            fp = FixedPoint(self.pr, s, self.block)
            _, ps, ms = fp.evaluate(x)
            lams.append(top_lag(fp.act, ps, ms)[0])
        k = next((i for i, lam in enumerate(lams) if lam > UNSTABLE_TOL), None)
        if k is None or k == 0:
            raise first_error
        s_lo, s_hi, x_hi = path.s[k - 1], path.s[k], path.x[k]
        for _ in range(8):
            fp = FixedPoint(self.pr, s_hi, self.block)
            _, ps, ms = fp.evaluate(x_hi)
            try:
                xb = self.seed_broken(s_hi, x_hi, ps, ms)
                break
            except ConvergenceError:
                pass
            s_mid = 0.5 * (s_lo + s_hi)
            x_mid = self.path([s_mid], path.x[k - 1], self.block, s_start=s_lo, label="symmetric branch").x[-1]
            fp = FixedPoint(self.pr, s_mid, self.block)
            xm, (_, ps, ms, _) = self.solve(s_mid, x_mid, self.block, label="symmetric branch")
            if top_lag(fp.act, ps, ms)[0] > UNSTABLE_TOL:
                s_hi, x_hi = s_mid, xm
            else:  # the threshold lies above s_mid: seeding at s_hi failed for another reason
                raise first_error
        else:
            raise first_error
        targets = [s for s in path.s if s > s_hi]
        return self.path(targets, xb, self.full, s_start=s_hi, label="broken branch").x[-1]

    def unstable_modes(self, fp: FixedPoint, x: np.ndarray, k: int = 6):
        """(modes, saddle) at the fixed point x: the real eigenvalues λ > 1 + UNSTABLE_MAP of the map's Jacobian J,
        largest first, with their unit eigenvectors (shape x.shape), and whether their number is odd.

        Why the parity: F = G − x is 2 P ∇S (P swaps the C and Ĉ blocks: F_C = 2∂S/∂Ĉ, F_Ĉ = 2∂S/∂C), so
        1 − J = −2 P ∇²S and sign det(1 − J) = (−1)^m sign det ∇²S (m = dim C).  S is convex in Ĉ (ln Z is), so by
        Haynsworth's inertia theorem ∇²S has m + u positive eigenvalues, u the number of unstable directions of the
        action over C (Ĉ eliminated): sign det(1 − J) = (−1)^u.  Complex pairs of J add |1 − λ|² > 0, so an odd
        number of real eigenvalues above 1 ⇔ det(1 − J) < 0 ⇔ u odd: the point is a saddle of S (u = 1 where
        one real eigenvalue crossed 1: a bifurcation of the branch continued from s = 0, where J is contractive).
        A single real eigenvalue above 1 is no such sign (linear φ, T = 4, P = 7, sequential: the saddle has one,
        1.26; the two maxima none, but a complex pair with real part 1.34), and nor is the kind of the top pair: at
        erf, T = 8, P = 5, s = 0.5 it is complex (1.38 ± 0.19i) or two real eigenvalues (1.53, 1.26) depending on
        the Monte Carlo sample — even either way.

        J·v of the points frozen at x (:func:`jacobian_operator`: exact for the sampled map there, and no dearer than
        an evaluation); dense eigenvalues up to ``DENSE_JACOBIAN`` unknowns, else Arnoldi (ARPACK) for the k of
        largest real part, k doubled while the smallest of them still lies right of 1 (so no real eigenvalue
        above 1 is missed), up to ``UNSTABLE_MAX_K``: beyond it the check is undecided (a warning, no modes; with
        Monte Carlo too few points — a noise cluster of eigenvalues above 1, see ``MC_JACOBIAN_FACTOR``)."""
        mc = isinstance(fp.measure, TiltedMC) and fp.measure.frozen is None
        if mc:
            self._freeze(fp, x, adapt=False)
        try:
            op = jacobian_operator(fp, x)
            J = LinearOperator(op.shape, matvec=lambda v: v - op.matvec(v), dtype=float)
            if x.size <= DENSE_JACOBIAN:
                vals, vecs = np.linalg.eig(J.matmat(np.eye(x.size)))
            else:
                v0 = np.random.default_rng(0).standard_normal(x.size)  # reproducible (ARPACK's default is random)
                while True:
                    vals, vecs = eigs(J, k=k, which="LR", ncv=min(x.size - 1, max(3 * k, 30)), tol=1e-6, v0=v0)
                    if vals.real.min() <= 1 + UNSTABLE_MAP or 2 * k >= x.size - 1:
                        break
                    if 2 * k > UNSTABLE_MAX_K:  # (T·P = 200, 4000 points: k doubled through a noise cluster, > 8 min)
                        warnings.warn(f"the saddle check is undecided at this point: the map's Jacobian has more than "
                                      f"{k} eigenvalues with real part above 1 (smallest found "
                                      f"{vals.real.min():.4g}); with a Monte Carlo measure that is the sign of too few "
                                      "points (MC_JACOBIAN_FACTOR); the branch is kept as continued", stacklevel=3)
                        vals, vecs = vals[:0], vecs[:, :0]
                        break
                    k *= 2
        finally:
            if mc:
                fp.measure.thaw()
        real = (np.abs(vals.imag) <= 1e-6 * np.abs(vals)) & (vals.real > 1 + UNSTABLE_MAP)
        order = np.argsort(-vals.real[real])
        modes = []
        for lam, v in zip(vals.real[real][order], vecs[:, real][:, order].T):
            v = v.real.reshape(x.shape)
            v = 0.5 * (v + np.swapaxes(v, -1, -2))
            modes.append((float(lam), v / np.abs(v).max()))
        return modes, len(modes) % 2 == 1

    def other_branches(self, s, x, modes):
        """[(x, action)] of the stationary points reached from x displaced along the top unstable mode (both
        signs; the C part of the displacement 20 % or 40 % of max |C|), distinct from x and from each other."""
        found = []
        scale = np.abs(x).max()
        v = modes[0][1] * np.abs(x[0]).max() / np.abs(modes[0][1][0]).max()
        for sign in (1.0, -1.0):
            for amp in (0.2, 0.4):
                try:
                    xb, (fp, p, m, _) = self.solve(s, x + sign * amp * v, self.full, label="other branch",
                                                   final=False, newton_steps=SEED_NEWTON_STEPS,
                                                   precondition=False)
                except ConvergenceError:
                    continue
                if all(np.abs(xb - y).max() > 1e-3 * scale for y in [x] + [f[0] for f in found]):
                    found.append((xb, fp.action(xb, p, m)))
                    break
        return found


def _joined(a, b):
    """Two continuation paths, the second starting at the end of the first."""
    for key in ("s", "x", "info"):
        getattr(a, key).extend(getattr(b, key)[1:])
    a.jumps.extend(b.jumps)
    a.switches = getattr(a, "switches", []) + getattr(b, "switches", [])
    return a


def feature_learning(pr: FLProblem, steps: int = 8, samples: int = 20000, seed: int = 0, tol: float = 1e-10,
                     nodes: int | None = None, both_signs: bool = True,
                     progress: bool = False, control: bool = False) -> NonlinearFeatureLearning:
    """Saddle point of the μP action for any φ (module docstring); ``samples``/``seed``: the Monte Carlo
    estimator (full measure with T·P > 3 or blocks with P > 3), ``nodes``: trapezoid nodes per dimension,
    ``control``: its control variate (:mod:`.tilted_mc`)."""
    sv = NonlinearSolver(pr, samples, seed, tol, nodes, progress, control)
    path = sv.symmetric(steps)
    if path.jumps:
        warnings.warn(f"the {'symmetric branch' if sv.sym else 'continuation'} jumped (a fold) at s = "
                      f"{path.jumps}: the solution reported is on the branch reached after the jump, other "
                      "coexisting branches at s = 1 are not looked for (nonlinear φ)", stacklevel=3)
    x1 = path.x[-1]
    if not sv.sym and sv.full.exact and np.sum(x1[0][pr.lag() == 1]) < 0:
        # where the Z2 mirror J x J (odd lags change sign) is an exact symmetry of this task (e.g. all supervised
        # steps of one parity, input at one step) both images are stationary with the same action; report the one
        # with Σ C(lag 1) > 0, as the symmetric-sector case and the linear solver do
        xm = np.stack([mirror(pr, x1[0]), mirror(pr, x1[1])])
        try:
            gm = FixedPoint(pr, 1.0, sv.full).evaluate(xm)[0]
            if np.abs(gm - xm).max() <= max(1e3 * sv.tol, 1e-8) * np.abs(xm).max():
                x1 = xm
        except NotPositiveDefinite:
            pass
    fine_sym = BlockMeasure(sv._fine[1], pr.T, pr.P, odd(pr.spec.phi_fn)) if sv.sym else sv._fine[0]
    first = sv.branch("symmetric" if sv.sym else "continued", 1.0, x1, sv.block if sv.sym else sv.full, fine_sym)
    branches, s_branch = [first], None
    if sv.sym and coupled(pr) and pr.T >= 3:
        fp = FixedPoint(pr, 1.0, sv.block)
        _, p, m = fp.evaluate(first.C_Chat)
        lam = top_lag(fp.act, p, m)[0]
        first.offlag_eigenvalue = lam
        if lam > UNSTABLE_TOL:
            s_branch = 1.0
            sv.check_samples()
            xb = sv.broken_branch(path, first.C_Chat, p, m)
            if np.sum(xb[0][pr.lag() == 1]) < 0:
                xb = np.stack([mirror(pr, xb[0]), mirror(pr, xb[1])])
            # actions of all candidates by the same (full-measure) estimator
            if not sv.full.exact:
                first = sv.branch("symmetric", 1.0, first.C_Chat, sv.full, None)
                first.offlag_eigenvalue = lam
                branches = [first]
            branches.append(sv.branch("broken+", 1.0, xb, sv.full, sv._fine[0]))
            if both_signs:
                xm = np.stack([mirror(pr, xb[0]), mirror(pr, xb[1])])
                br = sv.branch("broken-", 1.0, xm, sv.full, sv._fine[0])
                br.action = branches[-1].action  # the Z2 image: the same action (exact symmetry)
                branches.append(br)
    # an unstable symmetric / continued branch is a saddle of S, never the maximum: the action comparison
    # (noisy for Monte Carlo estimates near the threshold) is among the remaining candidates
    candidates = branches[1:] if s_branch is not None else branches
    best = largest_action(candidates)
    out = NonlinearFeatureLearning(pr, branches, best, s_branch, path)
    out.evaluations = sv.evaluations  # map evaluations of the corrector, J·v products included (benchmarks)
    out.products = sv.stats["products"]
    return out


def critical_signal(pr: FLProblem, samples: int = 20000, seed: int = 0, tol: float = 1e-11, nodes=None,
                    s_max: float = 1e3, xtol: float = 1e-9, progress: bool = False,
                    control: bool = False) -> float:
    """|y_S| where the top lag-sector Hessian eigenvalue of the symmetric branch (:mod:`.threshold`) crosses 0."""
    norm = float(np.linalg.norm(pr.y_S))
    if norm == 0:
        raise SpecError("Y is zero at every supervised site: the threshold is defined along a non-zero target")
    sv = NonlinearSolver(pr, samples, seed, tol, nodes, progress, control)
    if not sv.sym:
        raise SpecError("this task has no symmetric (time-block-diagonal) phase — cross-time input or readout "
                        "terms, or a φ that is not odd with a shared W, break the symmetry explicitly — so it "
                        "has no threshold")
    if not coupled(pr) or pr.T < 3:
        return float("inf")
    x, _ = sv.solve(0.0, sv.start(), sv.block, label="prior kernel")

    def top(s, x):
        xs, (fp, p, m, _) = sv.solve(s, x, sv.block, label="symmetric branch")
        return top_lag(fp.act, p, m)[0], xs

    s_prev, x_prev, s = 0.0, x, 0.25
    with progress_bar(None, f"critical_signal ({pr.spec.phi_fn.name}): scan", progress) as bar:
        while s <= s_max:
            xs = sv.path([s], x_prev, sv.block, s_start=s_prev, label="symmetric branch").x[-1]
            lam, xs = top(s, xs)
            bar.update(1)
            bar.set_postfix_str(f"|y| = {s * norm:.6g}, top lag-sector eigenvalue {lam:.3g}")
            if lam > 0:
                break
            s_prev, x_prev = s, xs
            s = s * 1.25 if s >= 1 else s + 0.25
        else:
            return float("inf")
    lo = s_prev if s_prev > 0 else 1e-6
    return brentq(lambda q: top(q, sv.path([q], x_prev, sv.block, s_start=s_prev).x[-1])[0], lo, s,
                  xtol=xtol, rtol=1e-13) * norm
