"""Signal continuation and branch selection of the μP saddle point, for any declared network (arXiv:2602.15593).

    fl = feature_learning(spec, X, Y, supervised=sup, kappa=kappa)   # saddle point of S(C)/N, best branch
    critical_signal(spec, X, Y, supervised=sup, kappa=kappa)         # |y_S| where the symmetric branch destabilises
    closed_form_threshold(spec, X, Y, supervised=sup, kappa=kappa)   # the same from the derived closed form
    signal_scan(spec, X, Y, scales, ...)                             # both branches along y -> s·y

Solution strategy (theory Secs. 3, 6, 11): start at the GP kernel (no data), continue in the signal
strength s (targets s·Y, s: 0 -> 1).  When the time-block-diagonal ("symmetric", DNN-identical) set is
invariant, the symmetric branch is followed inside it and the top eigenvalue of the Hessian in the lag
sectors k >= 1 is monitored; where it turns positive the broken branch is seeded along the unstable
direction and continued, and its Z2 mirror image is the second broken branch.  The branch of largest
action is reported.
"""
from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from threadpoolctl import threadpool_limits

from ...api import check_choice, check_positive_int, check_real, check_spec, legacy_positional, renamed
from ...errors import NotSupportedError
from ...progress import progress_bar
from ...resources import check_memory, check_steps, check_time
from ...solve import ConvergenceError, continue_in
from ...spec import SpecError
from .action import LinearAction, NotPositiveDefinite, gp_kernel, kernel_span
from .blocks import Blocks
from .problem import FLProblem, problem
from .span import RANK_TOL, condition
from .result import SYMMETRIC_TOL, UNSTABLE_TOL, Branch, FeatureLearning, largest_action, cross_time_size, mirror
from .reduced import Reduction, ReducedPoint, applicable as reduced_applicable
from .reduced import not_applicable as reduced_not_applicable
from .solver import maximise
from .spectrum import DENSE_SECTOR_MAX, DENSE_SECTOR_MAX_REFERENCE, embed_sector, sector_spectrum, top_eigen



def make_action(pr: FLProblem, backend: str = "matrix"):
    """The action object for ``pr``: 'matrix' (verified matrix rules, any size) or 'explicit'
    (compiled explicit components, T·P <= 4)."""
    if pr.spec.phi_fn.name != "linear":
        raise NotSupportedError(
            f"phi={pr.spec.phi_fn.name!r}: the μP solver is implemented for linear φ (closed-form action). "
            "For nonlinear φ the forward–backward equations with the tilted single-neuron measure are in "
            "symfield.theory.feature_learning.tilted (ImportanceTilted), without a solver yet")
    check_choice(backend, "backend", ("matrix", "explicit"))
    if backend == "matrix":
        return LinearAction(pr)
    if kernel_span(pr) is not None:
        raise NotSupportedError("method='explicit': the compiled explicit components need a nonsingular input "
                                "kernel; with dependent or repeated patterns (D < P) use method='matrix', which "
                                "solves on the span of the inputs")
    from .symbolic import ExplicitAction
    return ExplicitAction(pr)


def _log(progress, msg):
    if progress:
        print(msg, file=sys.stderr, flush=True)


def _offlag_coupled(pr: FLProblem) -> bool:
    """Do the lag >= 1 entries enter anything but ln det C (else the symmetric branch is always stable)?"""
    off = pr.lag() > 0
    t = pr.times()[pr.sites_S]
    cross_out = (t[:, None] != t[None, :]) & (pr.mask_out_SS != 0)
    return bool(np.any(pr.wmask[off] != 0) or cross_out.any())


#: gradient tolerance of the intermediate points of an explicitly broken continuation (only the end point is a
#: result; they need only stay in the basin of the branch followed, and the end point is solved to ``gtol``)
PATH_GTOL = 1e-5


