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

from ..spec import NetworkSpec, input_gram
from .kernel_map import kernel_map


class NonFiniteKernel(FloatingPointError):
    """The kernel map produced nan/inf (e.g. a covariance outside the domain of φ's closed form)."""


@dataclass
class MeanField:
    """Mean-field kernels: ``blocks[(a, b)]`` (a <= b, 0-based times) of shape (P, P).

    Equal-time blocks are computed on their upper triangle only and completed on first access.
    """

    spec: NetworkSpec
    X: np.ndarray
    raw: dict = field(repr=False)
    upper: set = field(default_factory=set, repr=False)  #: keys whose lower triangle is not filled yet

    @property
    def blocks(self) -> dict:
        for key in list(self.upper):
            self._complete(key)
        return self.raw

    def _complete(self, key):
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
            return self._complete((a, b)) if (a, b) in self.raw else np.zeros((self.P, self.P))
        return self.block(b, a).T

    @property
    def C(self) -> np.ndarray:
        """Dense C̄ of shape (T, T, P, P), C[t-1, s-1, mu, nu], assembled on access."""
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
        return np.stack([np.diag(self.raw[(a, a)]) for a in range(self.T)])


def mean_field(spec: NetworkSpec, X, progress: bool = False) -> MeanField:
    """Mean-field (GP) kernels of ``spec`` for inputs ``X`` ((P, D), or (P, T, D) for input='every')."""
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"spec must be a NetworkSpec (sf.DNN / sf.RNN), got {type(spec).__name__}")
    X = spec.check_inputs(X)
    km = kernel_map(spec.phi_fn)
    mask = spec.weight_mask()
    gs = spec.g_values()
    blocks: dict[tuple[int, int], np.ndarray] = {}
    upper: set = set()
    for hi in range(spec.T):  # shell max(a, b) = hi
        for a in range(hi + 1):
            if not spec.block_exists(a, hi):  # masked out (DNN cross-layer blocks)
                continue
            bias, w_in = spec.sigma_det_parts(a, hi)
            sdet = bias + w_in * input_gram(X, a, hi) if w_in else bias
            if a == 0:  # first hidden state: no weight-generated part
                blk = np.broadcast_to(sdet, (X.shape[0], X.shape[0])).copy()
            else:
                prev = blocks[(a - 1, hi - 1)]
                try:
                    blk = km.block(np.diag(blocks[(a - 1, a - 1)]), np.diag(blocks[(hi - 1, hi - 1)]), prev,
                                   sdet, mask[a, hi], gs[hi - 1] ** 2, symmetric=(a == hi), triangle=(a == hi))
                except FloatingPointError as err:
                    raise NonFiniteKernel(f"non-finite kernel in block ({a}, {hi}): {err}") from None
                if a == hi:
                    upper.add((a, hi))
            blocks[(a, hi)] = blk
        if progress:
            print(f"\rmean_field: shell {hi + 1}/{spec.T}", end="" if hi + 1 < spec.T else "\n", file=sys.stderr)
    return MeanField(spec, X, blocks, upper)
