"""Results of the μP solver: stationary points (branches) and the selected solution with its observables.

``FeatureLearning`` exposes the kernel C and conjugate Ĉ on (t, s, μ, ν), the action, the phase, the
predictor f̄ = σ_v² (M_out ∘ C)_{·S} A⁻¹ y_S and the learned eigenvalues eig(C_pp⁻¹ C_pn) (theory Secs. 4, 8).
"""
from __future__ import annotations

import numpy as np

from .action import LinearAction
from .problem import FLProblem
from .prediction import predict_new
from .spectrum import learned_eigenvalues, top_eigen, weight_group_sites

#: a Hessian eigenvalue above this (congruence coordinates) counts as an instability
UNSTABLE_TOL = 1e-9
#: a dense branch with at least this many sites gets its spectra in subspace form (:meth:`Branch._subspace_form`):
#: below it Lanczos on the dense Hessian is faster (0.2 s against 5.7 s at n = 56, where 𝒲 is most of the space)
SUBSPACE_FORM_MIN_N = 200
#: relative size of the cross-time kernel below which a solution counts as symmetric
SYMMETRIC_TOL = 1e-6


class Branch:
    """One stationary point: ``name``, site kernel ``C`` (n, n) on sites i = t·P + μ (not (T, T, P, P):
    ``FeatureLearning.C`` is), ``action`` S/N; the top eigenvalue of
    the Hessian (all lags, congruence coordinates) is computed on first access.  ``reduced``: the point as
    C = C₀ + Φ N Φᵀ of the subspace solver (:class:`.reduced.ReducedPoint`), whose Hessian-vector products
    cost O(n² R) (:mod:`.reduced_spectrum`)."""

    def __init__(self, name: str, C: np.ndarray, action: float, act=None, top_eigenvalue: float | None = None,
                 reduced=None):
        self.name, self.C, self.action, self._act, self._top = name, C, float(action), act, top_eigenvalue
        self.reduced = reduced
        self._certificate = None
        self._dense_form = None  # (subspace form or None,) of a dense point, once computed (:meth:`_subspace_form`)
        #: top eigenvalue of the lag sectors k >= 1 (symmetric solutions only; nan otherwise)
        self.offlag_eigenvalue = float("nan")

    def _subspace_form(self):
        """``reduced``; for a dense point with n >= :data:`SUBSPACE_FORM_MIN_N` of a linear problem the reduction
        covers, its form C = C₀ + Φ N Φᵀ from :meth:`.reduced.Reduction.state` (O(n³), exact for any C; the spectra
        then need the reducing subspace to be small); else None."""
        if self.reduced is None and self._dense_form is None:
            from .reduced import ReducedPoint, Reduction, applicable
            pr = getattr(self._act, "pr", None)
            self._dense_form = (None,)
            if (isinstance(pr, FLProblem) and pr.spec.phi_fn.name == "linear" and pr.n >= SUBSPACE_FORM_MIN_N
                    and applicable(pr)):
                red = Reduction(pr)
                self._dense_form = (ReducedPoint(red, *red.state(self.C), 1.0),)
        return self.reduced if self.reduced is not None else self._dense_form[0]

    def _schur(self):
        """The exact inertia certificate :func:`.reduced_spectrum.certificate` of the subspace form
        (:meth:`_subspace_form`), or None (none, its reducing subspace exceeds
        :data:`.reduced_spectrum.CERTIFICATE_MAX_K`, or several W groups without the time-chain form of
        :class:`.reduced_spectrum.ChainQ`)."""
        r = self._subspace_form()
        if r is None:
            return None
        if self._certificate is None:
            from .reduced_spectrum import certificate
            self._certificate = (certificate(r.red, r.sub, r.N, r.s),)
        return self._certificate[0]

    @property
    def top_eigenvalue(self) -> float:
        """Largest eigenvalue of the Hessian (congruence coordinates).  At a subspace point (or a large dense one in
        subspace form, :meth:`_subspace_form`) from inertia counts of an |S| × |S| matrix
        (:func:`.reduced_top.top_eigenvalue`: to :data:`.reduced_top.TOP_TOL` plus round-off; needs 𝔅̃_g = b_g ⊗ 1_p;
        several W groups and singular inputs included); where that does not apply by Lanczos, on the coupled block
        when it holds the top (:func:`.reduced_spectrum.stability`, one W group) else on the whole Hessian, O(n² R)
        per product — slow where the top is clustered (minutes at T·P = 400).  Else (a small dense point) from the
        dense Hessian or Lanczos (:func:`.spectrum.top_eigen`)."""
        if self._top is None:
            r = self._subspace_form()
            if r is not None:
                from .reduced_top import top_eigenvalue
                cert = self._schur()
                self._top = None if cert is None else top_eigenvalue(r.red, r.sub, r.N, r.s, cert=cert)
                if self._top is None:  # Lanczos, O(n² R) per product (slow where the top is clustered)
                    from .reduced_spectrum import stability, top_eigen as reduced_top
                    blk = stability(r.red, r.sub, r.N, r.s)
                    if blk is not None and blk[0] >= blk[1]:  # the coupled block holds the top of the spectrum
                        self._top = blk[0]
                    else:
                        self._top = reduced_top(r.red, r.sub, r.N, r.s)[0]
            else:  # a dense point
                self._top = top_eigen(self._act, self.C, lags=None)[0]
        return self._top

    @property
    def stable(self) -> bool:
        """Top eigenvalue of the Hessian <= UNSTABLE_TOL.  At a subspace point, without iteration, from the
        Schur complement of :class:`.reduced_spectrum.SchurCertificate` (k(k+1)/2 × k(k+1)/2, k = dim 𝒲): it has
        as many positive eigenvalues as the Hessian, so the sign is exact; the margin UNSTABLE_TOL is applied to
        its top eigenvalue (5–10 s at T·P = 2000, load 2–8).  Else from :attr:`top_eigenvalue`."""
        cert = self._schur() if self._top is None else None
        if cert is not None:
            return bool(cert.eigenvalues[-1] <= UNSTABLE_TOL)
        return self.top_eigenvalue <= UNSTABLE_TOL

    def __repr__(self):
        return f"Branch({self.name!r}, action={self.action:.10g})"


