"""The compiled kernel map C_u = Σdet_u + M g² <φφ>, generated from the action's saddle point.

For φ with a closed form the generated scalar function is the right-hand side of the derived
equation itself, applied to every site pair of a block by a parallel Numba loop.  For φ
without one (tanh, a user's Lambda) the expectation E comes from the numeric dual kernel
(:mod:`symfield.gauss.dual`) and the generated function is the equation with E as an input.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

from .. import codegen
from ..codegen import hoist
from ..action import GPAction
from ..action import template as tp
from ..gauss import Nonlinearity
from ..gauss.panels import MAX_VARIANCE

_EMPTY = np.zeros((1, 1))

_DRIVERS = '''
@njit(cache=True, error_model="numpy", inline="always")
def _row(i, j0, a1, a2, a12, R, Q, sconst, sblock, has_block, m, g2, out):
    """Fill out[i, j0:]; return how many entries are not finite (v - v != 0 for nan and inf)."""
    # 1-D views from j0 and loops from 0, with the branch outside them: so LLVM vectorises (a loop
    # starting at a run-time j0 over 2-D indices does not)
    c12 = a12[i, j0:]
    c22 = a2[j0:]
    o = out[i, j0:]
{views}
    bad = 0
    if has_block:
        sb = sblock[i, j0:]
        for j in range(o.shape[0]):
            v = {call_block}
            o[j] = v
            bad += (v - v) != 0.0
    else:
        for j in range(o.shape[0]):
            v = {call_const}
            o[j] = v
            bad += (v - v) != 0.0
    return bad


@njit(cache=True, error_model="numpy")
def _rows(lo, hi, a1, a2, a12, R, Q, sconst, sblock, has_block, m, g2, triangle, out):
    """Rows lo..hi-1 (from the diagonal on if ``triangle``); number of non-finite entries."""
    bad = 0
    if triangle:  # separate loops: a start index selected at run time keeps LLVM from vectorising
        for i in range(lo, hi):
            bad += _row(i, i, a1, a2, a12, R, Q, sconst, sblock, has_block, m, g2, out)
    else:
        for i in range(lo, hi):
            bad += _row(i, 0, a1, a2, a12, R, Q, sconst, sblock, has_block, m, g2, out)
    return bad


@njit(cache=True, error_model="numpy", parallel=True)
def _parallel(a1, a2, a12, R, Q, sconst, sblock, has_block, m, g2, triangle, out):
    """Blocks of rows of equal work (equal area of the triangle) on all threads."""
    n = a12.shape[0]
    nb = min(n, 64)
    bad = np.zeros(nb, dtype=np.int64)
    for b in prange(nb):
        if triangle:  # row boundaries n(1 - sqrt(1 - b/nb)) split the triangle into equal areas
            lo = int(n * (1.0 - np.sqrt(1.0 - b / nb)))
            hi = int(n * (1.0 - np.sqrt(1.0 - (b + 1) / nb))) if b + 1 < nb else n
        else:
            lo = (b * n) // nb
            hi = ((b + 1) * n) // nb
        bad[b] = _rows(lo, hi, a1, a2, a12, R, Q, sconst, sblock, has_block, m, g2, triangle, out)
    return bad.sum()


@njit(cache=True, error_model="numpy", parallel=True)
def shells(lo, end, C, var, R, Q, sconst, m, g2):
    """Shells hi = lo..end-1 (lo >= 1) of a dense kernel C (T, T, P, P) in place, blocks of a shell on
    all threads.  Block (0, hi) = sconst[0, hi]; for a = 1..hi, C[a, hi] = sconst[a, hi] + m[a, hi]
    g2[hi-1] <φφ> from C[a-1, hi-1] and the variances var[a-1], var[hi-1] (hoisted factors R[t], Q[t]),
    and C[hi, a] = C[a, hi].T.  Fills var, R, Q at each hi.  Returns the number of non-finite entries."""
    P = C.shape[2]
    bad = 0
    for hi in range(lo, end):
        C[0, hi, :, :] = sconst[0, hi]
        C[hi, 0, :, :] = sconst[0, hi]
        nb = np.zeros(hi + 1, dtype=np.int64)
        for a in prange(1, hi + 1):
            out = C[a, hi]
            nb[a] = _rows(0, P, var[a - 1], var[hi - 1], C[a - 1, hi - 1], R[a - 1], Q[hi - 1], sconst[a, hi],
                          _EMPTY2, False, m[a, hi], g2[hi - 1], a == hi, out)
            if a == hi:
                mirror_upper(out)
            else:
                low = C[hi, a]
                for j in range(P):  # contiguous writes
                    for i in range(P):
                        low[j, i] = out[i, j]
        bad += nb.sum()
        for i in range(P):
            var[hi, i] = C[hi, hi, i, i]
        side_into(var[hi], R[hi], Q[hi])
    return bad


@njit(cache=True, error_model="numpy")
def side_into(a, R, Q):
    """Hoisted row (R[k, i], c11 = a[i]) and column (Q[k, i], c22 = a[i]) subexpressions, in place."""
    for i in range(a.shape[0]):
{side}


@njit(cache=True, error_model="numpy")
def side_values(a):
    """Hoisted row and column subexpressions at c11 = a[i] and c22 = a[i]: arrays (N_ROW, n), (N_COL, n)."""
    R, Q = np.empty((N_ROW, a.shape[0])), np.empty((N_COL, a.shape[0]))
    side_into(a, R, Q)
    return R, Q


@njit(cache=True)
def mirror_upper(out):
    """Copy the upper triangle of the square ``out`` into its lower triangle (in place, tiled)."""
    n = out.shape[0]
    for i0 in range(0, n, 64):
        for j0 in range(0, i0 + 1, 64):
            for i in range(i0, min(i0 + 64, n)):
                for j in range(j0, min(j0 + 64, i)):
                    out[i, j] = out[j, i]
'''

#: below this many entries a block is computed on one thread (thread start-up would dominate)
PARALLEL_MIN = 20000


def kernel_source(phi: Nonlinearity) -> str:
    """Source of the generated module for ``phi`` (open it to see what runs).

    Closed form: the derived right-hand side with its row-only (c11) and column-only (c22)
    subexpressions hoisted (:func:`symfield.codegen.hoist.separate`).  Otherwise E = <φφ> is an input.
    """
    sp_eq = GPAction.for_phi(phi).saddle_point()
    notes = [f"phi(x) = {phi.expr}", f"derived: {sp.sstr(sp_eq.kernel)}"]
    row_defs, col_defs = [], []
    if sp_eq.closed is not None:
        notes.append(f"closed:  {sp.sstr(sp_eq.closed)}")
        rhs, row_defs, col_defs = hoist.separate(sp_eq.closed.rhs, tp.c11, tp.c22)
        hoisted = [d[0] for d in row_defs + col_defs]
        args = (tp.c11, tp.c22, tp.c12, *hoisted, tp.sdet, tp.m, tp.g2)
        side = "".join(f", R[{k}, i]" for k in range(len(row_defs))) + \
            "".join(f", q{k}[j]" for k in range(len(col_defs)))
        call = "kernel_rhs(a1[i], c22[j], c12[j]" + side + ", {s}, m, g2)"
    else:
        args = (tp.E_val, tp.sdet, tp.m, tp.g2)
        rhs = sp_eq.kernel.rhs.subs(tp.E(tp.c11, tp.c22, tp.c12), tp.E_val)
        call = "kernel_rhs(c12[j], {s}, m, g2)"
    helpers: set = set()
    body = codegen.scalar_source("kernel_rhs", args, rhs, inline=True, helpers=helpers)
    sides = [codegen.scalar_source(f"row{k}", [tp.c11], e, inline=True, helpers=helpers)
             for k, (_, e) in enumerate(row_defs)]
    sides += [codegen.scalar_source(f"col{k}", [tp.c22], e, inline=True, helpers=helpers)
              for k, (_, e) in enumerate(col_defs)]
    fill = [f"        R[{k}, i] = row{k}(a[i])" for k in range(len(row_defs))]
    fill += [f"        Q[{k}, i] = col{k}(a[i])" for k in range(len(col_defs))]
    views = "\n".join(f"    q{k} = Q[{k}, j0:]" for k in range(len(col_defs)))
    drivers = _DRIVERS.format(call_block=call.format(s="sconst + sb[j]"), call_const=call.format(s="sconst"),
                              side="\n".join(fill) or "        pass", views=views)
    counts = f"N_ROW = {len(row_defs)}\nN_COL = {len(col_defs)}\n_EMPTY2 = np.zeros((1, 1))\n"
    return codegen.module_text("symfield.theory.kernel_map", "the kernel map, from the saddle point of the unified "
                               "action", [("counts", counts), ("helpers", codegen.helper_source(helpers)),
                                          ("kernel_rhs", body), ("sides", "\n\n".join(sides)), ("drivers", drivers)],
                               notes)


class KernelMap:
    """Compiled kernel map of one φ; ``block`` evaluates Σdet + m g² E on a (P1, P2) block."""

    def __init__(self, phi: Nonlinearity):
        self.phi = phi
        self.source = kernel_source(phi)
        self.module = codegen.load_module(self.source, f"kernel_{phi.key}")
        self.closed = phi.has_closed_form
        self._dual = None

    @property
    def dual(self):
        if self._dual is None:
            from ..gauss.dual import DualKernel
            self._dual = DualKernel(self.phi)
        return self._dual

    def block(self, d1, d2, c12, sdet, m: float, g2: float, symmetric: bool = False,
              triangle: bool = False, out: np.ndarray | None = None, sides=None) -> np.ndarray:
        """C = sdet + m g² <φ(u_i) φ(v_j)>, var u_i = d1[i], var v_j = d2[j], cov = c12[i, j].

        ``sdet`` is a scalar or a (P1, P2) array.  ``symmetric``: d1 is d2 and c12 is symmetric.
        ``triangle`` (with ``symmetric``): only the upper triangle of the result is computed and
        valid (only the upper triangle of c12 is read); complete it with :meth:`mirror`.
        ``out``: a C-contiguous float array of the block's shape to write into (reused memory).
        ``sides``: the hoisted factors (side_values(d1)[0], side_values(d2)[1]) if already known.
        Raises ``FloatingPointError`` if any computed entry is nan or inf.
        """
        if triangle and not symmetric:
            raise ValueError("triangle=True needs symmetric=True")
        d1 = np.ascontiguousarray(d1, dtype=float)
        d2 = np.ascontiguousarray(d2, dtype=float)
        c12 = np.ascontiguousarray(c12, dtype=float)
        if np.ndim(sdet) == 0:
            sconst, sblock, has_block = float(sdet), _EMPTY, False
        else:
            sconst, sblock, has_block = 0.0, np.ascontiguousarray(sdet, dtype=float), True
            if sblock.shape != c12.shape:
                raise ValueError(f"sdet has shape {sblock.shape}, expected {c12.shape}")
        if not self.closed:  # the compiled map takes E = <φφ> from the dual kernel
            top = max(d1.max(initial=0.0), d2.max(initial=0.0))
            if not top <= MAX_VARIANCE:  # (also nan) the panel rule's range, checked here to say which variance
                raise FloatingPointError(f"pre-activation variance {top:.3g} is above {MAX_VARIANCE:g}, the "
                                         f"largest the numeric dual kernel of phi={self.phi.name} integrates")
            if triangle:
                self.module.mirror_upper(c12 := c12.copy())
            c12 = np.ascontiguousarray(self.dual.pair_block(d1, d2, c12, symmetric=symmetric)) if m else \
                np.zeros(c12.shape)
        if out is None:
            out = np.empty(c12.shape)
        elif out.shape != c12.shape or out.dtype != float or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float array of shape {c12.shape}")
        if sides is not None:  # (row factors at d1, column factors at d2) from side_values, computed once
            R, Q = sides
        else:
            R, Q = self.module.side_values(d1)  # row factors at d1; column factors at d2 (= d1 if symmetric)
            if not symmetric:
                Q = self.module.side_values(d2)[1]
        args = (d1, d2, c12, R, Q, sconst, sblock, has_block, float(m), float(g2), bool(triangle), out)
        if c12.size < PARALLEL_MIN:
            bad = self.module._rows(0, c12.shape[0], *args)
        else:
            bad = self.module._parallel(*args)
        if bad:
            raise FloatingPointError(f"{bad} non-finite kernel entries for phi={self.phi.name} "
                                     "(a covariance outside the domain of the closed form, or overflow)")
        return out

    @property
    def n_row(self) -> int:
        """Number of hoisted row (c11-only) factors of the closed form."""
        return self.module.N_ROW

    @property
    def n_col(self) -> int:
        """Number of hoisted column (c22-only) factors of the closed form."""
        return self.module.N_COL

    def side_values(self, variances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hoisted (row, column) factors of the closed form at ``variances``: arrays (n_row, P), (n_col, P)."""
        return self.module.side_values(np.ascontiguousarray(variances, dtype=float))

    def shells(self, lo: int, end: int, C: np.ndarray, variances: np.ndarray, R: np.ndarray, Q: np.ndarray,
               sconst: np.ndarray, m: np.ndarray, g2: np.ndarray) -> int:
        """Shells lo..end-1 (lo >= 1) of a dense kernel C (T, T, P, P) in place (closed forms only):
        C[0, hi] = sconst[0, hi]; C[a, hi] = sconst[a, hi] + m[a, hi] g2[hi-1] <φφ> from C[a-1, hi-1];
        C[hi, a] = C[a, hi].T.  ``variances`` (T, P) and the hoisted factors R (T, n_row, P),
        Q (T, n_col, P) (:meth:`side_values`) must be set before ``lo``; they are filled up to
        ``end``.  Returns the number of non-finite entries."""
        if not self.closed:
            raise ValueError(f"shells() needs a closed form; phi={self.phi.name} has none")
        if lo < 1:
            raise ValueError("shells start at lo >= 1 (shell 0 is Σdet)")
        as_float = (np.ascontiguousarray(x, dtype=float) for x in (sconst, m, g2))
        return int(self.module.shells(lo, end, C, variances, R, Q, *as_float))

    def mirror(self, block: np.ndarray) -> np.ndarray:
        """Complete a ``triangle=True`` block in place and return it."""
        self.module.mirror_upper(block)
        return block

    def expect(self, d1, d2, c12, symmetric: bool = False) -> np.ndarray:
        """<φ(u_i) φ(v_j)> on a block (the kernel map with Σdet = 0, m g² = 1)."""
        return self.block(d1, d2, c12, 0.0, 1.0, 1.0, symmetric)


@lru_cache(maxsize=None)
def _kernel_map(key: str, phi: Nonlinearity) -> KernelMap:
    return KernelMap(phi)


def kernel_map(phi: Nonlinearity) -> KernelMap:
    """The (process-wide cached) compiled kernel map of ``phi``."""
    return _kernel_map(phi.key, phi)