class _Solver:
    """Signal continuation for one problem (targets s·Y)."""

    def __init__(self, pr: FLProblem, backend: str, gtol: float, progress: bool, reference: bool = False):
        self.pr, self.backend, self.gtol, self.progress = pr, backend, gtol, progress
        self.dense_max = DENSE_SECTOR_MAX_REFERENCE if reference else DENSE_SECTOR_MAX
        self._eig = {}
        self.sym = pr.block_diagonal_invariant()
        self.coupled = _offlag_coupled(pr)
        self._acts = {}
        #: the scales solved to ``gtol`` (None: all); the others to PATH_GTOL (intermediate continuation points)
        self.tight = None

    def act(self, s: float):
        return self._get(s)[0]

    def blocks(self, s: float):
        return self._get(s)[1]

    def _get(self, s):
        if s not in self._acts:
            if len(self._acts) > 64:
                self._acts.clear()
            pr_s = self.pr.with_targets(s * self.pr.Y)
            self._acts[s] = (make_action(pr_s, self.backend), Blocks(pr_s) if self.sym else None)
        return self._acts[s]

    def solve(self, s, guess, lags):
        a = self.act(s)
        try:
            a.point(guess)
        except NotPositiveDefinite:
            raise ConvergenceError("predicted kernel is not positive definite") from None
        gtol = self.gtol if self.tight is None or s in self.tight else max(self.gtol, PATH_GTOL)
        return maximise(a, guess, lags=lags, gtol=gtol, blocks=self.blocks(s) if lags == 0 else None)

    def offlag_eigen(self, s, C):
        """(top eigenvalue over the lag sectors k >= 1, direction (n, n)) at a symmetric solution."""
        if not (self.sym and self.coupled) or self.pr.T < 2:
            return -np.inf, None
        key = (s, C.tobytes())
        if key not in self._eig:
            if len(self._eig) > 16:
                self._eig.clear()
            bl = self.blocks(s)
            spec = sector_spectrum(bl, bl.blocks(C), dense_max=self.dense_max)
            k = max(spec, key=lambda q: spec[q][0])
            lam, Dc = spec[k]
            D = embed_sector(bl, k, Dc)
            self._eig[key] = (lam, D / np.linalg.norm(D))
        return self._eig[key]

    def first_unstable(self, s_values, Cs, known=None, scan: bool = False) -> int | None:
        """Index of the first point of a symmetric branch (scales ``s_values``, kernels ``Cs``) whose lag
        sectors k >= 1 are unstable, by bisection: the top eigenvalue grows with the signal along the branch
        (checked at the two bracketing points), so log2(len) spectra replace one per point.  ``known``:
        {index: eigenvalue} already computed; ``scan``: the first unstable point of a linear scan instead
        (every eigenvalue known: the reference method).  None if the last point is stable."""
        lam = dict(known or {})
        if scan:
            return next((i for i in range(len(Cs)) if lam[i] > UNSTABLE_TOL), None)

        def at(i):
            if i not in lam:
                lam[i] = self.offlag_eigen(s_values[i], Cs[i])[0]
            return lam[i]

        hi = len(Cs) - 1
        if at(hi) <= UNSTABLE_TOL:
            return None
        lo = -1  # the GP kernel (s = 0) is stable
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if at(mid) > UNSTABLE_TOL:
                hi = mid
            else:
                lo = mid
        return hi

    def path(self, s_values, C_start, s_start=0.0, lags=None, label="continuation", on_step=None, previous=None):
        span = max(abs(s_values[-1] - s_start), 1e-12) if len(s_values) else 1.0
        return continue_in(lambda s, x: self.solve(s, x, lags), s_start, C_start, list(s_values),
                           min_step=1e-4 * span, callback=on_step, label=label, previous=previous)


#: solver variants of :func:`feature_learning` (``method``)
METHODS = ("matrix", "explicit", "reference")


#: condition number of the input covariance at t = 1 from which a solver failure names it
ILL_CONDITIONED = 1e6


@contextmanager
def _conditioning_hint(pr: FLProblem, linear: bool = True):
    """Re-raise a ConvergenceError with the condition number of the input covariance at t = 1 (on its span)
    when it is large: the linear solver's gradient of S/N then stalls at round-off above ``gtol`` (Σ⁻¹ and
    C⁻¹ lose that many digits); the nonlinear iteration's Σ⁻¹ likewise (``linear`` False: no gtol to pass)."""
    try:
        yield
    except ConvergenceError as err:
        cond = condition(pr.sigma_det[:pr.P, :pr.P])
        if not cond >= ILL_CONDITIONED:
            raise
        stall = min(err.history) if err.history else float("nan")
        remedy = (f"the gradient of S/N stalls at round-off (here near {stall:.1g}); pass gtol above that level to "
                  "accept the accuracy it gives, or use better-conditioned inputs" if linear else
                  "the forward-backward iteration loses that many digits in Σ⁻¹; use better-conditioned inputs")
        raise ConvergenceError(
            f"{err.args[0]}. X: the input covariance at t = 1, g_in² X Xᵀ/D (+ bias), is ill-conditioned "
            f"(condition number {cond:.3g} on the span of the inputs; directions below {RANK_TOL:g} × λ_max count "
            f"as exactly dependent), so {remedy} (e.g. drop nearly dependent patterns)", err.history) from err


def _grid(steps: int, end: float = 1.0) -> np.ndarray:
    return np.linspace(0.0, end, steps + 1)[1:]


def _one_blas_thread(fn):
    """Run with one BLAS thread: the matrices are small (n <= a few hundred) and the machine shared."""
    import functools

    @functools.wraps(fn)
    def wrapped(*args, blas_threads: int | None = 1, **kw):
        with threadpool_limits(blas_threads, user_api="blas"):
            return fn(*args, **kw)
    return wrapped


