"""Nonlinearities by name, with their symbolic closed-form Gaussian expectations.

A :class:`Nonlinearity` carries φ as a SymPy expression in the symbol ``x`` and, where one
exists, the closed form of the two-point expectation

    pair(c11, c22, c12) = <φ(u) φ(v)>,  (u, v) ~ N(0, [[c11, c12], [c12, c22]]),

and optionally of dpair(c11, c22, c12) = <φ'(u) φ'(v)> = ∂ pair / ∂c12 (Price's theorem).

Registered: ``linear`` (x), ``erf`` (erf(scale·x), the scale κ_φ = 1 by default; ``kappa`` is its
deprecated name, now reserved for the likelihood variance), ``relu``
(arc-cosine kernel) and ``tanh`` (no closed form; numeric dual kernel).  Users add more
with :func:`register_phi` or pass a ``sympy.Lambda`` directly.
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Callable, Mapping

import numpy as np
import sympy as sp

x = sp.Symbol("x", real=True)


from ..api import check_real  # noqa: E402
from ..errors import SpecError, SpecTypeError, UnknownNonlinearity  # noqa: E402  (defined with the other errors)

#: deprecated parameter names of registered φ: (φ name, old) -> new
_RENAMED_PARAMS = {("erf", "kappa"): "scale"}
#: largest |value| of a φ parameter: beyond it the generated code's integer literals overflow int64
from ..spec import PARAM_LIMIT  # noqa: E402  (one bound for every declared number)


@dataclass(frozen=True, eq=False)
class Nonlinearity:
    """φ(x) with optional closed-form <φφ>; parameters are already substituted."""

    name: str
    expr: sp.Expr
    pair_form: Callable | None = None
    params: Mapping[str, float] = field(default_factory=dict)
    dpair_form: Callable | None = None

    def __call__(self, value):
        return self.expr.subs(x, value)

    @cached_property
    def key(self) -> str:
        """Stable identifier (name, parameters and expression) used for generated-module names."""
        text = f"{self.name}|{sorted(self.params.items())}|{sp.srepr(self.expr)}"
        return f"{self.name}_{hashlib.sha256(text.encode()).hexdigest()[:10]}"

    @property
    def odd(self) -> bool:
        return sp.simplify(self.expr.subs(x, -x) + self.expr) == 0

    @property
    def has_closed_form(self) -> bool:
        return self.pair_form is not None

    def derivative(self, order: int = 1) -> sp.Expr:
        return _derivative(self.expr, order)

    def kinks(self, order: int = 1) -> tuple[float, ...]:
        """Sorted real x where φ^(order) may be non-smooth: zeros of the arguments of Abs, sign,
        Heaviside, DiracDelta, of Max/Min differences and of Piecewise conditions (e.g. ReLU, softsign: 0)."""
        return _kinks(self.derivative(order) if order else self.expr)

    def numeric(self, order: int = 0) -> sp.Expr:
        """φ^(order) in an overflow-free form for numeric code (:func:`symfield.codegen.elementary.stable_exp`:
        softplus, sigmoid, SiLU and their derivatives split at the sign of the exp argument); the same function."""
        return _numeric(self.expr if order == 0 else self.derivative(order))

    def numeric_function(self, order: int = 0):
        """Vectorised NumPy/SciPy callable of :meth:`numeric` (always returns an array of the argument's shape)."""
        return _numeric_function(self.key, self, order)

    def features(self, order: int = 0) -> tuple[tuple[float, float], ...]:
        """(point, width) pairs where φ^(order) changes on the scale ``width``: its kinks (width
        FEATURE_WIDTH), the origin, and the zeros -β/α of linear arguments αx + β of its functions (width
        FEATURE_WIDTH/|α|, e.g. softplus log(1 + e^{20x}): 0 and 1/160).  Panel rules grade towards them."""
        return _features(self.expr if order == 0 else self.derivative(order))

    def pair(self, c11, c22, c12):
        """Closed form of <φ(u)φ(v)> or ``None`` if there is none."""
        if self.pair_form is None:
            return None
        return self.pair_form(c11, c22, c12)

    def dpair(self, c11, c22, c12):
        """Closed form of <φ'(u)φ'(v)> = ∂<φφ>/∂c12 or ``None`` if there is none."""
        if self.dpair_form is None:
            return None
        return self.dpair_form(c11, c22, c12)

    def numpy(self):
        """Vectorised NumPy/SciPy callable for φ (used by the simulator)."""
        return sp.lambdify(x, self.expr, modules=["scipy", "numpy"])


@lru_cache(maxsize=None)
def _derivative(expr: sp.Expr, order: int) -> sp.Expr:
    """d^order φ / dx^order, once per φ and order (the panel rule asks for it on every call)."""
    return sp.diff(expr, x, order)


@lru_cache(maxsize=None)
def _kinks(expr: sp.Expr) -> tuple[float, ...]:
    """Real zeros of the arguments where ``expr`` (in :data:`x`) switches branch."""
    if expr.has(sp.Max, sp.Min):  # nested Max/Min (hardtanh) as Piecewise conditions
        expr = expr.rewrite(sp.Piecewise)
    args = [f.args[0] for f in expr.atoms(sp.Abs, sp.sign, sp.Heaviside, sp.DiracDelta)]
    args += [c.lhs - c.rhs for p in expr.atoms(sp.Piecewise) for _, cond in p.args
             for c in sp.sympify(cond).atoms(sp.core.relational.Relational)]
    points = set()
    for a in args:
        if x in a.free_symbols:
            try:
                roots = sp.solve(a, x)
            except NotImplementedError as err:
                raise SpecError(f"cannot locate the kinks of phi: no solution of {a} = 0 ({err})") from None
            points.update(float(r) for r in roots if r.is_real)
    return tuple(sorted(points))


#: finest panel width at a feature of φ, in units of the scale 1/|α| of its argument
FEATURE_WIDTH = 0.25


@lru_cache(maxsize=None)
def _numeric(expr: sp.Expr) -> sp.Expr:
    from ..codegen.elementary import stable_exp
    return stable_exp(expr, x)


@lru_cache(maxsize=None)
def _numeric_function(key: str, phi: "Nonlinearity", order: int):
    f = sp.lambdify(x, phi.numeric(order), modules=["scipy", "numpy"])

    def evaluate(z):
        z = np.asarray(z, dtype=float)
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(f(z), dtype=float), z.shape)
    return evaluate


