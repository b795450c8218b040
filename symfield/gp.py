"""Gaussian-process regression with any kernel (theory Sec. 4.4 and 7).

    μ* = K*D (K_DD + σ_ε² I)^{-1} Y_D,     Σ* = K** - K*D (K_DD + σ_ε² I)^{-1} K_D*       (:func:`gp_predict`)
    log p(Y | X) = -½ Yᵀ(K + σ_ε² I)^{-1} Y - ½ log det(K + σ_ε² I) - (n/2) log 2π   (:func:`gp_log_marginal_likelihood`)

The network's output kernel with readouts at 0-based times a, b (φ readout; :func:`output_kernel`):

    K_(aα),(bβ) = M^out_ab [σ_out² + g_out² <φ(z_aα) φ(z_bβ)>_{z ~ N(0, C̄)}]     (readout='h': g_out² C̄_(aα),(bβ))

with the readout mask M^out_ab = [v_a and v_b are one readout vector] (the readout bias is grouped as v).
``readout`` selects the output: ``"last"`` (time T-1), a 0-based time t, ``"pooled"`` (f = mean over
all T times of f_t, so K = (1/T²) Σ_ab K_ab) or a list of times (several outputs, stacked: the kernel
is (n·P, n·P), index k·P + α for time times[k] and pattern α).

Only the kernel blocks a readout needs are computed (:func:`needed_blocks`: the dependency cone of
the readout blocks under C̄_ab <- C̄_(a-1)(b-1), read from the spec's masks), shell by shell, holding
two shells at a time (a single readout of a network without skip: two (P, P) blocks).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from .api import check_array, check_mean_field, check_real, check_spec, legacy_positional, renamed
from .errors import NotPositiveDefinite
from .resources import check_memory
from .spec import NetworkSpec, SpecError, input_gram


@dataclass(frozen=True)
class GPPrediction:
    mean: np.ndarray  #: predictive mean, shape (P_test,) or (P_test, outputs)
    var: np.ndarray   #: predictive variance of the network output (noise added if include_noise)
    spec: NetworkSpec | None = None  #: the network (None for a bare :func:`gp_predict`)
    C: np.ndarray | None = None      #: the output kernel K^GP on [X_train; X_test], (P_train + P_test)²
    cov: np.ndarray | None = None    #: full predictive covariance (``return_cov=True``), (P_test, P_test)
    readout: object = None           #: the readout ('last', a time, 'pooled' or a tuple of times)

    def to_xarray(self):
        """Labelled Dataset (dims mu, nu, t; spec in attrs): :func:`symfield.labelled.gp_prediction`."""
        from .labelled import gp_prediction
        return gp_prediction(self.spec, self.mean, self.var, self.cov, self.C, self.readout)


def _factor(K_train, noise):
    n = K_train.shape[0]
    try:
        return cho_factor(K_train + noise * np.eye(n), lower=True)
    except np.linalg.LinAlgError as err:
        raise NotPositiveDefinite("K_train + noise*I is not positive definite; add noise") from err


def _check_train(K_train, Y):
    K_train, Y = check_array("K_train", K_train), check_array("Y", Y)
    if K_train.ndim != 2 or Y.ndim not in (1, 2):
        raise SpecError(f"K_train must be 2-D and Y 1-D or 2-D, got shapes {K_train.shape}, {Y.shape}")
    n = K_train.shape[0]
    if K_train.shape != (n, n) or not np.allclose(K_train, K_train.T, rtol=1e-10, atol=1e-12):
        raise SpecError(f"K_train must be a symmetric square matrix, got shape {K_train.shape}")
    if Y.shape[0] != n:
        raise SpecError(f"Y must have {n} rows (one per training point), got shape {Y.shape}")
    return K_train, Y


def gp_predict(K_train, K_cross, K_test_diag, Y, noise: float = 0.0, include_noise: bool = False,
               K_test=None) -> GPPrediction:
    """GP posterior mean and variance; ``K_cross`` is (P_test, P_train), ``K_test_diag`` (P_test,).
    With ``K_test`` (P_test, P_test) also the full predictive covariance ``.cov``."""
    K_train, Y = _check_train(K_train, Y)
    K_cross, K_test_diag = check_array("K_cross", K_cross), check_array("K_test_diag", K_test_diag)
    noise = check_real("noise", noise, low=0)
    n = K_train.shape[0]
    if K_cross.ndim != 2 or K_cross.shape[1] != n or K_test_diag.shape != (K_cross.shape[0],):
        raise SpecError(f"K_cross must be (P_test, {n}) and K_test_diag (P_test,), got {K_cross.shape}, "
                         f"{K_test_diag.shape}")
    factor = _factor(K_train, noise)
    mean = K_cross @ cho_solve(factor, Y)
    solved = cho_solve(factor, K_cross.T)
    var = K_test_diag - np.einsum("ij,ji->i", K_cross, solved)
    cov = None
    if K_test is not None:
        K_test = check_array("K_test", K_test)
        if K_test.shape != (K_cross.shape[0],) * 2:
            raise SpecError(f"K_test must be ({K_cross.shape[0]}, {K_cross.shape[0]}), got {K_test.shape}")
        cov = K_test - K_cross @ solved
        if include_noise:
            cov = cov + noise * np.eye(cov.shape[0])
    return GPPrediction(mean, var + noise if include_noise else var, cov=cov)


def gp_log_marginal_likelihood(K_train, Y, noise: float = 0.0) -> float:
    """log N(Y; 0, K + σ_ε² I), summed over the columns of a 2-D Y (independent outputs)."""
    K_train, Y = _check_train(K_train, Y)
    noise = check_real("noise", noise, low=0)
    factor = _factor(K_train, noise)
    Y2 = Y.reshape(Y.shape[0], -1)
    alpha = cho_solve(factor, Y2)
    n, k = Y2.shape
    logdet = 2.0 * np.log(np.diag(factor[0])).sum()
    return float(-0.5 * np.einsum("ik,ik->", Y2, alpha) - 0.5 * k * logdet - 0.5 * n * k * np.log(2 * np.pi))


# ------------------------------------------------------ derivatives of <φφ> (for kernel gradients)
_DERIV_DRIVER = """
@njit(cache=True, error_model="numpy", parallel=True)
def block_derivatives(d1, d2, c12, out):
    \"\"\"out[k, i, j] = ∂<φφ>/∂(c11, c22, c12)[k] at (d1[i], d2[j], c12[i, j]).\"\"\"
    for i in prange(c12.shape[0]):
        for j in range(c12.shape[1]):
            out[0, i, j] = e11(d1[i], d2[j], c12[i, j])
            out[1, i, j] = e22(d1[i], d2[j], c12[i, j])
            out[2, i, j] = e12(d1[i], d2[j], c12[i, j])