@_one_blas_thread
@legacy_positional("supervised", "kappa")
def feature_learning(spec, X, Y, *, supervised=None, kappa=1.0, readout=None, method: str | None = None,
                     steps: int = 8, gtol: float = 1e-9, both_signs: bool = True, overshoot: float = 2.0,
                     progress: bool | None = None, backend: str | None = None,
                     estimator: dict | None = None) -> FeatureLearning:
    """Saddle point of the μP action for targets Y on the supervised sites (see the module docstring).

    ``method``: 'matrix' (verified matrix rules, default), 'explicit' (compiled explicit components,
    T·P <= 4) or 'reference' (the solver before the scale work, kept as the benchmark reference: it
    computes the lag-sector spectra after every continuation step; 'matrix' computes them at the end
    and locates the first unstable step by bisection); ``backend`` is its deprecated name.

    ``readout``: 'shared' / 'untied' / (T, T) mask (default: the declared readout groups,
    ``spec.readout_mask()``: RNN shared, DNN untied).
    ``steps``: continuation steps in the signal scale (refined automatically where a step fails).
    ``overshoot``: the symmetric branch is continued up to s = overshoot; if it jumps (a fold), the other
    symmetric branch is followed back to s = 1 and kept when its action is larger (coexistence region).
    ``progress``: a progress bar of the continuation (None: on when stderr is a terminal).
    Raises :class:`~symfield.solve.ConvergenceError` (with residual history) if no branch converges.

    Nonlinear φ: :func:`.nonlinear.feature_learning` (forward–backward iteration with the tilted measure);
    ``estimator`` = dict(samples=, seed=, nodes=, control=) sets its Monte Carlo / quadrature rule."""
    pr = problem(check_spec(spec), X, Y, supervised, kappa, readout)
    check_positive_int("steps", steps)
    check_steps("steps", steps)
    if pr.spec.phi_fn.name != "linear":
        from .nonlinear import check_estimator, feature_learning as nonlinear_solve
        with _conditioning_hint(pr, linear=False):
            return nonlinear_solve(pr, steps=steps, both_signs=both_signs, progress=progress,
                                   **check_estimator(estimator))
    from .nonlinear import check_estimator
    check_estimator(estimator, pr.spec.phi_fn)  # linear φ: an estimator is refused, never ignored
    check_real("gtol", gtol, low=0, low_open=True)
    check_real("overshoot", overshoot, low=0)
    n = pr.spec.T * pr.X.shape[0]  # kernel side T P: dozens of (TP)² arrays, Newton-CG steps of O((TP)³)
    check_memory(8.0 * 64 * n ** 2, f"feature_learning (T P = {n})", "the number of inputs X (P) or T")
    backend, name = renamed(method, backend, "backend", "method", default="matrix", where="feature_learning")
    check_choice(backend, name, METHODS)
    reference = backend == "reference"
    # the subspace solver (:mod:`.reduced`): O(n² T²) per outer step instead of Newton-CG steps of O(n³)
    candidate = backend == "matrix" and not pr.block_diagonal_invariant()
    dense_why = reduced_not_applicable(pr) if candidate else None
    reducible = candidate and dense_why is None
    check_time((steps + 4) * (1e3 * pr.T ** 2 * n ** 2 if reducible else 1e3 * n ** 3),
               f"feature_learning (T P = {n}, steps = {steps}" +
               ("" if dense_why is None else f"; dense O((T P)³) solver: the subspace solver does not cover "
                                             f"{dense_why}") + ")", "P, T or steps")
    if dense_why is not None:
        _log(progress, f"feature_learning: dense solver, the subspace solver does not cover {dense_why}")
    with _conditioning_hint(pr):
        sv = _Solver(pr, "matrix" if reference else backend, gtol, progress, reference)
        C0 = gp_kernel(pr)
        lags = 0 if sv.sym else None
        if not sv.sym and not reference:  # one branch: its intermediate points are not reported
            sv.tight = {1.0}
        red = Reduction(pr) if reducible else None
        eig_known = {}
        grid = _grid(steps)
        with progress_bar(steps, "feature_learning", progress) as bar:
            def on_step(s, C, info):
                if reference and sv.sym:
                    eig_known[len(eig_known)] = sv.offlag_eigen(s, C)[0]
                bar.update(int(np.sum(grid <= s + 1e-15)) - bar.n)
                bar.set_postfix_str(f"s = {s:.4f}, |grad| = {info.grad_norm:.1e}")

            if red is not None:  # the low-rank subspace solver (:mod:`.reduced`): O(n² R) per step, not O(n³)
                try:
                    path, (sub, N) = red.continuation(list(grid), gtol, loose=PATH_GTOL, on_step=on_step)
                except ConvergenceError:  # e.g. a direction below BASIS_TOL the solution needs: the dense solver
                    red = None
            if red is None:
                path = sv.path(grid, C0, lags=lags, label="symmetric branch" if sv.sym else "continuation",
                               on_step=on_step)
        act1 = sv.act(1.0)
        C1 = path.x[-1]
        lam1, D1 = sv.offlag_eigen(1.0, C1) if sv.sym else (-np.inf, None)
        name = "symmetric" if sv.sym else "continued"
        branches = [Branch(name, C1, act1.value(C1) if red is None else red.value(sub, N, 1.0), act1,
                           reduced=None if red is None else ReducedPoint(red, sub, N, 1.0))]
        if not sv.sym and not reference:  # the continued branch may have become a saddle (a Z2 broken spontaneously)
            branches += _climb_from_saddle(sv, branches[0], both_signs, progress)
        if red is not None:
            fl = FeatureLearning(pr, act1, branches, largest_action(branches), path, None)
            r = fl.selected.reduced
            if r is not None:  # the subspace solver's point (continued, or climbed from it above CLIMB_MAX_N)
                fl._error = red.error(r.sub, r.N, 1.0)
            return fl
        branches[0].offlag_eigenvalue = lam1
        C_up = (_other_symmetric_branch(sv, C1, overshoot, (path.s[-2], path.x[-2])) if sv.sym and overshoot > 1
                else None)
        s_path, x_path = path.s[1:], path.x[1:]  # without the GP start
        eig_known[len(s_path) - 1] = lam1
        if C_up is not None:
            lam_up, D_up = sv.offlag_eigen(1.0, C_up)
            branches.append(Branch("symmetric-fold", C_up, act1.value(C_up), act1))
            branches[-1].offlag_eigenvalue = lam_up
            if branches[-1].action > branches[0].action:  # the other fold branch is realised: seed from it
                C1, lam1, D1 = C_up, lam_up, D_up
                s_path, x_path, eig_known = [1.0], [C_up], {0: lam_up}
                path.s.append(1.0)
                path.x.append(C_up)
        s_branch = None
        if sv.sym and lam1 > UNSTABLE_TOL:
            k = sv.first_unstable(s_path, x_path, eig_known, scan=reference)
            s_branch = s_path[k]
            if reference:  # seed where the symmetric branch first destabilises and continue to s = 1
                Cb = _seed_broken(sv, s_branch, x_path[k], sv.offlag_eigen(s_branch, x_path[k])[1])
                rest = [x for x in s_path[k + 1:] if x > s_branch]
                if rest:
                    Cb = sv.path(rest, Cb, s_start=s_branch, label="broken branch").x[-1]
            else:  # seed at s = 1 along its unstable direction (the maximiser climbs to the broken maximum)
                Cb = _seed_broken(sv, 1.0, C1, D1)
            if _order_sign(pr, Cb) < 0:
                Cb = mirror(pr, Cb)
            branches.append(Branch("broken+", Cb, act1.value(Cb), act1))
            if both_signs:
                Cm = mirror(pr, Cb)
                branches.append(Branch("broken-", Cm, act1.value(Cm), act1))
        return FeatureLearning(pr, act1, branches, largest_action(branches), path, s_branch)


