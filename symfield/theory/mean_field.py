"""Leading-order (Gaussian-process) kernels of DNNs and RNNs (theory Sec. 4).

    C̄_(aα),(bβ) = Σdet_(aα),(bβ) + M_ab g² <φ(z_(a-1)α) φ(z_(b-1)β)>_{z ~ N(0, C̄)}

with M = 1 (RNN) or δ_ab (DNN).  Blocks are computed shell by shell in increasing
max(a, b): block (a, b) reads (a-1, a-1), (b-1, b-1) and (a-1, b-1), all of smaller max.
Only blocks that can be non-zero are stored (the DNN keeps its T diagonal blocks).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from ..blas import single_threaded
from ..spec import NetworkSpec, input_gram
from .kernel_map import kernel_map


from ..api import check_choice, check_flag, check_spec, legacy_positional  # noqa: E402
from ..errors import NonFiniteKernel, SpecError  # noqa: E402  (defined with the other errors)
from ..resources import check_memory, check_time  # noqa: E402


@dataclass
class MeanField:
    """Mean-field kernels: ``blocks[(a, b)]`` (a <= b, 0-based times) of shape (P, P).

    Equal-time blocks are computed on their upper triangle only and completed on first access.
    """

    spec: NetworkSpec
    X: np.ndarray
    raw: dict = field(repr=False)
    upper: set = field(default_factory=set, repr=False)  #: keys whose lower triangle is not filled yet
    variances: np.ndarray | None = field(default=None, repr=False)  #: (T, P) diagonals C̄[t, t, mu, mu]
    keep: str = "all"  #: "last": only the blocks (a, T-1) were kept
    dense: np.ndarray | None = field(default=None, repr=False)  #: (T, T, P, P) storage of the shell path

    @property
    def blocks(self) -> dict:
        for key in list(self.upper):
            self._complete(key)
        return self.raw

    def _complete(self, key):
        if key not in self.raw:
            raise KeyError(f"block {key} was not kept (mean_field(..., keep={self.keep!r}) stores only the blocks "
                           f"(a, {self.T - 1}))")
        if key in self.upper:
            kernel_map(self.spec.phi_fn).mirror(self.raw[key])
            self.upper.discard(key)
        return self.raw[key]

    @property
    def T(self) -> int:
        return self.spec.T

    @property
    def P(self) -> int:
        return self.X.shape[0]

    def block(self, a: int, b: int) -> np.ndarray:
        """C̄[a, b] as a (P, P) array (0-based times; zero for DNN cross-layer blocks)."""
        for t in (a, b):
            if not 0 <= t < self.T:
                raise IndexError(f"time index {t} out of range 0..{self.T - 1}")
        if a <= b:
            return self._complete((a, b)) if self.spec.block_exists(a, b) else np.zeros((self.P, self.P))
        return self.block(b, a).T

    @property
    def C(self) -> np.ndarray:
        """Dense C̄ of shape (T, T, P, P), C[t, s, mu, nu] at 0-based times t, s, assembled on access
        (read-only if it is the dense storage of the shell path: copy it to modify)."""
        if self.keep != "all":
            raise SpecError(f"the dense C needs every block; this MeanField was computed with keep={self.keep!r}")
        if self.dense is not None:  # the storage itself, read-only
            view = self.dense.view()
            view.flags.writeable = False
            return view
        out = np.zeros((self.T, self.T, self.P, self.P))
        for (a, b), blk in self.blocks.items():
            out[a, b] = blk
            out[b, a] = blk.T
        return out

    def equal_time(self) -> np.ndarray:
        """C̄[t, t] for all t: shape (T, P, P)."""
        return np.stack([self._complete((a, a)) for a in range(self.T)])

    def diagonal(self) -> np.ndarray:
        """Variances C̄[t, t, mu, mu]: shape (T, P)."""
        return self.variances.copy()


def _sigma_det(spec: NetworkSpec, X: np.ndarray, a: int, b: int):
    """Σdet_ab: a scalar (bias only) or a (P, P) array (bias + input Gram)."""
    bias, w_in = spec.sigma_det_parts(a, b)
    if not w_in:
        return bias
    with single_threaded():  # spinning BLAS workers would slow the parallel kernel map that follows
        sdet = input_gram(X, a, b)
    sdet *= w_in
    sdet += bias
    return sdet


def _dense(spec: NetworkSpec, km, X: np.ndarray, keep: str) -> np.ndarray | None:
    """Storage (T, T, P, P) for the compiled shell-by-shell path, or None for the block-by-block path.

    The shell path needs every block (an RNN, keep="all"), a closed form, and input only at the
    first step (so that Σdet is a constant on every block but (0, 0))."""
    if not _shells_apply(spec, km, keep):
        return None
    return np.empty((spec.T, spec.T, X.shape[0], X.shape[0]))


def _shells_apply(spec: NetworkSpec, km, keep: str) -> bool:
    if keep != "all" or not km.closed or spec.T < 2:
        return False
    return spec.weight_mask()[1:, 1:].all() and not spec.input_mask().ravel()[1:].any()


def stored_bytes(spec: NetworkSpec, P: int, keep: str = "all", km=None) -> float:
    """Memory of the (P, P) blocks :func:`mean_field` stores: dense (T, T, P, P) on the skip and shell
    paths, else the blocks that exist (keep='last': the two shells held at a time), plus two spare."""
    T = spec.T
    if spec.has_skip or (km is not None and _shells_apply(spec, km, keep)):
        count = T * T
    else:
        kept = np.triu(spec.block_support())
        count = int(kept.sum() if keep == "all" else kept[:, -2:].sum())
    return 8.0 * P * P * (count + 2)


def operations(spec: NetworkSpec, P: int) -> float:
    """Cost model of :func:`mean_field` for :func:`~symfield.resources.check_time`: ~200 operations per
    Gaussian expectation (closed form or dual-kernel interpolation), one per entry of every block."""
    return 200.0 * P * P * (spec.T ** 2 if spec.has_skip else np.triu(spec.block_support()).sum())


@legacy_positional("progress", "keep")
def mean_field(spec: NetworkSpec, X, *, keep: str = "all", progress: bool = False) -> MeanField:
    """Mean-field (GP) kernels of ``spec`` for inputs ``X`` ((P, D), or (P, T, D) for input='every').

    ``keep="all"`` (default) stores every block that exists; ``keep="last"`` only the last shell
    (blocks (a, T-1): the output layer of a DNN, the last time's row of an RNN), recycling the
    memory of earlier shells (a DNN of depth T then needs two (P, P) arrays instead of T).
    An RNN with input at the first step is computed by compiled shells into dense storage.
    """
    check_spec(spec)
    check_choice(keep, "keep", ("all", "last"))
    check_flag("progress", progress)
    X = spec.check_inputs(X)
    km = kernel_map(spec.phi_fn)
    check_memory(stored_bytes(spec, X.shape[0], keep, km), f"mean_field (T = {spec.T}, P = {X.shape[0]}, keep={keep!r})",
                 "the number of inputs X (P) or T" + (", or pass keep='last'" if keep == "all" else ""))
    check_time(operations(spec, X.shape[0]), f"mean_field (T = {spec.T}, P = {X.shape[0]})", "P or T")
    if spec.has_skip:
        return _with_skip(spec, X, km, keep, progress)
    dense = _dense(spec, km, X, keep)
    if dense is None:
        return _by_blocks(spec, X, km, keep, progress)
    return _by_shells(spec, X, km, dense, progress)


def _report(progress: bool, done: int, T: int):
    if progress:
        print(f"\rmean_field: shell {done}/{T}", end="" if done < T else "\n", file=sys.stderr)


def _by_shells(spec, X, km, dense, progress) -> MeanField:
    """All shells by compiled calls (one per shell with ``progress``, else one in all) into ``dense``."""
    T, P = spec.T, X.shape[0]
    variances = np.empty((T, P))
    R, Q = np.empty((T, km.n_row, P)), np.empty((T, km.n_col, P))
    dense[0, 0] = _sigma_det(spec, X, 0, 0)
    variances[0] = np.diag(dense[0, 0])
    R[0], Q[0] = km.side_values(variances[0])
    _report(progress, 1, T)
    bias, mask, g2 = spec.bias_part(), spec.branch_mask(), spec.g_values() ** 2
    for lo, end in ([(hi, hi + 1) for hi in range(1, T)] if progress else [(1, T)]):
        if km.shells(lo, end, dense, variances, R, Q, bias, mask, g2):
            raise NonFiniteKernel(f"non-finite kernel in shells {lo}..{end - 1} (phi={spec.phi_fn.name})")
        _report(progress, end, T)
    blocks = {(a, b): dense[a, b] for b in range(T) for a in range(b + 1)}
    return MeanField(spec, X, blocks, set(), variances, "all", dense)


def _with_skip(spec, X, km, keep, progress) -> MeanField:
    """Networks with skip coefficients a_t (leaky RNN, ResNet): h_t = a_t h_{t-1} + ξ_t with the driving
    noise ξ of covariance D_ts = Σdet_ts + M_ts r_t r_s g_t g_s <φ(h_{t-1}) φ(h_{s-1})>, so that

        X_ts = a_t X_{t-1,s} + D_ts   (X_ts = Cov(h_t, ξ_s)),     C_ts = a_s C_{t,s-1} + X_ts,

    shell by shell in max(t, s) (D of shell s reads C of earlier shells only).  Dense (T, T, P, P) storage."""
    T, P = spec.T, X.shape[0]
    mask, g2, a = spec.branch_mask(), spec.g_values() ** 2, spec.leak_values()
    C = np.zeros((T, T, P, P))
    variances = np.empty((T, P))
    for hi in range(T):
        X_col = np.zeros((P, P))
        for t in range(hi + 1):
            sdet = _sigma_det(spec, X, t, hi)
            if t >= 1 and mask[t, hi] != 0:
                try:
                    D = km.block(variances[t - 1], variances[hi - 1], C[t - 1, hi - 1], sdet, mask[t, hi],
                                 g2[hi - 1], symmetric=(t == hi))
                except FloatingPointError as err:
                    raise NonFiniteKernel(f"non-finite kernel in block ({t}, {hi}): {err}") from None
            else:
                D = sdet
            X_col = a[t] * X_col + D
            prev = C[t, hi - 1] if t < hi else C[hi - 1, hi].T
            C[t, hi] = X_col + (a[hi] * prev if hi > 0 else 0.0)
            C[hi, t] = C[t, hi].T
        C[hi, hi] = 0.5 * (C[hi, hi] + C[hi, hi].T)
        variances[hi] = np.diag(C[hi, hi])
        _report(progress, hi + 1, T)
    if not np.all(np.isfinite(variances)):
        raise NonFiniteKernel("non-finite kernel (the skip recursion overflowed)")
    blocks = {(t, s): C[t, s] for s in range(T) for t in range(s + 1)
              if spec.block_exists(t, s) and (keep == "all" or s == T - 1)}
    return MeanField(spec, X, blocks, set(), variances, keep, C if keep == "all" else None)


def _by_blocks(spec, X, km, keep, progress) -> MeanField:
    """Block by block, shell by shell (the DNN, input at every step, φ without closed form, keep='last')."""
    T, P = spec.T, X.shape[0]
    mask = spec.branch_mask()
    g2 = spec.g_values() ** 2
    blocks: dict[tuple[int, int], np.ndarray] = {}
    upper: set = set()
    variances = np.empty((T, P))  # diagonal of C̄[t, t], read by every later shell
    spare: list[np.ndarray] = []  # recycled arrays of dropped shells (keep="last")
    for hi in range(T):  # shell max(a, b) = hi
        if spec.block_exists(0, hi):  # block (0, hi): Σdet only, no weight-generated part
            first = _sigma_det(spec, X, 0, hi)
            blocks[(0, hi)] = first if np.ndim(first) else np.full((P, P), first)
        for a in range(1, hi + 1):
            if not spec.block_exists(a, hi):  # masked out (DNN cross-layer blocks)
                continue
            try:
                prev = blocks[(a - 1, hi - 1)] if (a - 1, hi - 1) in blocks else np.zeros((P, P))
                blocks[(a, hi)] = km.block(variances[a - 1], variances[hi - 1], prev,
                                           _sigma_det(spec, X, a, hi), mask[a, hi], g2[hi - 1], symmetric=(a == hi),
                                           triangle=(a == hi), out=spare.pop() if spare else None)
            except FloatingPointError as err:
                raise NonFiniteKernel(f"non-finite kernel in block ({a}, {hi}): {err}") from None
            if a == hi:
                upper.add((a, hi))
        variances[hi] = np.diag(blocks[(hi, hi)])
        if keep == "last" and hi > 0:
            for key in [k for k in blocks if k[1] == hi - 1]:
                spare.append(blocks.pop(key))
                upper.discard(key)
        _report(progress, hi + 1, T)
    return MeanField(spec, X, blocks, upper, variances, keep)