"""


def _generic_branch(expr):
    """The closed form away from ρ = ±1: the last branch of every Piecewise, Min/Max clamps dropped."""
    import sympy as sp
    expr = expr.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[-1][0])
    return expr.replace(lambda e: isinstance(e, (sp.Min, sp.Max)), lambda e: [a for a in e.args if a.free_symbols][0])


def _clamped(expr):
    """Rounding guards at ρ = ±1: √max(·, 0) and acos(clamp(·, -1, 1))."""
    import sympy as sp
    expr = expr.replace(lambda e: e.is_Pow and e.exp in (sp.S.Half, -sp.S.Half) and not e.base.is_number,
                        lambda e: sp.Pow(sp.Max(0, e.base), e.exp))
    return expr.replace(lambda e: isinstance(e, sp.acos), lambda e: sp.acos(sp.Min(1, sp.Max(-1, e.args[0]))))


def derivative_source(phi) -> str:
    """Generated module of ∂<φφ>/∂c11, ∂/∂c22, ∂/∂c12 for a closed-form φ: SymPy derivatives of the
    closed form (generic branch, simplified, clamped at ρ = ±1), one compiled block driver."""
    import sympy as sp

    from . import codegen
    from .gauss.price import c11, c12, c22

    def make():
        E = _generic_branch(phi.pair(c11, c22, c12))
        helpers: set = set()
        parts = []
        for name, var in (("e11", c11), ("e22", c22), ("e12", c12)):
            d = _clamped(sp.simplify(sp.diff(E, var)))
            parts.append((name, codegen.scalar_source(name, (c11, c22, c12), d, inline=True, helpers=helpers)))
        return codegen.module_text("symfield.gp", "derivatives of <phi phi> for kernel gradients",
                                   [("helpers", codegen.helper_source(helpers)), *parts, ("driver", _DERIV_DRIVER)],
                                   [f"phi(x) = {phi.expr}", f"<phi phi> = {sp.sstr(E)}"])
    return codegen.derived_source("gp_dpair", phi.key, make)


_DERIV_MODULES: dict = {}


def expect_derivatives(phi, d1, d2, c12, tol: float | None = None) -> np.ndarray:
    """(3, P1, P2): ∂<φ(u_i)φ(v_j)>/∂(Σ11, Σ22, Σ12) at Var u_i = d1[i], Var v_j = d2[j], Cov = c12[i, j].

    Closed forms: compiled SymPy derivatives (:func:`derivative_source`); otherwise Price's theorem,
    ∂/∂Σ11 = ½<φ''φ>, ∂/∂Σ22 = ½<φφ''>, ∂/∂Σ12 = <φ'φ'> by the self-choosing dual kernel (Mehler sum or
    graded panels) at accuracy ``tol`` (default: the dual kernel's)."""
    from .errors import AccuracyError, NotSupportedError
    d1, d2 = np.ascontiguousarray(d1, dtype=float), np.ascontiguousarray(d2, dtype=float)
    c12 = np.ascontiguousarray(c12, dtype=float)
    if phi.has_closed_form:
        if phi.key not in _DERIV_MODULES:
            from . import codegen
            _DERIV_MODULES[phi.key] = codegen.load_module(derivative_source(phi), f"dpair_{phi.key}")
        out = np.empty((3, *c12.shape))
        _DERIV_MODULES[phi.key].block_derivatives(d1, d2, c12, out)
    else:
        from .gauss.dual import dual_kernel
        dual = dual_kernel(phi) if tol is None else dual_kernel(phi, tol=tol)
        try:
            out = np.stack([0.5 * dual.pair_block(d1, d2, c12, orders=(2, 0)),
                            0.5 * dual.pair_block(d1, d2, c12, orders=(0, 2)),
                            dual.pair_block(d1, d2, c12, orders=(1, 1))])
        except AccuracyError:
            raise
        except ValueError as err:
            raise NotSupportedError(f"kernel gradients of phi {phi.name!r}: {err}") from None
    if not np.all(np.isfinite(out)):
        from .errors import NonFiniteKernel
        raise NonFiniteKernel(f"non-finite derivative of <phi phi> for phi={phi.name}")
    return out


# ------------------------------------------------------------------ readouts
def readout_times(spec: NetworkSpec, readout) -> tuple[tuple[int, ...], str]:
    """(0-based readout times, kind) of ``readout``: kind 'single' ('last' or an int), 'pooled' or
    'several' (a list of distinct times, stacked outputs)."""
    T = spec.T
    if isinstance(readout, str):
        if readout == "last":
            return (T - 1,), "single"
        if readout == "pooled":
            return tuple(range(T)), "pooled"
        raise SpecError(f"readout must be 'last', 'pooled', a 0-based time or a list of times, got {readout!r}")
    if isinstance(readout, (int, np.integer)) and not isinstance(readout, bool):
        if not 0 <= readout < T:
            raise SpecError(f"readout time must lie in 0..{T - 1} (0-based), got {readout!r}")
        return (int(readout),), "single"
    try:
        times = list(readout)
    except TypeError:
        raise SpecError(f"readout must be 'last', 'pooled', a 0-based time or a list of times, "
                        f"got {readout!r}") from None
    if not times or any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < T
                        for t in times) or len(set(times)) != len(times):
        raise SpecError(f"readout: a list of distinct 0-based times in 0..{T - 1}, got {readout!r}")
    return tuple(int(t) for t in times), "several"