def _other_symmetric_branch(sv: _Solver, C1: np.ndarray, overshoot: float, previous):
    """Continue the symmetric branch from s = 1 to ``overshoot``; after a jump, follow the new branch back
    to s = 1.  Returns its kernel at s = 1, or None (no jump, or the branch ends before s = 1)."""
    grid = list(np.linspace(1.0, overshoot, 5)[1:])
    try:
        ext = sv.path(grid, C1, s_start=1.0, lags=0, label="symmetric overshoot", previous=previous)
    except ConvergenceError:
        return None
    if not ext.jumps:
        return None
    C, s_from = ext.x[-1], ext.s[-1]
    for s in list(np.linspace(1.0, overshoot, 9)[::-1][1:]):
        try:
            C = sv.path([s], C, s_start=s_from, lags=0, label="other symmetric branch").x[-1]
        except ConvergenceError:
            return None
        s_from = s
    return None if np.allclose(C, C1, rtol=1e-6, atol=0) else C


def _order_sign(pr: FLProblem, C: np.ndarray) -> float:
    """Sign of the summed lag-1 kernel (fixes which mirror image is called 'broken+')."""
    return float(np.sign(np.sum(C[pr.lag() == 1])))


#: amplitudes of the displacement along the unstable direction (relative to max diag C) scanned for the start point
CLIMB_AMPLITUDES = np.geomspace(1e-3, 3.0, 40)


