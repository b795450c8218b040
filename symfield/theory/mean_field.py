"""Leading-order (Gaussian-process) kernels of DNNs and RNNs (theory Sec. 4).

    C̄_(aα),(bβ) = Σdet_(aα),(bβ) + M_ab g² <φ(z_(a-1)α) φ(z_(b-1)β)>_{z ~ N(0, C̄)}

with M = 1 (RNN) or δ_ab (DNN).  Blocks are computed shell by shell in increasing
max(a, b): block (a, b) reads (a-1, a-1), (b-1, b-1) and (a-1, b-1), all of smaller max.
Only blocks that can be non-zero are stored (the DNN keeps its T diagonal blocks), each once (a <= b).

Per call, not per block: the input Gram matrices x^(a)·x^(b)/D of a shell are one matrix product
(:class:`Deterministic`), BLAS is limited to one thread once, the hoisted factors of the closed form
are evaluated once per time, and the number of Numba threads is chosen once from the work of one
parallel region and the cores other processes leave free (:func:`thread_count`).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import numba
import numpy as np

from ..api import check_choice, check_flag, check_positive_int, check_spec, legacy_positional
from ..blas import single_threaded
from ..errors import NonFiniteKernel, SpecError
from ..gauss.panels import MAX_VARIANCE
from ..progress import progress_bar
from ..resources import check_memory, check_time
from ..spec import NetworkSpec, input_gram
from .kernel_map import kernel_map

#: kernel entries of one parallel region below which one thread is used: there a fork/join costs more
#: than the split saves.  Crossover measured on the idle 2-core machine (``bench_mean_field.py
#: --crossover``): DNN erf 2 threads/1 thread 0.99 at 5e3 entries per region, 0.87 at 2e4; RNN erf
#: input-first T = 30: 1.07 at 1.5e3, 0.91 at 6e3.  A loaded machine is handled by the free-core count.
THREADS_MIN_WORK = 1e4
#: relative cost of an entry without closed form (quadrature of the dual kernel) against a closed form
QUADRATURE_COST = 30.0
#: the compiled shell path (dense (T, T, P, P), both triangles) only below this size; above it the
#: blocks a <= b are stored once (half the memory)
DENSE_MAX_BYTES = 2 ** 28


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
        check_memory(8.0 * (self.T * self.P) ** 2, f"MeanField.C (dense (T P)^2 = {self.T * self.P}^2)",
                     "use .block(a, b) / .equal_time() instead of the dense .C")
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

    def to_xarray(self):
        """Labelled Dataset (dims t, s, mu, nu; spec in attrs): :func:`symfield.labelled.mean_field`."""
        from ..labelled import mean_field as labelled
        return labelled(self.spec, self.X, self.blocks, self.variances, self.keep)


def _sigma_det(spec: NetworkSpec, X: np.ndarray, a: int, b: int):
    """Σdet_ab: a scalar (bias only) or a (P, P) array (bias + input Gram), block by block: the reference
    path of benchmarks/bench_mean_field.py (:class:`Deterministic` is used by :func:`mean_field`)."""
    bias, w_in = spec.sigma_det_parts(a, b)
    if not w_in:
        return bias
    with single_threaded():  # spinning BLAS workers would slow the parallel kernel map that follows
        sdet = input_gram(X, a, b)
    sdet *= w_in
    sdet += bias
    return sdet


class Deterministic:
    """Σdet_ab = σ² Π^bias_ab + g_in² Π^in_ab x^(a)·x^(b)/D, a scalar or a (P, P) array, read shell by
    shell (b = max(a, b)): the input Gram matrices of shell b that are needed are one matrix product
    (the same as :func:`symfield.spec.input_gram` block by block); inputs at the first step only:
    one Gram matrix for all blocks.  Call inside :func:`symfield.blas.single_threaded`."""

    def __init__(self, spec: NetworkSpec, X: np.ndarray):
        T = spec.T
        self.spec, self.X = spec, X
        parts = [[spec.sigma_det_parts(a, b) for b in range(T)] for a in range(T)]
        self.bias = np.array([[p[0] for p in row] for row in parts])
        self.w_in = np.array([[p[1] for p in row] for row in parts])
        self._shell, self._grams = -1, {}

    def _gram(self, a: int, b: int) -> np.ndarray:
        X = self.X
        if X.shape[1] == 1:  # one input: the same Gram matrix for every block
            if not self._grams:
                self._grams[0] = input_gram(X, 0, 0)
            return self._grams[0]
        if self._shell != b:
            rows = [t for t in range(b + 1) if self.w_in[t, b]]
            P, D = X.shape[0], X.shape[2]
            col = np.ascontiguousarray(X[:, rows].transpose(1, 0, 2)).reshape(len(rows) * P, D) @ X[:, b].T
            col /= D
            self._shell, self._grams = b, {t: col[k * P:(k + 1) * P] for k, t in enumerate(rows)}
        return self._grams[a]

    def __call__(self, a: int, b: int):
        if not self.w_in[a, b]:
            return float(self.bias[a, b])
        out = self.w_in[a, b] * self._gram(a, b)
        out += self.bias[a, b]
        return out


def _available_cores() -> int:
    """Cores not running other work: the CPUs minus the other runnable threads, the larger of the count
    now (procs_running of /proc/stat, this thread excluded) and the one-minute load average less one
    (this process) - a snapshot alone misses a load that comes and goes."""
    cpus = os.cpu_count() or 1
    busy = 0
    try:
        busy = int(round(os.getloadavg()[0])) - 1
    except OSError:
        pass
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"procs_running"):
                    busy = max(busy, int(line.split()[1]) - 1)
                    break
    except (OSError, ValueError):
        pass
    return max(1, cpus - busy)


def thread_count(work: float, most: int | None = None) -> int:
    """Numba threads for parallel regions of ``work`` kernel entries each: one below
    :data:`THREADS_MIN_WORK`, else up to ``most`` (default: ``numba.get_num_threads()``) but no more
    than the cores other processes leave free (a thread that waits for a descheduled sibling at every
    region made two threads ten times slower than one on a loaded machine)."""
    most = numba.get_num_threads() if most is None else most
    if most <= 1 or work < THREADS_MIN_WORK:
        return 1
    return max(1, min(most, _available_cores()))


@contextlib.contextmanager
def numba_threads(n: int):
    """Run the parallel regions of the block on ``n`` Numba threads (restored afterwards)."""
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def _region_work(spec: NetworkSpec, P: int, km, shells: bool) -> float:
    """Kernel entries of one parallel region: a shell of the compiled path (T/2 blocks on average),
    else one block (equal-time blocks are triangles), weighted by the cost of an entry."""
    per_block = P * P * (1.0 if shells else 0.5 if not spec.block_support()[np.triu_indices(spec.T, 1)].any()
                         else 1.0)
    return per_block * (spec.T / 2 if shells else 1.0) * (1.0 if km.closed else QUADRATURE_COST)


def _dense(spec: NetworkSpec, km, X: np.ndarray, keep: str) -> np.ndarray | None:
    """Storage (T, T, P, P) for the compiled shell-by-shell path, or None for the block-by-block path.

    The shell path needs every block (an RNN, keep="all"), a closed form, input only at the first step
    (so that Σdet is a constant on every block but (0, 0)), and a dense array of at most
    :data:`DENSE_MAX_BYTES` (it stores both triangles)."""
    if not _shells_apply(spec, km, keep, X.shape[0]):
        return None
    return np.empty((spec.T, spec.T, X.shape[0], X.shape[0]))


def _shells_apply(spec: NetworkSpec, km, keep: str, P: int) -> bool:
    if keep != "all" or not km.closed or spec.T < 2 or 8.0 * (spec.T * P) ** 2 > DENSE_MAX_BYTES:
        return False
    return spec.weight_mask()[1:, 1:].all() and not spec.input_mask().ravel()[1:].any()


def stored_bytes(spec: NetworkSpec, P: int, keep: str = "all", km=None) -> float:
    """Memory of the (P, P) blocks :func:`mean_field` stores: dense (T, T, P, P) on the skip and shell
    paths, else the blocks that exist (keep='last': the two shells held at a time), plus two spare."""
    T = spec.T
    if spec.has_skip or (km is not None and _shells_apply(spec, km, keep, P)):
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
def mean_field(spec: NetworkSpec, X, *, keep: str = "all", progress: bool = False,
               threads: int | None = None) -> MeanField:
    """Mean-field (GP) kernels of ``spec`` for inputs ``X`` ((P, D), or (P, T, D) for input='every').

    ``keep="all"`` (default) stores every block that exists, once (a <= b; ``.C`` assembles the dense
    (T, T, P, P) array on request); ``keep="last"`` only the last shell (blocks (a, T-1): the output
    layer of a DNN, the last time's row of an RNN), recycling the memory of earlier shells (a DNN of
    depth T then needs two (P, P) arrays instead of T).  An RNN with input at the first step and a dense
    array of at most 256 MB is computed by compiled shells into dense storage.
    ``threads``: Numba threads (default: chosen per call by :func:`thread_count`; the result does not
    depend on it).  ``progress``: a progress bar over the shells (:mod:`symfield.progress`).
    """
    check_spec(spec)
    check_choice(keep, "keep", ("all", "last"))
    if progress is not None:  # None: on when stderr is a terminal (symfield.progress)
        check_flag("progress", progress)
    X = spec.check_inputs(X)
    most = None if threads is None else check_positive_int("threads", threads)
    km = kernel_map(spec.phi_fn)
    P = X.shape[0]
    check_memory(stored_bytes(spec, P, keep, km), f"mean_field (T = {spec.T}, P = {P}, keep={keep!r})",
                 "the number of inputs X (P) or T" + (", or pass keep='last'" if keep == "all" else ""))
    check_time(operations(spec, P), f"mean_field (T = {spec.T}, P = {P})", "P or T")
    dense = None if spec.has_skip else _dense(spec, km, X, keep)
    n = thread_count(_region_work(spec, P, km, dense is not None), most) if threads is None else most
    with numba_threads(n), single_threaded():
        sdet = Deterministic(spec, X)
        if spec.has_skip:
            return _with_skip(spec, X, km, keep, progress, sdet)
        if dense is None:
            return _by_blocks(spec, X, km, keep, progress, sdet, _Sides(km))
        return _by_shells(spec, X, km, dense, progress, sdet)


def reference_mean_field(spec: NetworkSpec, X, keep: str = "all") -> MeanField:
    """The block-by-block path as it was before the per-call scheme (Σdet, BLAS limit and hoisted
    factors per block, Numba's thread setting as it stands): the in-run reference of the benchmark."""
    X = spec.check_inputs(X)
    km = kernel_map(spec.phi_fn)
    per_block = lambda a, b: _sigma_det(spec, X, a, b)  # noqa: E731
    if spec.has_skip:
        return _with_skip(spec, X, km, keep, False, per_block)
    dense = _dense(spec, km, X, keep)
    if dense is None:
        return _by_blocks(spec, X, km, keep, False, per_block, None)
    return _by_shells(spec, X, km, dense, False, per_block)


class _Sides:
    """Hoisted row / column factors of the closed form at the variances of each time, computed once."""

    def __init__(self, km):
        self.km, self.cache = km, {}

    def __call__(self, t: int, variances: np.ndarray):
        if t not in self.cache:
            self.cache[t] = self.km.side_values(variances[t])
        return self.cache[t]


def _scale_hint(variances: np.ndarray) -> str:
    """The hint of a NonFiniteKernel: the largest pre-activation variance so far, if it is above the numeric
    rules' range (``gauss.panels.MAX_VARIANCE``) or not finite (products c11 c22 overflow doubles from ~1e154)."""
    v = np.asarray(variances, dtype=float)
    top = np.nanmax(np.where(np.isfinite(v), v, np.inf)) if v.size else 0.0
    if top <= MAX_VARIANCE:
        return ""
    return f"; the largest pre-activation variance was {top:.3g} (overflow): rescale X (or g_in, sigma_b2, g)"


def _block_error(t: int, hi: int, err: FloatingPointError, variances: np.ndarray) -> NonFiniteKernel:
    """The NonFiniteKernel of block (t, hi) whose kernel map raised ``err`` (variances of the shells before hi)."""
    return NonFiniteKernel(f"non-finite kernel in block ({t}, {hi}): {err}" + _scale_hint(variances[:hi]))


def _bar(spec, progress):
    return progress_bar(spec.T, "mean_field shells", progress)


def _by_shells(spec, X, km, dense, progress=False, sdet=None) -> MeanField:
    """All shells by compiled calls (one per shell with ``progress``, else one in all) into ``dense``."""
    with _bar(spec, progress) as bar:
        return _shells(spec, X, km, dense, progress, Deterministic(spec, X) if sdet is None else sdet, bar)


def _shells(spec, X, km, dense, progress, sdet, bar) -> MeanField:
    T, P = spec.T, X.shape[0]
    variances = np.zeros((T, P))  # filled shell by shell by the compiled shells (zeros: not reached, for the hint)
    R, Q = np.empty((T, km.n_row, P)), np.empty((T, km.n_col, P))
    dense[0, 0] = sdet(0, 0)
    variances[0] = np.diag(dense[0, 0])
    R[0], Q[0] = km.side_values(variances[0])
    bar.update(1)
    bias, mask, g2 = spec.bias_part(), spec.branch_mask(), spec.g_values() ** 2
    for lo, end in ([(hi, hi + 1) for hi in range(1, T)] if progress else [(1, T)]):
        if km.shells(lo, end, dense, variances, R, Q, bias, mask, g2):
            raise NonFiniteKernel(f"non-finite kernel in shells {lo}..{end - 1} (phi={spec.phi_fn.name})"
                                  + _scale_hint(variances))
        bar.update(end - lo)
    blocks = {(a, b): dense[a, b] for b in range(T) for a in range(b + 1)}
    return MeanField(spec, X, blocks, set(), variances, "all", dense)


def skip_recursion(a, drive, T: int, shape, on_shell=None) -> np.ndarray:
    """The skip map of networks with skip coefficients a_t (leaky RNN, ResNet): h_t = a_t h_{t-1} + ξ_t with
    driving noise ξ of covariance D_ts (``drive(t, s, C)``, from the shells of C before s), so that

        X_ts = a_t X_{t-1,s} + D_ts   (X_ts = Cov(h_t, ξ_s)),     C_ts = a_s C_{t,s-1} + X_ts,

    shell by shell in max(t, s); ``on_shell(s, C)`` after shell s.  Returns C of shape (T, T, *shape), the
    last two axes (P, P).  The map is linear in D, so leading axes of ``shape`` (a value and its tangents)
    are propagated alike."""
    C = np.zeros((T, T, *shape))
    for hi in range(T):
        X_col = np.zeros(shape)
        for t in range(hi + 1):
            X_col = a[t] * X_col + drive(t, hi, C)
            C[t, hi] = X_col
            if hi > 0:
                C[t, hi] += a[hi] * (C[t, hi - 1] if t < hi else np.swapaxes(C[hi - 1, hi], -1, -2))
            C[hi, t] = np.swapaxes(C[t, hi], -1, -2)
        C[hi, hi] = 0.5 * (C[hi, hi] + np.swapaxes(C[hi, hi], -1, -2))
        if on_shell is not None:
            on_shell(hi, C)
    return C


def _with_skip(spec, X, km, keep, progress, sdet) -> MeanField:
    """Networks with skip coefficients: :func:`skip_recursion` with the driving covariance
    D_ts = Σdet_ts + M_ts r_t r_s g_t g_s <φ(h_{t-1}) φ(h_{s-1})>.  Dense (T, T, P, P) storage."""
    T, P = spec.T, X.shape[0]
    mask, g2 = spec.branch_mask(), spec.g_values() ** 2
    variances = np.empty((T, P))
    bar = _bar(spec, progress)

    def drive(t, hi, C):
        s_th = sdet(t, hi)
        if t < 1 or mask[t, hi] == 0:
            return s_th
        try:
            return km.block(variances[t - 1], variances[hi - 1], C[t - 1, hi - 1], s_th, mask[t, hi],
                            g2[hi - 1], symmetric=(t == hi))
        except FloatingPointError as err:
            raise _block_error(t, hi, err, variances) from None

    def on_shell(hi, C):
        variances[hi] = np.diag(C[hi, hi])
        bar.update(1)

    C = skip_recursion(spec.leak_values(), drive, T, (P, P), on_shell)
    bar.close()
    if not np.all(np.isfinite(variances)):
        raise NonFiniteKernel("non-finite kernel (the skip recursion overflowed)" + _scale_hint(variances))
    blocks = {(t, s): C[t, s] for s in range(T) for t in range(s + 1)
              if spec.block_exists(t, s) and (keep == "all" or s == T - 1)}
    return MeanField(spec, X, blocks, set(), variances, keep, C if keep == "all" else None)


def _by_blocks(spec, X, km, keep, progress=False, sdet=None, sides=None) -> MeanField:
    """Block by block, shell by shell (the DNN, input at every step, φ without closed form, keep='last',
    large RNNs).  ``sides``: hoisted factors per time (:class:`_Sides`), or None to evaluate them per block."""
    T, P = spec.T, X.shape[0]
    mask = spec.branch_mask()
    g2 = spec.g_values() ** 2
    blocks: dict[tuple[int, int], np.ndarray] = {}
    upper: set = set()
    variances = np.empty((T, P))  # diagonal of C̄[t, t], read by every later shell
    spare: list[np.ndarray] = []  # recycled arrays of dropped shells (keep="last")
    sdet = Deterministic(spec, X) if sdet is None else sdet
    bar = _bar(spec, progress)
    for hi in range(T):  # shell max(a, b) = hi
        if spec.block_exists(0, hi):  # block (0, hi): Σdet only, no weight-generated part
            first = sdet(0, hi)
            blocks[(0, hi)] = first if np.ndim(first) else np.full((P, P), first)
        for a in range(1, hi + 1):
            if not spec.block_exists(a, hi):  # masked out (DNN cross-layer blocks)
                continue
            try:
                prev = blocks[(a - 1, hi - 1)] if (a - 1, hi - 1) in blocks else np.zeros((P, P))
                hoisted = None if sides is None or not km.closed else \
                    (sides(a - 1, variances)[0], sides(hi - 1, variances)[1])
                blocks[(a, hi)] = km.block(variances[a - 1], variances[hi - 1], prev,
                                           sdet(a, hi), mask[a, hi], g2[hi - 1], symmetric=(a == hi),
                                           triangle=(a == hi), out=spare.pop() if spare else None, sides=hoisted)
            except FloatingPointError as err:
                raise _block_error(a, hi, err, variances) from None
            if a == hi:
                upper.add((a, hi))
        variances[hi] = np.diag(blocks[(hi, hi)])
        if keep == "last" and hi > 0:
            for key in [k for k in blocks if k[1] == hi - 1]:
                spare.append(blocks.pop(key))
                upper.discard(key)
        bar.update(1)
    bar.close()
    return MeanField(spec, X, blocks, upper, variances, keep)