def needed_blocks(spec: NetworkSpec, times) -> np.ndarray:
    """(T, T) boolean, upper triangle: the kernel blocks C̄_ab (a <= b) that readouts at ``times`` need.

    The readout pairs (a, b) with M^out_ab != 0 and their equal-time blocks, closed under the recursion's
    reads: block (a, b) with branch mask M_ab r_a r_b != 0 reads C̄_(a-1)(b-1) and the variances of
    C̄_(a-1)(a-1), C̄_(b-1)(b-1).  Blocks outside the spec's support are zero and never needed."""
    T = spec.T
    mask, support, out_mask = spec.branch_mask(), spec.block_support(), spec.readout_mask()
    need = np.zeros((T, T), bool)
    stack = [(min(a, b), max(a, b)) for a in times for b in times if out_mask[a, b] != 0]
    stack += [(a, a) for a in times]
    while stack:
        a, b = stack.pop()
        if need[a, b] or not support[a, b]:
            continue
        need[a, b] = True
        if a >= 1 and mask[a, b] != 0:
            stack += [(a - 1, b - 1), (a - 1, a - 1), (b - 1, b - 1)]
    return need


def _readout_weights(times, kind):
    """Weights w_k of the readout times in the output (pooled: 1/n; otherwise one output per time)."""
    return np.full(len(times), 1.0 / len(times)) if kind == "pooled" else np.ones(len(times))