def _seed_broken(sv: _Solver, s: float, C_sym: np.ndarray, D: np.ndarray, left=None) -> np.ndarray:
    """Maximise the full action from the symmetric solution displaced along the unstable direction D
    (the displacement is the best of a 1-D scan of S along D).  ``left(C)``: the maximiser's result counts as a
    new branch (default: it has cross-time correlations)."""
    a = sv.act(s)
    left = left or (lambda C: cross_time_size(sv.pr, C) > SYMMETRIC_TOL)
    amps = np.abs(np.diag(C_sym)).max() * CLIMB_AMPLITUDES
    vals = [a.value(C_sym + x * D) for x in amps]
    order = np.argsort(vals)[::-1]
    for i in order[:3]:
        C, _ = maximise(a, C_sym + amps[i] * D, gtol=sv.gtol, label="broken branch")
        if left(C):
            return C
    raise ConvergenceError("the displaced solution did not leave the branch it was displaced from")


#: largest T·P at which a continued branch found to be a saddle is left along its unstable direction by the dense
#: maximiser (O((T·P)³) per Newton-CG product); above it the subspace solver leaves it (:func:`_climb_in_subspace`)
#: where the top eigenvector comes from the inertia route, else the saddle is reported with a warning
CLIMB_MAX_N = 400


def _climb_from_saddle(sv: _Solver, branch: Branch, both_signs: bool, progress, s: float = 1.0,
                       where: str = "feature_learning", warn: bool = True) -> list:
    """Branches of larger action reached from the continued branch (targets s·Y) if it is a saddle of S (Hessian top
    eigenvalue above UNSTABLE_TOL: without a symmetric sector the continuation cannot see a spontaneously broken Z2,
    e.g. the sequential task at T = 4, P = 7, top +0.032 at s = 1): the maximiser from C displaced along ± the top
    eigenvector; [] if stable.  Up to CLIMB_MAX_N sites the dense maximiser; above it the subspace solver
    (:func:`_climb_in_subspace`), and where that does not apply a RuntimeWarning (``warn``) says the result is a
    saddle."""
    if branch.stable:
        return []
    pr = sv.pr
    _log(progress, f"{where}: the continued branch at s = {s:.6g} is a saddle; climbing along its unstable direction")
    if pr.n > CLIMB_MAX_N:
        out = _climb_in_subspace(sv, branch, s, both_signs)
        if out is None and warn:
            warnings.warn(f"{where}: the continued branch at s = {s:.6g} is a saddle of the action (top Hessian "
                          f"eigenvalue {branch.top_eigenvalue:.3g} > 0), and T·P = {pr.n} is above CLIMB_MAX_N = "
                          f"{CLIMB_MAX_N} for leaving it by the dense maximiser, without the subspace form of its top "
                          "eigenvector: it is reported (stable False), a branch of larger action exists",
                          RuntimeWarning, stacklevel=4)
        return out or []
    act = sv.act(s)
    D = top_eigen(act, branch.C, lags=None)[1]
    floor = branch.action + 1e-9 * (1 + abs(branch.action))
    out = []
    for sign, name in ((1.0, "broken+"), (-1.0, "broken-"))[:2 if both_signs else 1]:
        C = _seed_broken(sv, s, branch.C, sign * D, left=lambda C: act.value(C) > floor)
        out.append(Branch(name, C, act.value(C), act))
    return out


def _climb_in_subspace(sv: _Solver, branch: Branch, s: float, both_signs: bool) -> list | None:
    """:func:`_climb_from_saddle` in the subspace solver: the top eigenvector from the inertia route
    (:func:`.reduced_top.top_direction`, whitened D̃ of rank <= 2 dim 𝒲), the subspace grown by its range (the
    𝔅-closure, :meth:`.reduced.Reduction.subspace`), the best of a scan of the reduced action along ±D̃ (amplitudes
    :data:`CLIMB_AMPLITUDES` × max diag C, D normalised in C coordinates as the dense climb does), and
    :meth:`.reduced.Reduction.solve` from there (the three best amplitudes tried until the action rises).  None when
    the branch has no subspace form or the top eigenvector no inertia route."""
    from .reduced_top import top_direction
    r = branch._subspace_form()
    got = None if r is None else top_direction(r.red, r.sub, r.N, r.s, cert=branch._schur())
    if got is None:
        return None
    red, sub, N = r.red, r.sub, r.N
    Dw = got[2]
    lam_d, vec_d = np.linalg.eigh(0.5 * (Dw + Dw.T))
    keep = np.abs(lam_d) > 1e-13 * np.abs(lam_d).max()
    line = red.subspace(red.L0 @ vec_d[:, keep], base=sub)
    Dn = line.U.T @ Dw @ line.U
    Gp = line.Phi.T @ line.Phi
    Dn /= np.sqrt(np.trace(Dn @ Gp @ Dn @ Gp))  # |L₀ D̃ L₀ᵀ|_F = 1
    Nb = line.project(sub, N)
    scale = float(np.max(np.diag(red.C0) + np.einsum("ij,jk,ik->i", sub.Phi, N, sub.Phi)))
    floor = branch.action + 1e-9 * (1 + abs(branch.action))
    out = []
    for sign, name in ((1.0, "broken+"), (-1.0, "broken-"))[:2 if both_signs else 1]:
        amps = scale * CLIMB_AMPLITUDES
        vals = [red.value(line, Nb + sign * x * Dn, r.s) for x in amps]
        for i in np.argsort(vals)[::-1][:3]:
            try:
                sub2, N2, _ = red.solve(r.s, line, Nb + sign * amps[i] * Dn, sv.gtol, label="broken branch")
            except (ConvergenceError, NotPositiveDefinite):
                continue
            value = red.value(sub2, N2, r.s)
            if value > floor:
                out.append(Branch(name, red.dense(sub2, N2), value, sv.act(s),
                                  reduced=ReducedPoint(red, sub2, N2, r.s)))
                break
        else:
            raise ConvergenceError("the displaced solution did not leave the branch it was displaced from")
    return out