def cross_time_size(pr: FLProblem, C: np.ndarray) -> float:
    off = pr.lag() > 0
    return float(np.abs(C[off]).max() / np.abs(np.diag(C)).max()) if off.any() else 0.0


def mirror(pr: FLProblem, C: np.ndarray) -> np.ndarray:
    """J C J with J = diag((−1)^t) ⊗ 1_P: the Z2 image of C (an exact symmetry of S whenever the
    symmetric sector exists; odd lags change sign)."""
    j = np.where(pr.times() % 2 == 0, 1.0, -1.0)
    return C * np.outer(j, j)


def largest_action(branches: list):
    """The branch of largest action; ties (mirror branches of the Z2) go to the first listed."""
    top = max(b.action for b in branches)
    return next(b for b in branches if b.action >= top - 1e-12 * (1 + abs(top)))


def outside_bulk(eigenvalues: np.ndarray, g: float) -> np.ndarray:
    """The eigenvalues outside the bulk disc |λ| <= g of a W group (theory Sec. 8)."""
    return eigenvalues[np.abs(eigenvalues) > g * (1 + 1e-12)]


class FeatureLearning:
    """Result of :func:`feature_learning` (kernels on (t, s, μ, ν), branches, predictions)."""

    def __init__(self, pr: FLProblem, act, branches: list, selected: Branch, path=None, s_branch=None):
        self.problem, self._act, self.branches, self.selected = pr, act, branches, selected
        self.path = path
        #: first continuation scale s (targets s·Y) where the symmetric branch is unstable (None: no instability)
        self.s_branch = s_branch

    @property
    def spec(self):
        """The declaration solved (``self.problem.spec``)."""
        return self.problem.spec

    # ------------------------------------------------------------- kernels
    @property
    def C_sites(self) -> np.ndarray:
        return self.selected.C

    @property
    def C(self) -> np.ndarray:
        """Representational kernel C[t, s, μ, ν] (0-based times), shape (T, T, P, P)."""
        return self.problem.from_sites(self.selected.C)

    @property
    def Chat(self) -> np.ndarray:
        """Conjugate kernel from the backward equation, shape (T, T, P, P) (low rank at a subspace point,
        :meth:`.reduced.Reduction.backward_factors`)."""
        r = self.selected.reduced
        Ch = r.chat() if r is not None else self._lin().chat(self._lin().point(self.selected.C))
        return self.problem.from_sites(Ch)

    @property
    def Sigma(self) -> np.ndarray:
        """Pre-activation covariance Σ(C), shape (T, T, P, P)."""
        return self.problem.from_sites(self._lin().sigma(self.selected.C))

    def _lin(self) -> LinearAction:
        return self._act if isinstance(self._act, LinearAction) else LinearAction(self.problem)

    @property
    def action(self) -> float:
        """S/N at the solution (0 at the GP kernel without data)."""
        return self.selected.action

    @property
    def phase(self) -> str:
        """'symmetric' (time-block-diagonal C, DNN-identical) or 'broken' (cross-time correlations)."""
        return "broken" if cross_time_size(self.problem, self.selected.C) > SYMMETRIC_TOL else "symmetric"

    @property
    def explicitly_broken(self) -> bool:
        """True when no symmetric sector exists (cross-time data or input terms, e.g. sequential tasks)."""
        return not self.problem.block_diagonal_invariant()

    @property
    def stable(self) -> bool:
        return self.selected.stable

    @property
    def error(self) -> float:
        """The solver's accuracy estimate of C, relative to max |C| (the Newton correction,
        :func:`.solver.newton_error`)."""
        if getattr(self, "_error", None) is None:
            from .blocks import Blocks
            from .solver import newton_error
            pr = self.problem
            self._error = newton_error(self._lin(), self.selected.C, Blocks(pr) if pr.block_diagonal_invariant() else None)
        return self._error

    def fixed_point_residual(self) -> float:
        """max |C − (Σ⁻¹ − Ĉ)⁻¹| / max |C| (forward–backward identity of Sec. 5)."""
        if self.selected.reduced is not None:
            return self.selected.reduced.fixed_point_residual()
        lin = self._lin()
        p = lin.point(self.selected.C)
        Cf = lin.forward(p, lin.chat(p))
        return float(np.abs(Cf - self.selected.C).max() / np.abs(self.selected.C).max())

    def correlation(self) -> np.ndarray:
        """η = C / sqrt(diag ⊗ diag) on sites, as (T, T, P, P)."""
        d = np.sqrt(np.diag(self.selected.C))
        return self.problem.from_sites(self.selected.C / np.outer(d, d))

    def order_parameter(self) -> float:
        """|corr(T-1, T)| of pattern 1 (the lag-1 correlation at the end of the chain; 0 if T < 2)."""
        if self.problem.T < 2:
            return 0.0
        return float(abs(self.correlation()[-2, -1, 0, 0]))

    # ---------------------------------------------------------- predictions
    def predict(self, X_new=None, *, average_branches: bool = False) -> np.ndarray:
        """Posterior-predictive mean f̄ = σ_v² (M_out ∘ C)_{·S} A⁻¹ y_S (theory Sec. 4), shape (P, T).

        ``X_new`` None: at the training sites; else new patterns or sequences (shaped like X), at every
        time, from the learned kernels without re-solving (:mod:`.prediction`; equal to re-solving with
        them appended as unsupervised patterns).

        ``average_branches`` False: the value on the selected branch (the N → ∞ saddle point; where the Z2
        symmetry is broken spontaneously it is one of two mirror branches of equal action, and outputs at
        sites that change sign under the Z2 carry that branch's sign).  True: the mean over the selected
        branch and its Z2 mirror image J C J (:func:`mirror`), with equal weights (the two are exact images,
        so every finite-N correction is the same): what the finite-N posterior mean converges to, since a
        finite network visits both branches.  Without a broken Z2 both agree."""
        Cs = [self.selected.C]
        if average_branches and self.phase == "broken" and self.problem.block_diagonal_invariant():
            Cs.append(mirror(self.problem, self.selected.C))
        return np.mean([self._predict_at(C, X_new) for C in Cs], axis=0)

    def _predict_at(self, C: np.ndarray, X_new) -> np.ndarray:
        lin = self._lin()
        r = self.selected.reduced if C is self.selected.C else None
        if X_new is None:
            w = None if r is None else r.dual()
            return lin.predict(C, w).reshape(self.problem.T, self.problem.P).T
        if r is not None:  # Ĉ = U K Uᵀ of rank R + 1 and w by Woodbury: O(n² R)
            return predict_new(self.problem, C, r.chat_factors(), r.dual(), X_new)
        p = lin.point(C)
        return predict_new(self.problem, C, lin.chat(p), p.w, X_new)

    def predictive_variance(self) -> np.ndarray:
        """N × posterior variance of f at every site, shape (P, T) (the variance itself is O(1/N))."""
        v = self._lin().predictive_variance(self.selected.C)
        return v.reshape(self.problem.T, self.problem.P).T

    def to_xarray(self):
        """Labelled Dataset (dims t, s, mu, nu; spec in attrs): :func:`symfield.labelled.feature_learning`."""
        from ...labelled import feature_learning as labelled
        return labelled(self.spec, self.C, self.predict(), {"action": self.action, "phase": self.phase,
                                                            "s_branch": self.s_branch})

    # ------------------------------------------------------------- weights
    def learned_eigenvalues(self):
        """Non-zero spectrum of the learned part of W (theory Sec. 8; :func:`.spectrum.learned_eigenvalues`).

        One W group (W shared over all steps, e.g. an RNN): eig(C_pp⁻¹ C_pn) over the sites t <= T-1,
        a 1-D array.  Several groups: one array per group, stacked when the groups have the same size
        (fresh W per layer, e.g. a DNN: (T-1, P)).  Needs input at t = 1 only and no bias."""
        out = self._learned()
        if len(out) == 0:
            return np.zeros(0)
        if len(out) == 1:
            return out[0]
        return np.array(out) if len({v.size for v in out}) == 1 else out

    def _learned(self) -> list:
        """:func:`.spectrum.learned_eigenvalues` of the selected branch, computed once."""
        if getattr(self, "_learned_cache", None) is None:
            r = self.selected.reduced
            low = None if r is None else (r.red.C0, r.sub.Phi, r.N)  # C = C₀ + Φ N Φᵀ: an R × R eigenproblem
            self._learned_cache = learned_eigenvalues(self.problem, self.selected.C, low)
        return self._learned_cache

    def outliers(self):
        """Learned eigenvalues outside the bulk disc of their W group: |λ| > g (theory Sec. 8), in the
        layout of :meth:`learned_eigenvalues` (a list per group when there are several)."""
        lam = self._learned()
        g = self.problem.spec.g_values()
        groups = weight_group_sites(self.problem)
        out = [outside_bulk(row, g[k[0] - 1]) for row, (_, _, k) in zip(lam, groups)]
        return out[0] if len(out) == 1 else out

    def __repr__(self):
        return (f"FeatureLearning({self.problem.spec.label}, T={self.problem.T}, P={self.problem.P}, "
                f"phase={self.phase!r}, action={self.action:.6g}, branches={[b.name for b in self.branches]})")