#: hyperparameters of the kernel gradient, in scikit-learn's (alphabetical) order
HYPERPARAMETERS = ("g", "g_in", "sigma_b2")


def _expect(km, d1, d2, c12, symmetric, tol):
    """<φφ> on a block: the kernel map's, or for φ without closed form the dual kernel at accuracy ``tol``."""
    from .errors import NonFiniteKernel
    try:
        if tol is None or km.closed:
            return km.expect(d1, d2, c12, symmetric=symmetric)
        from .gauss.dual import dual_kernel
        return dual_kernel(km.phi, tol=tol).pair_block(d1, d2, c12, symmetric=symmetric)
    except FloatingPointError as err:
        raise NonFiniteKernel(f"non-finite <phi phi> for phi={km.phi.name}: {err}") from None


def _readout_block(spec, km, var, C, a, b, grad=None, tol=None):
    """K_ab of the readout (without M^out): σ_out² + g_out² <φ(z_a) φ(z_b)> (readout 'h': g_out² C̄_ab).
    ``grad`` = (dvar, dC): also dK_ab/dlog θ (3, P, P) from the tangents of the variances and of C̄_ab."""
    go2 = spec.g_out ** 2
    if spec.readout == "h":
        K = spec.sigma_out2 + go2 * C
        return K if grad is None else (K, go2 * grad[1])
    K = _expect(km, var[a], var[b], C, a == b, tol)
    K *= go2
    K += spec.sigma_out2
    if grad is None:
        return K
    dvar, dC = grad
    D = expect_derivatives(spec.phi_fn, var[a], var[b], C, tol)
    return K, go2 * (D[0] * dvar[a][:, :, None] + D[1] * dvar[b][:, None, :] + D[2] * dC)


def _kernel_bytes(spec, need, P, n_out, grad=False):
    per_shell = need.sum(axis=0)
    held = max((per_shell[i] + per_shell[i + 1] for i in range(spec.T - 1)), default=per_shell[0])
    per = 4 if grad else 1   # a block and its three tangents
    return 8.0 * P * P * (per * (held + 4) + (3 if grad else 0) + per * n_out * n_out)


def _block_with_tangent(spec, km, X, a, b, var, dvar, C_prev, dC_prev, mask, g2, tol=None):
    """C̄_ab = Σdet_ab + m g² E and its tangent dC̄_ab/dlog θ for θ = (g, g_in, σ_b²):

        dC̄_ab = ∂Σdet_ab + m [2g² E δ_θg + g² (E_11 dv_(a-1) + E_22 dv_(b-1) + E_12 dC̄_(a-1)(b-1))]

    (E and its derivatives E_11, E_22, E_12 at the variances v_(a-1), v_(b-1) and C̄_(a-1)(b-1); the
    tangent is None if ``dvar`` is; ``tol``: accuracy of E and its derivatives for φ without closed form)."""
    P = X.shape[0]
    bias, w_in = spec.sigma_det_parts(a, b)
    dC = None if dvar is None else np.zeros((3, P, P))
    if w_in:
        gram = input_gram(X, a, b)
        if dC is not None:
            dC[1] = 2.0 * w_in * gram
        sdet = bias + w_in * gram
    else:
        sdet = np.full((P, P), bias)
    if dC is not None:
        dC[2] = bias
    if a < 1 or mask[a, b] == 0:
        return sdet, dC
    m, gg = mask[a, b], g2[b - 1]
    E = _expect(km, var[a - 1], var[b - 1], C_prev, a == b, tol)
    if dC is not None:
        D = expect_derivatives(spec.phi_fn, var[a - 1], var[b - 1], C_prev, tol)
        dC += m * gg * (D[0] * dvar[a - 1][:, :, None] + D[1] * dvar[b - 1][:, None, :] + D[2] * dC_prev)
        dC[0] += 2.0 * m * gg * E
    return sdet + m * gg * E, dC