@_one_blas_thread
@legacy_positional("supervised", "kappa")
def critical_signal(spec, X, Y, *, supervised=None, kappa=1.0, readout=None, s_max: float = 1e3,
                    gtol: float = 1e-10, xtol: float = 1e-11, progress: bool = False,
                    estimator: dict | None = None) -> float:
    """|y_S| at the threshold: the signal where the top Hessian eigenvalue of the lag sectors k >= 1
    at the symmetric solution crosses zero (targets along Y, scaled).  ``inf`` if it never does up to
    ``s_max``·|y_S| (DNN, T <= 2).  Raises SpecError if there is no symmetric sector (no threshold)."""
    pr = problem(check_spec(spec), X, Y, supervised, kappa, readout)
    s_max = check_real("s_max", s_max, low=0, low_open=True)
    check_real("gtol", gtol, low=0, low_open=True)
    check_real("xtol", xtol, low=0, low_open=True)
    if pr.spec.phi_fn.name != "linear":  # lag-sector Hessian from the per-step pair expectations
        from .nonlinear import check_estimator, critical_signal as nonlinear_threshold
        return nonlinear_threshold(pr, s_max=s_max, progress=progress, **check_estimator(estimator))
    from .nonlinear import check_estimator
    check_estimator(estimator, pr.spec.phi_fn)  # linear φ: an estimator is refused, never ignored
    norm = float(np.linalg.norm(pr.y_S))
    if norm == 0:
        raise SpecError("Y is zero at every supervised site: the threshold is defined along a non-zero target")
    sv = _Solver(pr, "matrix", gtol, progress)
    if not sv.sym:
        raise SpecError("this task has no symmetric (time-block-diagonal) phase — cross-time input or readout "
                        "terms break the symmetry explicitly — so it has no threshold")
    if not sv.coupled:  # lags >= 1 enter only ln det C (DNN, T = 2): the symmetric branch never destabilises
        return float("inf")
    C = gp_kernel(pr)
    s_prev, C_prev, s = 0.0, C, min(0.25, s_max)
    while s <= s_max:
        with _conditioning_hint(pr):
            p = sv.path([s], C_prev, s_start=s_prev, lags=0, label="symmetric branch")
        C_s = p.x[-1]
        lam = sv.offlag_eigen(s, C_s)[0]
        _log(progress, f"critical_signal: |y| = {s * norm:.6g}  top off-lag eigenvalue = {lam:.3g}")
        if lam > 0:
            if p.jumps:
                warnings.warn(f"the symmetric branch jumped (fold) between |y| = {s_prev * norm:.6g} and "
                              f"{s * norm:.6g}: the instability found is at the jump, not a pitchfork", stacklevel=3)
            break
        s_prev, C_prev = s, C_s
        s = s * 1.25 if s >= 1 else s + 0.25
    else:
        return float("inf")

    def f(x):
        C_x = sv.path([x], C_prev, s_start=s_prev, lags=0).x[-1]
        return sv.offlag_eigen(x, C_x)[0]

    lo = s_prev if s_prev > 0 else 1e-6
    return brentq(f, lo, s, xtol=xtol, rtol=1e-13) * norm