@lru_cache(maxsize=None)
def _features(expr: sp.Expr) -> tuple[tuple[float, float], ...]:
    """Kinks, the origin and the zeros of linear function arguments of ``expr``, with their widths."""
    found = {0.0: FEATURE_WIDTH}
    for k in _kinks(expr):
        found[k] = min(found.get(k, FEATURE_WIDTH), FEATURE_WIDTH)
    for f in expr.atoms(sp.Function, sp.Pow):
        for a in f.args:
            if isinstance(a, sp.Expr) and x in a.free_symbols and a.is_polynomial(x) and sp.Poly(a, x).degree() == 1:
                alpha, beta = (float(c) for c in sp.Poly(a, x).all_coeffs())
                point, width = -beta / alpha, FEATURE_WIDTH / abs(alpha)
                found[point] = min(found.get(point, width), width)
    return tuple(sorted(found.items()))


def _erf_pair(scale):
    def pair(c11, c22, c12):
        k2 = 2 * scale ** 2
        return 2 / sp.pi * sp.asin(k2 * c12 / sp.sqrt((1 + k2 * c11) * (1 + k2 * c22)))
    return pair


def _erf_dpair(scale):
    def dpair(c11, c22, c12):
        k2 = 2 * scale ** 2
        return 2 * k2 / sp.pi / sp.sqrt((1 + k2 * c11) * (1 + k2 * c22) - k2 ** 2 * c12 ** 2)
    return dpair


