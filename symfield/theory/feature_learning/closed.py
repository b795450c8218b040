"""Closed forms of the linear endpoint task, derived symbolically (theory Secs. 7.1–7.3).

Setting: linear φ, one pattern with |x|²/D = q (or P orthonormal ones, K^x = q·1), input at
t = 1 only, target y at t = T, no bias.  With σ_u² ≡ g_in² q:

1. :func:`diagonal_equations` differentiates S/N at C = diag(c_1..c_T) (explicit components);
   :func:`symmetric_solution` checks that c_t = σ_u² ρ (g²ρ)^{t−1} with
   ρ − 1 = σ_v² y² c_T/(κ + σ_v² c_T)² solves them and returns y²(ρ).
2. :func:`lag_sector_hessians` expands S/N to second order in η (C = D^½(1 + εη)D^½) with
   the Taylor rules ln det(A + εE) = ln det A + ε tr(A⁻¹E) − ε²/2 tr(A⁻¹EA⁻¹E) and
   (A + εE)⁻¹ = A⁻¹ − εA⁻¹EA⁻¹ + ε²A⁻¹EA⁻¹EA⁻¹ (exact to O(ε²); A diagonal here), and splits
   the quadratic form ηᵀHη into lag sectors k = s − t.
3. :func:`derive_threshold`: ρ_c is the smallest root > 1 of det H_k over all sectors, and
   y_c² = y²(ρ_c).  The derivation is run for T <= :data:`SYMBOLIC_T_MAX`; it establishes
   det H_k = (−1)^{m+1}ρ^{m−1}[(m−1)ρ − m]/2^m (m = T − k), whose smallest root > 1 is ρ_c = (T−1)/(T−2),
   and :func:`threshold_formula` evaluates the resulting closed form for any T (checked against the
   derivation for small T and against the numerical threshold in the tests).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

from ...spec import SpecError
from .terms import action_value, data_matrix_sym, sigma_sym

rho, y, kappa, g, su, sv, eps = sp.symbols("rho y kappa g sigma_u sigma_v epsilon", positive=True)


def _sigma_diag_action(cs):
    """S/N (:mod:`.terms`) at a diagonal C for the endpoint task: Σ = diag(σ_u², g² c_1, …, g² c_{T−1})
    (any W groups agree at a diagonal C), A = κ + σ_v² c_T."""
    T = len(cs)
    sdet = sp.zeros(T, T)
    sdet[0, 0] = su ** 2
    Sig = sigma_sym(sp.diag(*cs), g ** 2 * sp.ones(T, T), sdet, 1)
    sig = [Sig[t, t] for t in range(T)]
    A = data_matrix_sym(sp.Matrix([[cs[-1]]]), [[1]], kappa, sv ** 2)[0, 0]
    return action_value(sum(sp.log(c) for c in cs), sum(sp.log(s) for s in sig),
                        sum(c / s for c, s in zip(cs, sig)), T, y ** 2 / A)


def diagonal_equations(T: int):
    """(c symbols, [∂(S/N)/∂c_t]) at a diagonal kernel."""
    cs = sp.symbols(f"c1:{T + 1}", positive=True)
    S = _sigma_diag_action(list(cs))
    return cs, [sp.diff(S, c) for c in cs]


def _geometric(T):
    return [su ** 2 * rho * (g ** 2 * rho) ** (t - 1) for t in range(1, T + 1)]


@lru_cache(maxsize=None)
def symmetric_solution(T: int) -> sp.Expr:
    """y²(ρ) on the symmetric branch; raises if the geometric ansatz does not solve the equations."""
    cs, eqs = diagonal_equations(T)
    cT = _geometric(T)[-1]
    y2 = (rho - 1) * (kappa + sv ** 2 * cT) ** 2 / (sv ** 2 * cT)
    sub = dict(zip(cs, _geometric(T)))
    for t, e in enumerate(eqs):
        r = sp.simplify(e.subs(sub).subs(y, sp.sqrt(y2)))
        if r != 0:
            raise AssertionError(f"symmetric ansatz fails the stationarity equation at t = {t + 1}: {r}")
    return sp.simplify(y2)


def _eta(T):
    return {(t, s): sp.Symbol(f"eta_{t + 1}_{s + 1}", real=True) for t in range(T) for s in range(t + 1, T)}


def _second_order(T: int):
    """(η symbols, first- and second-order coefficients of S/N in ε) at the symmetric point."""
    et = _eta(T)
    E = sp.zeros(T, T)
    for (t, s), v in et.items():
        E[t, s] = E[s, t] = v
    cs = _geometric(T)
    Dh = sp.diag(*[sp.sqrt(c) for c in cs])
    # ln det C = ln det D + ln det(1 + εη): first order tr η = 0, second −½ tr η²
    ld1, ld2 = E.trace(), -sp.Rational(1, 2) * (E * E).trace()
    # Σ = diag(σ_u², g² C_pp); C_pp = Dp^½ (1 + εη_pp) Dp^½ is diagonal at ε = 0
    Ep = E[:T - 1, :T - 1]
    Dp = Dh[:T - 1, :T - 1]
    A0inv = sp.diag(*[1 / (g ** 2 * c) for c in cs[:-1]])
    Ecp = g ** 2 * Dp * Ep * Dp  # ε-part of Σ_pp
    Cn0 = sp.diag(*cs[1:])
    Cn1 = Dh[1:, 1:] * E[1:, 1:] * Dh[1:, 1:]
    inv1 = -A0inv * Ecp * A0inv
    inv2 = A0inv * Ecp * A0inv * Ecp * A0inv
    # tr(Σ⁻¹C) on the block t >= 2 (the t = 1 entry C_11/σ_u² does not depend on η)
    tr1 = (inv1 * Cn0 + A0inv * Cn1).trace()
    tr2 = (inv2 * Cn0 + inv1 * Cn1).trace()
    # ln det Σ_pp = const + ε tr(A0⁻¹ Ecp) − ε²/2 tr(A0⁻¹ Ecp A0⁻¹ Ecp)
    lds1 = (A0inv * Ecp).trace()
    lds2 = -sp.Rational(1, 2) * (A0inv * Ecp * A0inv * Ecp).trace()
    first = sp.Rational(1, 2) * (ld1 - tr1 - lds1)
    second = sp.Rational(1, 2) * (ld2 - tr2 - lds2)
    return et, sp.simplify(first), sp.expand(sp.simplify(second))


@lru_cache(maxsize=None)
def lag_sector_hessians(T: int) -> dict:
    """{k: H_k} with S/N = S_sym/N + Σ_k η_kᵀ H_k η_k + O(η³), η_k = (η_{t,t+k})_t (theory Sec. 7.2)."""
    if T < 2:
        return {}
    et, first, second = _second_order(T)
    if sp.simplify(first) != 0:
        raise AssertionError(f"the action has a term linear in η at the symmetric point: {first}")
    out = {}
    for k in range(1, T):
        vs = [et[(t, t + k)] for t in range(T - k)]
        H = sp.hessian(second, vs) / 2
        out[k] = sp.simplify(H)
    # sectors decouple: no mixed terms between different lags
    allv = list(et.values())
    full = sp.hessian(second, allv)
    for a, va in enumerate(allv):
        for b, vb in enumerate(allv):
            ka = [k for (t, s), v in et.items() if v == va for k in [s - t]][0]
            kb = [k for (t, s), v in et.items() if v == vb for k in [s - t]][0]
            if ka != kb and sp.simplify(full[a, b]) != 0:
                raise AssertionError(f"lag sectors {ka} and {kb} are coupled")
    return out


def lag_sector_determinant(T: int, k: int) -> sp.Expr:
    """det H_k, derived (factorised)."""
    return sp.factor(lag_sector_hessians(T)[k].det())


def boxed_determinant(T: int, k: int) -> sp.Expr:
    """The documented closed form (−1)^{m+1} ρ^{m−1} [(m−1)ρ − m] / 2^m, m = T − k."""
    m = T - k
    return (-1) ** (m + 1) * rho ** (m - 1) * ((m - 1) * rho - m) / 2 ** m


@lru_cache(maxsize=None)
def derive_threshold(T: int):
    """(ρ_c, y_c²) as SymPy expressions; ρ_c = ∞ (None) for T <= 2 where no sector destabilises."""
    if T < 3:
        return None, None
    roots = []
    for k in range(1, T):
        for r in sp.solve(lag_sector_determinant(T, k), rho):
            if r.is_real and r > 1:
                roots.append(r)
    rho_c = min(roots)
    return rho_c, sp.simplify(symmetric_solution(T).subs(rho, rho_c))


#: largest T for which :func:`threshold_value` runs the full symbolic derivation
SYMBOLIC_T_MAX = 6


def threshold_formula(T: int):
    """(ρ_c, y_c²) from the derived determinant formula: ρ_c = (T−1)/(T−2), y_c² = y²(ρ_c) with
    y²(ρ) = (ρ − 1)(κ + σ_v² c_T)²/(σ_v² c_T), c_T = σ_u² g^{2(T−1)} ρ^T."""
    if T < 3:
        return None, None
    rho_c = sp.Rational(T - 1, T - 2)
    cT = su ** 2 * g ** (2 * (T - 1)) * rho_c ** T
    return rho_c, (rho_c - 1) * (kappa + sv ** 2 * cT) ** 2 / (sv ** 2 * cT)


def threshold_value(T: int, g_: float = 1.0, sigma_u: float = 1.0, sigma_v: float = 1.0, kappa_: float = 1.0) -> float:
    """y_c for the given hyperparameters (∞ for T <= 2); derived symbolically for T <= SYMBOLIC_T_MAX."""
    rc, yc2 = derive_threshold(T) if T <= SYMBOLIC_T_MAX else threshold_formula(T)
    if rc is None:
        return float("inf")
    return float(sp.sqrt(yc2.subs({g: g_, su: sigma_u, sv: sigma_v, kappa: kappa_})))


def folds_before_threshold(T: int, g_: float = 1.0, sigma_u: float = 1.0, sigma_v: float = 1.0,
                           kappa_: float = 1.0) -> bool:
    """Does y²(ρ) decrease somewhere on (1, ρ_c)?  Then the symmetric branch folds (jumps to a larger
    ρ) before the pitchfork at ρ_c, and the closed-form threshold is not the one realised (Sec. 7.1)."""
    if T < 3:
        return False
    f = sp.lambdify(rho, symmetric_solution(T).subs({g: g_, su: sigma_u, sv: sigma_v, kappa: kappa_})
                    if T <= SYMBOLIC_T_MAX else
                    (rho - 1) * (kappa_ + sigma_v ** 2 * sigma_u ** 2 * g_ ** (2 * (T - 1)) * rho ** T) ** 2
                    / (sigma_v ** 2 * sigma_u ** 2 * g_ ** (2 * (T - 1)) * rho ** T))
    r = np.linspace(1.0, (T - 1) / (T - 2), 4001)[1:]
    return bool(np.any(np.diff(f(r)) < 0))


def endpoint_parameters(pr) -> dict:
    """Hyperparameters (g, σ_u, σ_v, κ) if ``pr`` is the linear endpoint task with K^x = q·1, else raise."""
    spec = pr.spec
    if spec.phi_fn.name != "linear":
        raise SpecError("the closed-form threshold needs phi='linear'")
    if spec.input != "first" or np.any(pr.sigma_det[pr.P:, :] != 0) or np.any(pr.sigma_det[:, pr.P:] != 0):
        raise SpecError("the closed-form threshold needs input at t = 1 only and no bias")
    sup = np.zeros_like(pr.supervised)
    sup[:, -1] = True
    if not np.array_equal(pr.supervised, sup):
        raise SpecError("the closed-form threshold is for the endpoint task (every pattern supervised at t = T only)")
    K = pr.sigma_det[:pr.P, :pr.P]
    q = K[0, 0]
    if not np.allclose(K, q * np.eye(pr.P), rtol=1e-12, atol=1e-12 * q):
        raise SpecError("the closed-form threshold needs orthonormal inputs: g_in² X X^T/D = q·1")
    gs = spec.g_values()
    if gs.size and not np.allclose(gs, gs[0]):
        raise SpecError("the closed-form threshold needs one g for all layers")
    return {"g_": float(gs[0]) if gs.size else 1.0, "sigma_u": float(np.sqrt(q)), "sigma_v": float(spec.sigma_v),
            "kappa_": pr.kappa}