def _skip_with_tangent(spec, km, X, grad=True, tol=None):
    """Variances (T, P), their tangents (T, 3, P) and the dense C̄ with its tangent, (T, T, 4, P, P) (index 0
    the value, 1..3 dC̄/dlog θ; without ``grad`` only the value, (T, T, 1, P, P), and no variance tangents),
    of a network with skip coefficients: the skip map :func:`~symfield.theory.mean_field.skip_recursion`
    is linear in the driving covariance D, so it carries the tangent dD of :func:`_block_with_tangent` as it
    carries D (the skip coefficients are not hyperparameters)."""
    from .theory.mean_field import skip_recursion
    T, P, n = spec.T, X.shape[0], 4 if grad else 1
    check_memory(8.0 * n * (T * P) ** 2 + 8.0 * 12 * P * P, f"readout kernel with skip (dense (T, T, {n}, P, P), "
                 f"T = {T}, P = {P})", "the number of inputs X (P)")
    mask, g2 = spec.branch_mask(), spec.g_values() ** 2
    var, dvar = np.zeros((T, P)), (np.zeros((T, 3, P)) if grad else None)

    def drive(t, hi, C):
        prev = (C[t - 1, hi - 1, 0], C[t - 1, hi - 1, 1:] if grad else None) if t >= 1 else (None, None)
        D, dD = _block_with_tangent(spec, km, X, t, hi, var, dvar, *prev, mask, g2, tol)
        return np.concatenate([np.broadcast_to(D, (1, P, P))] + ([dD] if grad else []))

    def on_shell(hi, C):
        var[hi] = np.diag(C[hi, hi, 0])
        if grad:
            dvar[hi] = np.diagonal(C[hi, hi, 1:], axis1=1, axis2=2)

    C = skip_recursion(spec.leak_values(), drive, T, (n, P, P), on_shell)
    if not np.all(np.isfinite(var)):
        from .errors import NonFiniteKernel
        raise NonFiniteKernel("non-finite kernel (the skip recursion overflowed)")
    return var, dvar, C