def _relu_dpair(c11, c22, c12):
    return (sp.pi - sp.acos(c12 / sp.sqrt(c11 * c22))) / (2 * sp.pi)


def _linear_dpair(c11, c22, c12):
    return sp.Integer(1)


#: ReLU closed form near collinear inputs.  For 1 - ρ² < RELU_NEAR_COLLINEAR the angle is taken as
#: θ = atan2(√(c11 c22 - c12²), c12) (well conditioned at ρ = ±1, where acos(ρ) loses half the digits);
#: there a Gram excess c11 c22 - c12² < 0 with |excess| <= RELU_GRAM_RTOL · c11 c22 is rounding of a
#: collinear pair and counts as 0, a more negative one is an invalid covariance and gives nan
#: (reported by the kernel map as NonFiniteKernel).  Rounding of a collinear pair grows with depth
#: (measured: <= 6 ulps of c11 c22 at T <= 12, <= 28 ulps at T <= 60 over DNN/RNN/ResNet/leaky RNN);
#: 1e-12 ≈ 4500 ulps leaves room for a few thousand steps.
RELU_NEAR_COLLINEAR = 1e-6
RELU_GRAM_RTOL = 1e-12


def _relu_pair(c11, c22, c12):
    """Arc-cosine kernel (c12 (π - θ) + √(c11 c22 - c12²)) / 2π, cos θ = ρ = c12/√(c11 c22).

    At ρ = 1 it is c12/2, at ρ = -1 it is 0 (θ = 0, π).  Away from ρ = ±1: θ = acos(ρ) (ρ clamped to
    [-1, 1]); near them θ = atan2(√excess, c12), see :data:`RELU_NEAR_COLLINEAR`."""
    excess = c11 * c22 - c12 ** 2
    near = excess < RELU_NEAR_COLLINEAR * c11 * c22
    held = sp.Piecewise((0, (excess < 0) & (excess >= -RELU_GRAM_RTOL * c11 * c22)), (excess, True))
    root = sp.Piecewise((sp.sqrt(held), near), (sp.sqrt(excess), True))
    theta = sp.Piecewise((sp.atan2(root, c12), near),
                         (sp.acos(sp.Min(1, sp.Max(-1, c12 / sp.sqrt(c11 * c22)))), True))
    return (root + (sp.pi - theta) * c12) / (2 * sp.pi)


def _linear_pair(c11, c22, c12):
    return c12


# name -> (factory(**params) -> Nonlinearity, default params)
_REGISTRY: dict[str, tuple[Callable[..., Nonlinearity], dict]] = {}