@legacy_positional("supervised", "kappa")
def closed_form_threshold(spec, X, Y=None, *, supervised=None, kappa=1.0) -> float:
    """|y_c| from the symbolically derived closed form (linear endpoint task, K^x = q·1; Sec. 7.3).

    Derived for one W shared by all steps (M = 1 on t, s >= 2; ``inf`` when no two steps share a W, as
    no lag sector destabilises) without skip coefficients; other groupings raise (use
    :func:`critical_signal`)."""
    from . import closed
    P = np.asarray(X).shape[0]
    Y = np.zeros((P, check_spec(spec).T)) if Y is None else Y
    pr = problem(check_spec(spec), X, Y, supervised, kappa)
    M = pr.spec.weight_mask()[1:, 1:]
    if np.all(M == np.eye(M.shape[0])):
        return float("inf")
    if not np.all(M == 1) or pr.prop is not None:
        raise SpecError("the closed-form threshold is derived for one W shared by all steps and no skip "
                        f"(leak); W groups {pr.spec.groups('W')}, leak {pr.spec.leak}: use critical_signal")
    params = closed.endpoint_parameters(pr)
    if closed.folds_before_threshold(spec.T, **params):
        warnings.warn("the symmetric branch folds before ρ_c for these hyperparameters (y²(ρ) is not monotone): "
                      "the closed-form pitchfork threshold is not the transition that is realised", stacklevel=2)
    return closed.threshold_value(spec.T, **params)


@dataclass
class SignalScan:
    """Both branches along targets s·Y: |y| values, actions, order parameters, kernels, top eigenvalues.

    ``symmetric``: the symmetric branch per scale, or without a symmetric sector the continued branch (its
    ``Branch.stable`` was checked at every scale); ``broken``: the broken branch per scale (None below the threshold),
    or without a symmetric sector the branch of larger action left the continued branch for where it is a saddle;
    ``threshold_scale``: the first scale of a broken branch (without a symmetric sector: the first scale where the
    continued branch is a saddle).  ``.C`` holds one kernel per scale: the selected branch's C, shape
    (scales, T, T, P, P)."""

    y: np.ndarray
    scales: np.ndarray
    symmetric: list  # Branch per scale (symmetric or continued branch)
    broken: list  # Branch or None per scale
    threshold_scale: float | None
    problem: FLProblem | None = None  # the task at scale 1

    def selected(self) -> list:
        return [b if (b is not None and b.action > s.action) else s for s, b in zip(self.symmetric, self.broken)]

    @property
    def spec(self):
        return self.problem.spec

    @property
    def C(self) -> np.ndarray:
        return np.stack([self.problem.from_sites(b.C) for b in self.selected()])


