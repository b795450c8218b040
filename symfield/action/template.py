"""Scalar templates of the unified action S[C, C~] (theory Sec. 3.3, 8.1).

In unordered pair variables u = {s, s'} with s = (a, α), s' = (b, β),

    S = -1/2 Σ_u C~_u (C_u - Σdet_u) + W(C~ | C),
    W = ln < exp( g²/2 Σ_u M_ab C~_u φ(z_{s-1}) φ(z_{s'-1}) ) >_{z ~ N(0, C)},

where M_ab is the weight-sharing mask (RNN 1, DNN δ_ab).  The saddle point needs W only
to first order in C~ (the cumulant expansion; C~* = 0), so the template of one pair is

    S_u = -1/2 C~_u (C_u - Σdet_u) + 1/2 M_ab g² C~_u E(c11, c22, c12),

with E = <φ(z1) φ(z2)> under the 2x2 covariance [[c11, c12], [c12, c22]] of the previous
sites (c11 = C_{s-1,s-1}, c22 = C_{s'-1,s'-1}, c12 = C_{s-1,s'-1}).  The template does not
grow with P or T: the compiled map is applied to every site pair.

To derive the conjugate equation the template also holds one *successor* pair w whose
previous-site covariance is C_u itself: S_w = -1/2 C~_w (C_w - Σdet_w) + 1/2 M_w g² C~_w E(.., .., C_u).
"""
from __future__ import annotations

import sympy as sp

# symbols of the template (plain names so that generated code is readable)
C_u, Ct_u = sp.symbols("C_u Ct_u", real=True)
C_w, Ct_w = sp.symbols("C_w Ct_w", real=True)
c11, c22, c12 = sp.symbols("c11 c22 c12", real=True)
d1, d2 = sp.symbols("d1 d2", positive=True)  # variances of the successor's previous sites
sdet, sdet_w = sp.symbols("sdet sdet_w", real=True)
m, m_w = sp.symbols("m m_w", nonnegative=True)
g2 = sp.Symbol("g2", nonnegative=True)
E = sp.Function("E")  # E(c11, c22, c12) = <φ(z1) φ(z2)>
E_val = sp.Symbol("E_val", real=True)  # a precomputed value of E (phi without closed form)


def pair_term(C, Ct, sd, mask, a11, a22, a12):
    """-1/2 C~ (C - Σdet) + 1/2 M g² C~ E(a11, a22, a12): one pair's share of S to first order in C~."""
    return -sp.Rational(1, 2) * Ct * (C - sd) + sp.Rational(1, 2) * mask * g2 * Ct * E(a11, a22, a12)


def pair_template() -> sp.Expr:
    """The template S_u + S_w (pair u and one successor w that reads C_u as its c12)."""
    return pair_term(C_u, Ct_u, sdet, m, c11, c22, c12) + pair_term(C_w, Ct_w, sdet_w, m_w, d1, d2, C_u)


# ---------------------------------------------------------------- one loop (theory Sec. 8)
Ct_v = sp.Symbol("Ct_v", real=True)
m_v, g2_v = sp.symbols("m_v g2_v", nonnegative=True)
Q = sp.Function("Q")  # Q(u, v) = Cov(Φ_u, Φ_v), a four-point function of the previous sites
u_, v_ = sp.symbols("u v")
ARGS = (c11, c22, c12)


def second_cumulant_term() -> sp.Expr:
    """Second order of the cumulant expansion of W for two pairs u, v (ordered sum: u,v and v,u):
    1/2 (g²/2)² M_u M_v C~_u C~_v Cov(Φ_u, Φ_v) counted twice = 1/4 g2_u g2_v m m' C~_u C~_v Q."""
    half_cov = sp.Rational(1, 2) * (g2 / 2) * (g2_v / 2) * m * m_v * Ct_u * Ct_v * Q(u_, v_)
    return 2 * half_cov


# ---------------------------------------------------------------- skip coefficients (theory.md Sec. 1)
D_u, D_w = sp.symbols("D_u D_w", real=True)
l1, l2, l12 = sp.symbols("l1 l2 l12", real=True)  # ∂c_i/∂D_u of the successor (lift.py)
c12_w = sp.Symbol("c12_w", real=True)  # the successor's c12 without its D_u part


# ---------------------------------------------------------------- LaTeX: the notation of docs/theory.md
#: how each template symbol is typeset (C̃ for the conjugate, g² for g2, Σ^det for sdet, M_u for the mask)
LATEX_NAMES = {C_u: "C_u", Ct_u: r"\tilde C_u", C_w: "C_w", Ct_w: r"\tilde C_w", Ct_v: r"\tilde C_v",
               c11: "c_{11}", c22: "c_{22}", c12: "c_{12}", d1: "d_1", d2: "d_2", sdet: r"\Sigma^{\rm det}_u",
               sdet_w: r"\Sigma^{\rm det}_w", m: "M_u", m_w: "M_w", m_v: "M_v", g2: "g^2", g2_v: "g_v^2",
               E_val: "E", D_u: "D_u", D_w: "D_w", l1: "l_1", l2: "l_2", l12: "l_{12}", c12_w: "c_{12,w}"}


def latex(expr) -> str:
    """``expr`` (an expression or equation of template symbols) in LaTeX, in the notation of docs/theory.md."""
    return sp.latex(expr, symbol_names=LATEX_NAMES)


def skip_pair_template() -> sp.Expr:
    """The template for the driving covariance D (skip a_t != 0, C = 𝒜 D 𝒜ᵀ): pair u of D reads the
    previous-site entries (c11, c22, c12) of C; the successor w reads entries of C that are linear in
    D_u, d_i + l_i D_u with the lift coefficients l_i = ∂C/∂D_u (:class:`symfield.theory.lift.Lift`)."""
    return (pair_term(D_u, Ct_u, sdet, m, c11, c22, c12)
            + pair_term(D_w, Ct_w, sdet_w, m_w, d1 + l1 * D_u, d2 + l2 * D_u, c12_w + l12 * D_u))
