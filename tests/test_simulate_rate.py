"""Rate test (theory Sec. 8.9): finite-width kernels converge to the mean-field kernel like 1/N.

For each width N the mean squared deviation MSE(N) = <(K - C̄)²> over samples and all entries
(t, s, mu, nu) is measured for the empirical kernel K̂ and the auxiliary kernel C.  The log-log
slope of MSE versus N, fitted by weighted least squares with delta-method variances
Var(log MSE) = Var(d_k)/(S MSE²) (widths use independent seeds), must be -1.  The O(1/N²) part of
the variance steepens the fitted slope slightly (≈ -1.02 for the RNN empirical kernel, measured
with ~10x more samples), well inside the tolerance.
"""
import numpy as np
import pytest

from symfield.simulate import prior
from symfield.spec import DNN, RNN
from symfield.validation import loglog_slope

mean_field = pytest.importorskip("symfield.theory.mean_field").mean_field

WIDTHS = np.array([64, 128, 256, 512, 1024])
SAMPLES = {"rnn": np.array([800, 600, 400, 240, 160]),  # per-sample cost ~ N² (RNN: one W, DNN: T-1)
           "dnn": np.array([400, 300, 200, 120, 80])}
SEED = 1000
X = np.array([[1.0, 0.3, -0.5], [0.2, -1.0, 0.7]])
X = X / np.linalg.norm(X, axis=1, keepdims=True) * np.sqrt(3.0)  # x·x/D = 1: C̄^(1) = 1 + σ²
SPECS = {"rnn": RNN(8, phi="erf", g=1.2, sigma_b2=0.1, bias="static"),
         "dnn": DNN(5, phi="erf", g=1.2, sigma_b2=0.1)}


def kernel_mse(spec, X, C, widths, samples, seed):
    """MSE(N) = <(K - C̄)²> over samples and entries for K̂ ('emp') and the auxiliary field ('aux') at each
    width (independent seeds seed + i), the delta-method Var(log MSE), and the last ensemble."""
    mse, var_log = {"emp": [], "aux": []}, {"emp": [], "aux": []}
    for i, (N, S) in enumerate(zip(widths, samples)):
        ens = prior(spec, X, int(N), int(S), seed=seed + i)  # independent widths
        for kind in mse:
            d = ((ens.kernel(kind) - C) ** 2).mean(axis=(1, 2, 3, 4))  # per-sample squared deviation
            mse[kind].append(d.mean())
            var_log[kind].append(d.var(ddof=1) / S / d.mean() ** 2)
    return mse, var_log, ens


@pytest.fixture(scope="module", params=sorted(SPECS))
def rates(request):
    spec = SPECS[request.param]
    C = mean_field(spec, X).C
    out = {}
    mse, var_log, _ = kernel_mse(spec, X, C, WIDTHS, SAMPLES[request.param], SEED)
    for kind in mse:
        slope, se = loglog_slope(WIDTHS, mse[kind], var_log[kind])
        out[kind] = (slope, se, WIDTHS * np.array(mse[kind]))
        print(f"\n{request.param} {kind}: slope {slope:.3f} ± {se:.3f}; N·MSE {np.round(out[kind][2], 4)}")
    return request.param, out


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["emp", "aux"])
def test_kernel_error_falls_like_one_over_width(rates, kind):
    arch, out = rates
    slope, se, n_mse = out[kind]
    assert se < 0.05, f"{arch} {kind}: slope too poorly determined (se={se:.3f})"
    assert abs(slope + 1.0) < 3.5 * se, f"{arch} {kind}: slope {slope:.3f} ± {se:.3f}"
    assert abs(slope + 1.0) < 0.15
    assert np.all(n_mse > 0) and n_mse.max() / n_mse.min() < 2.0  # N·MSE flat over a 16x range
