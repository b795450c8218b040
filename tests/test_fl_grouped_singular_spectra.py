"""The Hessian spectra of the subspace solver (reduced_spectrum, reduced_top) for several W groups (Σ(C) =
Σ_g 𝔅_g C 𝔅_gᵀ + Σ₀) and for singular input kernels (whitened coordinates on the span of the inputs, n' = dim E)
against the dense Hessian of LinearAction (eigenvalues of spectrum.sector_hessian) at small n: the Hessian-vector
product, the top eigenvalue (inertia counts), the number of positive eigenvalues (Schur certificate), at the saddle
point and at an unstable point far from it."""
import numpy as np
import pytest

import symfield as sf
from symfield.theory.feature_learning import reduced, reduced_spectrum as rs, reduced_top as rt
from symfield.theory.feature_learning.action import LinearAction
from symfield.theory.feature_learning.problem import problem
from symfield.theory.feature_learning.result import Branch
from symfield.theory.feature_learning.spectrum import sector_hessian

from test_fl_reduced import sequential

GROUPS = {"two-runs": [[1, 2], [3, 4]], "alternating": [[1, 3], [2, 4]], "fresh-per-step": [[1], [2], [3], [4]]}
CASES = list(GROUPS) + ["dependent", "D<P"]


def _problem(case, T=5, P=3):
    net, X, Y, sup = sequential(T, P)
    if case in GROUPS:
        net = sf.NetworkSpec(T=T, phi="linear", bias="none", scaling="mean_field",
                             share={"W": GROUPS[case], "U": "shared", "v": "shared"})
    elif case == "dependent":  # the third pattern the sum of the first two
        X = X.copy()
        X[2] = (X[0] + X[1]) / np.sqrt(2)
    else:  # D = 2 < P = 4
        net, X, Y, sup = sequential(T, 4)
        X = X[:, :2]
    return problem(net, X, Y, sup, 0.5)


def _points(red):
    """The saddle point (solved in the subspace) and a point C₀ + Φ N Φᵀ far from it (unstable)."""
    sub, N, _ = red.solve(1.0, None, None, 1e-11)
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.standard_normal((sub.R, sub.R)))[0]
    return sub, [N, Q @ np.diag(rng.uniform(-0.9, 10.0, sub.R)) @ Q.T]


@pytest.mark.parametrize("case", CASES)
def test_spectra_equal_the_dense_hessian(case):
    pr = _problem(case)
    red = reduced.Reduction(pr)
    assert (len(red.gams) > 1) == (case in GROUPS) and (red.E is not None) == (case not in GROUPS)
    lin = LinearAction(pr)
    sub, Ns = _points(red)
    signs = []
    for N in Ns:
        C = red.dense(sub, N)
        H = rs.WhitenedHessian(red, sub, N, 1.0)
        D = np.random.default_rng(1).standard_normal((red.m, red.m))
        D = D + D.T
        ref = red.L0.T @ lin.hessp(C, red.L0 @ D @ red.L0.T) @ red.L0
        assert np.abs(H.apply(D) - ref).max() <= 1e-12 * np.abs(ref).max()
        lam = np.linalg.eigvalsh(sector_hessian(lin, C, None)[0])  # the dense Hessian
        cert = rs.certificate(red, sub, N, 1.0)
        assert cert is not None and cert.positive(1e-10) == np.sum(lam > 1e-10)  # the inertia
        top = rt.top_eigenvalue(red, sub, N, 1.0, cert=cert)  # inertia counts, no Lanczos
        assert top == pytest.approx(lam[-1], abs=1e-8)
        br = Branch("point", C, 0.0, lin, reduced=reduced.ReducedPoint(red, sub, N, 1.0))
        assert br.stable == (lam[-1] <= 1e-9) and br._certificate is not None  # from the certificate
        signs.append(br.stable)
    assert signs == [True, False]  # the saddle point is a maximum, the far point unstable


@pytest.mark.parametrize("case", ["two-runs", "dependent"])
def test_certificate_equals_the_dense_schur_complement_of_the_coupled_block(case):
    """The closed-form X block (−½KᵀK with K X = X − Σ_g a_g X 𝔅̃_gᵀ) and Q (time-chain form for several groups)
    against the Schur complement of the coupled block built from its Hessian-vector products."""
    pr = _problem(case, P=5)  # P = 5: the reducing subspace is not the whole span (k = 10 of 25, 15 of 20)
    red = reduced.Reduction(pr)
    sub, (N, _) = _points(red)
    H = rs.WhitenedHessian(red, sub, N, 1.0)
    blk = rs.CoupledBlock(H, rs.reducing_basis(H, pr.n))
    Hd = np.array([blk.apply(e) for e in np.eye(blk.dim)]).T
    Hd = 0.5 * (Hd + Hd.T)
    m = blk.k * (blk.k + 1) // 2
    ref = Hd[:m, :m] - Hd[:m, m:] @ np.linalg.solve(Hd[m:, m:], Hd[m:, :m])
    cert = rs.SchurCertificate(blk)
    assert np.abs(cert.schur - ref).max() <= 1e-11 * np.abs(ref).max()
    assert blk.k < red.m  # 𝒲⊥ is not empty: the X block and Q are there
    if red.single:  # the propagated Q of one group and the time-chain form agree (Q enters beside A(C)/σ_v⁴)
        chain = rs.SchurCertificate(blk, bs=rs.chain_factors(H))
        assert np.abs(chain.Q - cert.Q).max() <= 1e-11 * max(np.abs(cert.Q).max(), np.abs(cert.A).max())