def readout_kernel(spec: NetworkSpec, X, readout="last", grad: bool = False, tol: float | None = None):
    """K^GP of ``readout`` on checked or raw inputs X: (P, P), or (n·P, n·P) for a list of n times.

    ``grad=True``: also dK/dlog θ of shape (.., .., 3) for θ = :data:`HYPERPARAMETERS` (g scales every
    g_k, σ_b² every bias variance), by the tangent recursion of :func:`_block_with_tangent` (with skip
    coefficients: carried through the skip map, :func:`_skip_with_tangent`).  ``tol``: accuracy of <φφ>
    and its derivatives for φ without closed form, relative to their Cauchy–Schwarz scale (default: the
    dual kernel's :data:`symfield.gauss.dual.TOL`); the values then come from the same path with or
    without ``grad``."""
    from .theory.kernel_map import kernel_map
    from .theory.mean_field import _sigma_det
    times, kind = readout_times(spec, readout)
    X = spec.check_inputs(X)
    P, T = X.shape[0], spec.T
    km = kernel_map(spec.phi_fn)
    out_mask = spec.readout_mask()
    n_out = len(times) if kind == "several" else 1
    w = _readout_weights(times, kind)
    pos = {t: k for k, t in enumerate(times)}
    K = np.zeros((n_out, P, n_out, P))
    dK = np.zeros((3, n_out, P, n_out, P)) if grad else None

    def add(a, b, Kab, dKab=None):  # readout block (a, b), a <= b, both readout times
        ka, kb = pos[a], pos[b]
        if kind == "several":
            K[ka, :, kb, :], K[kb, :, ka, :] = Kab, Kab.T
            if grad:
                dK[:, ka, :, kb, :], dK[:, kb, :, ka, :] = dKab, dKab.transpose(0, 2, 1)
        else:
            Kab *= w[ka] * w[kb]
            K[0, :, 0, :] += Kab
            if a != b:
                K[0, :, 0, :] += Kab.T
            if grad:
                dKab *= w[ka] * w[kb]
                dK[:, 0, :, 0, :] += dKab if a == b else dKab + dKab.transpose(0, 2, 1)

    def result():
        n = n_out * P
        return K.reshape(n, n) if not grad else (K.reshape(n, n), np.moveaxis(dK.reshape(3, n, n), 0, -1))

    pairs = [(a, b) for a in times for b in times if a <= b and out_mask[a, b] != 0]
    if spec.has_skip:  # C = A D Aᵀ couples all earlier times: the dense mean field
        var, dvar, C = _skip_with_tangent(spec, km, X, grad, tol)
        for a, b in pairs:
            if grad:
                add(a, b, *_readout_block(spec, km, var, C[a, b, 0], a, b, (dvar, C[a, b, 1:]), tol))
            else:
                add(a, b, _readout_block(spec, km, var, C[a, b, 0], a, b, tol=tol))
        return result()
    need = needed_blocks(spec, times)
    check_memory(_kernel_bytes(spec, need, P, n_out, grad), f"readout kernel (T = {T}, P = {P}, "
                 f"readout={readout!r})", "the number of inputs X (P)")
    mask, g2 = spec.branch_mask(), spec.g_values() ** 2
    var, dvar = np.zeros((T, P)), (np.zeros((T, 3, P)) if grad else None)
    own_dual = tol is not None and not km.closed   # E from the dual kernel at tol, not the kernel map's
    prev: dict = {}
    zero: list = []

    def missing():  # a block outside the support (zero), with a zero tangent; allocated on first use
        if not zero:
            zero.append(np.zeros((P, P)))
        return zero[0], (np.zeros((3, P, P)) if grad else None)

    for hi in range(T):
        cur = {}
        for a in range(hi + 1):
            if not need[a, hi]:
                continue
            reads = a >= 1 and mask[a, hi] != 0   # the block reads C̄_(a-1)(hi-1)
            C_prev = (prev[(a - 1, hi - 1)] if (a - 1, hi - 1) in prev else missing()) if reads else (None, None)
            if grad or own_dual:
                cur[(a, hi)] = _block_with_tangent(spec, km, X, a, hi, var, dvar, *C_prev, mask, g2, tol)
                continue
            sdet = _sigma_det(spec, X, a, hi)
            if reads:
                C = km.block(var[a - 1], var[hi - 1], C_prev[0], sdet, mask[a, hi], g2[hi - 1], symmetric=(a == hi))
            else:
                C = np.full((P, P), sdet) if np.ndim(sdet) == 0 else sdet
            cur[(a, hi)] = (C, None)
        if (hi, hi) in cur:
            C, dC = cur[(hi, hi)]
            var[hi] = np.diag(C)
            if grad:
                dvar[hi] = np.diagonal(dC, axis1=1, axis2=2)
        for a, b in pairs:
            if b == hi:
                C, dC = cur[(a, b)] if (a, b) in cur else missing()
                if grad:
                    add(a, b, *_readout_block(spec, km, var, C, a, b, (dvar, dC), tol))
                else:
                    add(a, b, _readout_block(spec, km, var, C, a, b, tol=tol))
        prev = cur
    return result()


def _readout_time(spec: NetworkSpec, time, readout_time, where: str) -> int:
    """0-based readout time from ``time`` (0-based) or the deprecated ``readout_time`` (1-based)."""
    if readout_time is None:
        t = spec.T - 1 if time is None else time
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < spec.T:
            raise SpecError(f"time must be an integer in 0..{spec.T - 1} (0-based), got {time!r}")
        return int(t)
    t, _ = renamed(time, readout_time, "readout_time", "time", where=where)
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= spec.T:
        raise SpecError(f"readout_time must be an integer in 1..{spec.T} (1-based; use time= 0-based), "
                        f"got {readout_time!r}")
    return int(t) - 1


def _resolve_readout(spec, time, readout_time, readout, where):
    """The readout from ``readout`` or (single time) ``time`` / the deprecated ``readout_time``."""
    if readout is None:
        return _readout_time(spec, time, readout_time, where)
    if time is not None or readout_time is not None:
        raise SpecError(f"{where}: give readout= or time=, not both")
    readout_times(spec, readout)
    return readout


@legacy_positional("readout_time", "mf")
def output_kernel(spec: NetworkSpec, X, *, time: int | None = None, mf=None, readout_time: int | None = None,
                  readout=None) -> np.ndarray:
    """K^GP of the readout: ``readout`` 'last' (default), a 0-based time, 'pooled' or a list of times
    (stacked (n·P, n·P)); ``time`` is the single-time form (``readout_time``: deprecated 1-based).
    ``mf``: a MeanField of the same spec and X to read the blocks from."""
    from .theory.kernel_map import kernel_map
    check_spec(spec)
    readout = _resolve_readout(spec, time, readout_time, readout, "output_kernel")
    if mf is None:
        return readout_kernel(spec, X, readout)
    mf = check_mean_field(mf, spec, X)
    times, kind = readout_times(spec, readout)
    km, P, out_mask = kernel_map(spec.phi_fn), mf.P, spec.readout_mask()
    var = mf.variances
    blocks = [[out_mask[a, b] * _readout_block(spec, km, var, mf.block(a, b), a, b) for b in times] for a in times]
    K = np.block(blocks)
    if kind != "pooled":
        return K
    return K.reshape(len(times), P, len(times), P).mean(axis=(0, 2))