@_one_blas_thread
@legacy_positional("supervised", "kappa")
def signal_scan(spec, X, Y, scales, *, supervised=None, kappa=1.0, readout=None, gtol: float = 1e-9,
                method: str = "matrix", progress: bool | None = None) -> SignalScan:
    """Follow the symmetric branch over ``scales`` (targets s·Y, increasing) and, once it destabilises,
    the broken branch (one sign).  Forward sweep; a fold of the symmetric branch is reported by a
    backward sweep that keeps, at each scale, the solution of larger action.

    ``method`` 'matrix': the lag-sector spectra are computed at the points a bisection for the first
    unstable scale visits (``Branch.offlag_eigenvalue`` is nan at the others) and the broken branch is
    continued with a secant predictor; 'reference': the spectra at every point (the solver before the
    scale work, kept as the benchmark reference).

    Without a symmetric sector (sequential tasks) the continued branch is followed and its stability checked at
    every scale (``Branch.stable``: the inertia certificate of :mod:`.reduced_spectrum` at a subspace point, else
    the dense Hessian); at the first scale where it is a saddle it is left along its unstable direction as
    :func:`feature_learning` does at s = 1 (:func:`_climb_from_saddle`, the branch of larger action of the two
    signs), and that branch is continued over the later scales ('broken' entries; climbed again where its
    continuation fails).  Above CLIMB_MAX_N sites the climb runs in the subspace solver; where it cannot (no
    subspace form of the top eigenvector) one RuntimeWarning names the first saddle and the later ones stay flagged
    by ``Branch.stable``.  Method 'reference' does not check (as :func:`feature_learning`'s)."""
    pr = problem(check_spec(spec), X, Y, supervised, kappa, readout)
    scales = np.asarray(scales, dtype=float)
    if scales.ndim != 1 or scales.size == 0 or np.any(np.diff(scales) <= 0) or scales[0] <= 0:
        raise SpecError("scales must be a positive increasing 1-D array")
    check_real("gtol", gtol, low=0, low_open=True)
    check_choice(method, "method", ("matrix", "reference"))
    reference = method == "reference"
    sv = _Solver(pr, "matrix", gtol, progress, reference)
    lags = 0 if sv.sym else None
    climb = not sv.sym and not reference  # the continued branch may become a saddle (a Z2 broken spontaneously)
    red = Reduction(pr) if not reference and reduced_applicable(pr) else None
    with progress_bar(scales.size, "signal_scan: symmetric branch", progress) as bar, _conditioning_hint(pr):
        step = lambda s, C, info: bar.update(int(np.sum(scales <= s)) - bar.n)  # noqa: E731
        if not sv.sym and red is not None:  # the subspace solver, every scale to gtol
            path = red.continuation(list(scales), gtol, on_step=step)[0]
        else:
            path = sv.path(list(scales), gp_kernel(pr), lags=lags, label="scan", on_step=step)
    Cs = {s: C for s, C in zip(path.s, path.x)}
    states = dict(zip(path.s, path.x.states)) if hasattr(path.x, "states") else {}
    if path.jumps:  # fold: sweep back from the top along the other branch until it ends; keep the larger action
        C = Cs[scales[-1]]
        for s_from, s in zip(scales[::-1], scales[::-1][1:]):
            try:
                C = sv.path([s], C, s_start=s_from, lags=lags, label="scan back").x[-1]
            except ConvergenceError:
                break
            if sv.act(s).value(C) > sv.act(s).value(Cs[s]) + 1e-12:
                Cs[s] = C
                states.pop(s, None)
    Csym = [Cs[s] for s in scales]
    lam = {i: sv.offlag_eigen(s, C)[0] for i, (s, C) in enumerate(zip(scales, Csym))} if reference and sv.sym else {}
    first = sv.first_unstable(scales, Csym, lam, scan=reference) if sv.sym and sv.coupled else None
    symmetric, broken, s_thr, Cb, prev, state = [], [], None, None, None, None
    if first is None and not climb:
        red = None
    warned = False
    with progress_bar(scales.size, "signal_scan: branches", progress) as bar:
        for i, s in enumerate(scales):
            a = sv.act(s)
            C = Csym[i]
            st = states.get(s)  # a subspace point: its action in O(R³) (the dense one is O(n³))
            br = Branch("symmetric" if sv.sym else "continued", C, a.value(C) if st is None else red.value(*st, s), a,
                        reduced=None if st is None else ReducedPoint(red, *st, s))
            br.offlag_eigenvalue = lam.get(i, float("nan")) if sv.sym else -np.inf
            symmetric.append(br)
            if climb:
                Cb, state, prev = _scan_left_saddle(sv, red, br, s, scales[i - 1] if i else None, Cb, state, prev,
                                                    progress, warn=not warned)
                warned = warned or (Cb is None and not br.stable and pr.n > CLIMB_MAX_N)  # the warning was given
                if Cb is not None and s_thr is None:
                    s_thr = s
                if Cb is None:
                    broken.append(None)
                else:
                    broken.append(Branch("broken", Cb, a.value(Cb) if state is None else red.value(*state, s), a,
                                         reduced=None if state is None else ReducedPoint(red, *state, s)))
            elif first is not None and i >= first:
                if Cb is None:
                    s_thr = s
                    _, D = sv.offlag_eigen(s, C)
                    Cb = _seed_broken(sv, s, C, D)
                elif red is not None:  # the subspace solver (:mod:`.reduced`) from the previous point
                    state = red.solve(s, *state, gtol, label="broken branch")[:2]
                    Cb = red.dense(*state)
                else:
                    Cb_new = sv.path([s], Cb, s_start=scales[i - 1], label="broken branch",
                                     previous=None if reference else prev).x[-1]
                    prev, Cb = (scales[i - 1], Cb), Cb_new
                if _order_sign(pr, Cb) < 0:
                    Cb = mirror(pr, Cb)
                    prev = state = None
                if red is not None and state is None:
                    state = red.state(Cb)
                broken.append(Branch("broken+", Cb, a.value(Cb), a))
            else:
                broken.append(None)
            bar.update(1)
    return SignalScan(scales * np.linalg.norm(pr.y_S), scales, symmetric, broken, s_thr, pr)


def _scan_left_saddle(sv: _Solver, red, branch: Branch, s: float, s_prev, Cb, state, prev, progress, warn: bool):
    """One scale of :func:`signal_scan` without a symmetric sector: (kernel, subspace state, previous point) of the
    branch that left the continued branch, or (None, None, None).  The branch found at an earlier scale is continued
    to s (the subspace solver from its state, else the dense continuation with a secant predictor); where there is
    none yet, or its continuation fails, and the continued branch is a saddle (``branch.stable``, checked at every
    scale), it is left by :func:`_climb_from_saddle` (the larger action of the two signs)."""
    stable = branch.stable
    if Cb is not None:
        try:
            if red is not None:
                state = red.solve(s, *(state if state is not None else red.state(Cb)), sv.gtol,
                                  label="broken branch")[:2]
                return red.dense(*state), state, None
            Cn = sv.path([s], Cb, s_start=s_prev, label="broken branch", previous=prev).x[-1]
            return Cn, None, (s_prev, Cb)
        except ConvergenceError:
            pass
    if stable:
        return None, None, None
    found = _climb_from_saddle(sv, branch, True, progress, s=s, where="signal_scan", warn=warn)
    if not found:
        return None, None, None
    best = largest_action(found)
    if red is None:
        return best.C, None, None
    return best.C, (best.reduced.sub, best.reduced.N) if best.reduced is not None else red.state(best.C), None