def register_phi(name: str, expr, pair: Callable | None = None, params: Mapping[str, float] | None = None,
                 overwrite: bool = False, dpair: Callable | None = None) -> None:
    """Register φ under ``name``.

    ``pair`` may also be a factory ``(**params) -> pair`` marked with :func:`pair_factory`.
    ``expr`` is a SymPy expression in :data:`x` (or a ``Lambda`` of one variable, or a
    callable ``(**params) -> expr``); ``pair(c11, c22, c12)`` an optional closed form of
    <φ(u)φ(v)>, ``dpair`` one of <φ'(u)φ'(v)> (both may be :func:`pair_factory` factories).
    Without ``pair`` the numeric dual kernel is used.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise SpecError(f"phi name must be an identifier string, got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise SpecError(f"phi {name!r} is already registered (pass overwrite=True to replace it)")
    defaults = dict(params or {})
    if callable(expr) and not isinstance(expr, (sp.Basic, sp.Lambda)):
        make_expr = expr
    else:
        fixed = _as_expr(expr)
        make_expr = lambda **_: fixed  # noqa: E731

    def factory(**kw):
        kw = {k: _exact(v) for k, v in kw.items()}
        pair_fn = pair(**kw) if _is_factory(pair) else pair
        dpair_fn = dpair(**kw) if _is_factory(dpair) else dpair
        return Nonlinearity(name, sp.sympify(make_expr(**kw)), pair_fn, kw, dpair_fn)

    _REGISTRY[name] = (factory, defaults)


def _exact(value):
    """Integral floats become SymPy integers (erf(1.0*x) -> erf(x)); other values stay floats."""
    v = float(value)
    return sp.Integer(int(v)) if v.is_integer() else sp.Float(v)


def _is_factory(pair) -> bool:
    return getattr(pair, "_pair_factory", False)


def pair_factory(fn):
    fn._pair_factory = True
    return fn


def _as_expr(expr) -> sp.Expr:
    if isinstance(expr, sp.Lambda):
        if len(expr.variables) != 1:
            raise SpecError("a phi Lambda must take exactly one argument")
        return expr.expr.subs(expr.variables[0], x)
    try:
        expr = sp.sympify(expr)
    except (sp.SympifyError, SyntaxError, TypeError) as err:
        raise SpecTypeError(f"phi expr must be a SymPy expression (or a string of one) in x, got {expr!r}") from err
    if not isinstance(expr, sp.Expr):
        raise SpecTypeError(f"phi expr must be a SymPy expression in x, got {type(expr).__name__} {expr!r}")
    free = expr.free_symbols - {x}
    if free:
        # accept any single symbol as the argument
        syms = [s for s in expr.free_symbols]
        if len(syms) == 1:
            return expr.subs(syms[0], x)
        raise SpecError(f"phi expr must depend on one variable only, found {sorted(map(str, free))}")
    return expr


def _renamed_params(phi: str, params: dict) -> dict:
    """Map deprecated parameter names (erf's ``kappa`` -> ``scale``) with a DeprecationWarning."""
    out = dict(params)
    for (name, old), new in _RENAMED_PARAMS.items():
        if name == phi and old in out:
            if new in out:
                raise SpecError(f"phi_params: pass {new!r} only ({old!r} is its deprecated name)")
            warnings.warn(f"phi {phi!r}: the parameter {old!r} is deprecated, use {new!r} (κ_φ; 'kappa' names "
                          "the likelihood variance)", DeprecationWarning, stacklevel=3)
            out[new] = out.pop(old)
    return out


def available_phis() -> list[str]:
    return sorted(_REGISTRY)


def get_phi(phi, **params) -> Nonlinearity:
    """Resolve a name, a ``sympy.Lambda``/expression or a :class:`Nonlinearity`."""
    if isinstance(phi, Nonlinearity):
        return phi
    if isinstance(phi, str):
        if phi not in _REGISTRY:
            raise UnknownNonlinearity(f"unknown phi {phi!r}; registered: {', '.join(available_phis())} "
                                      f"(add one with symfield.register_phi)")
        factory, defaults = _REGISTRY[phi]
        params = _renamed_params(phi, params)
        unknown = set(params) - set(defaults)
        if unknown:
            raise SpecError(f"phi_params: phi {phi!r} takes parameters {sorted(defaults)}, got unknown "
                            f"{sorted(unknown)}")
        for key, value in params.items():
            check_real(f"phi_params[{key!r}]", value, low=-PARAM_LIMIT, high=PARAM_LIMIT)
        return factory(**{**defaults, **params})
    if isinstance(phi, (sp.Lambda, sp.Basic)):
        expr = _as_expr(phi)
        digest = hashlib.sha256(sp.srepr(expr).encode()).hexdigest()[:8]
        return Nonlinearity(f"user_{digest}", expr, None, {})
    raise SpecTypeError(f"phi must be a registered name, a sympy Lambda or a Nonlinearity, got {type(phi).__name__}")


register_phi("linear", x, pair=_linear_pair, dpair=_linear_dpair)
register_phi("erf", lambda scale: sp.erf(scale * x), pair=pair_factory(_erf_pair), params={"scale": 1.0},
             dpair=pair_factory(_erf_dpair))
register_phi("relu", sp.Max(0, x), pair=_relu_pair, dpair=_relu_dpair)
register_phi("tanh", sp.tanh(x))