def _stack_targets(Y, n_out, P):
    """Stacked targets (time-major) and the supervised rows: Y (P, n) for n readout times, NaN = unsupervised."""
    Y = check_array("Y_train", Y, finite=False)
    if Y.shape != (P, n_out):
        raise SpecError(f"Y_train must have shape (P_train, {n_out}) for {n_out} readout times, got {Y.shape}")
    flat = Y.T.ravel()
    keep = ~np.isnan(flat)
    if not np.all(np.isfinite(flat[keep])):
        raise SpecError("Y_train contains inf")
    if not keep.any():
        raise SpecError("Y_train has no supervised entry (all NaN)")
    return flat[keep], keep


@legacy_positional("noise", "readout_time", "include_noise")
def predict(spec: NetworkSpec, X_train, Y_train, X_test, *, noise: float = 0.0, time: int | None = None,
            include_noise: bool = False, readout_time: int | None = None, readout=None,
            return_cov: bool = False) -> GPPrediction:
    """Bayesian prediction of the wide network ``spec`` trained on (X_train, Y_train), read out at
    ``readout`` ('last', a 0-based time, 'pooled'; a list of n times: Y_train (P_train, n) with NaN for
    unsupervised entries, mean and var (P_test, n), cov (n·P_test)² time-major) or the single 0-based
    ``time`` (``readout_time``: deprecated 1-based).  ``.C``: the output kernel on [X_train; X_test]
    (stacked per time for a list)."""
    check_spec(spec)
    readout = _resolve_readout(spec, time, readout_time, readout, "predict")
    times, kind = readout_times(spec, readout)
    X_train = check_array("X_train", X_train)
    X_test = check_array("X_test", X_test)
    if X_train.ndim < 2 or X_train.shape[1:] != X_test.shape[1:]:
        raise SpecError(f"X_train and X_test must agree beyond the pattern axis, got {X_train.shape}, {X_test.shape}")
    n, m = X_train.shape[0], X_test.shape[0]
    if kind != "several":
        Y_train = check_array("Y_train", Y_train)
        if n < 1 or Y_train.ndim not in (1, 2) or Y_train.shape[0] != n:
            raise SpecError(f"X_train needs at least one pattern and Y_train one row per pattern of X_train, "
                            f"got shapes {X_train.shape}, {Y_train.shape}")
    K = readout_kernel(spec, np.concatenate([X_train, X_test]), readout)
    n_out = len(times) if kind == "several" else 1
    idx = np.arange(n_out * (n + m)).reshape(n_out, n + m)
    tr, te = idx[:, :n].ravel(), idx[:, n:].ravel()
    if kind == "several":
        y, keep = _stack_targets(Y_train, n_out, n)
        tr = tr[keep]
    else:
        y = Y_train
    K_te = K[np.ix_(te, te)]
    pred = gp_predict(K[np.ix_(tr, tr)], K[np.ix_(te, tr)], np.diag(K_te), y, noise, include_noise,
                      K_test=K_te if return_cov else None)
    mean, var = pred.mean, pred.var
    if kind == "several":
        mean, var = mean.reshape(n_out, m).T, var.reshape(n_out, m).T
    return GPPrediction(mean, var, spec, K, pred.cov, readout)


def log_marginal_likelihood(spec: NetworkSpec, X, Y, *, noise: float = 0.0, readout="last") -> float:
    """log p(Y | X) of the GP of ``spec`` with observation noise σ_ε² = ``noise`` (a list readout: Y (P, n),
    NaN unsupervised)."""
    check_spec(spec)
    times, kind = readout_times(spec, readout)
    K = readout_kernel(spec, X, readout)
    if kind != "several":
        return gp_log_marginal_likelihood(K, Y, noise)
    y, keep = _stack_targets(Y, len(times), K.shape[0] // len(times))
    return gp_log_marginal_likelihood(K[np.ix_(keep, keep)], y, noise)
