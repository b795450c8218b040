"""The control variate of the Monte Carlo tilted measure (feature_learning.tilted_mc): the same expectations as
the exact quadrature of a three-dimensional measure, with standard errors that match the seed-to-seed spread and
are smaller than those of plain self-normalised importance sampling."""
import sys
from pathlib import Path

import numpy as np
import pytest

import symfield as sf
from symfield.errors import SpecError
from symfield.theory.feature_learning.tilted_mc import TiltedMC, gaussian_phiphi
from symfield.theory.feature_learning.tilted_quadrature import TiltedQuadrature

S = np.array([[1.3, 0.2, 0.1], [0.2, 0.8, 0.3], [0.1, 0.3, 1.0]])
CH = np.array([[0.3, 0.1, 0.2], [0.1, -0.4, 0.2], [0.2, 0.2, 0.25]])
ARCSINE = lambda K: 2 / np.pi * np.arcsin(2 * K / np.sqrt(np.outer(1 + 2 * np.diag(K), 1 + 2 * np.diag(K))))


def test_gaussian_average_of_erf_is_the_arcsine_kernel():
    erf = sf.RNN(2, phi="erf").phi_fn
    np.testing.assert_allclose(gaussian_phiphi(erf, S), ARCSINE(S), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("phi", ["erf", "tanh", "relu"])
def test_control_variate_estimates_against_quadrature(phi):
    f = sf.RNN(2, phi=phi, scaling="mean_field").phi_fn
    ref = TiltedQuadrature(f, 60).tilted(S, CH)
    runs = {c: [TiltedMC(f, samples=4000, seed=k, control=c).tilted(S, CH, errors=True) for k in range(12)]
            for c in (True, False)}
    for c, ms in runs.items():
        est = np.array([m.phiphi for m in ms])
        err = np.array([m.stderr for m in ms])
        z = (est - ref.phiphi) / err
        assert np.abs(z).max() < 5 and np.sqrt((z ** 2).mean()) < 1.6, (c, z)
        spread = est.std(0, ddof=1)
        assert 0.6 < np.sqrt((spread ** 2).mean() / (err ** 2).mean()) < 1.5, c  # the stderr is the spread
        hh = np.array([m.hh for m in ms])
        assert np.abs(hh.mean(0) - ref.hh).max() < 5 * hh.std(0, ddof=1).max() / np.sqrt(12) + 1e-3
    ratio = np.sqrt(np.mean([m.stderr ** 2 for m in runs[True]]) / np.mean([m.stderr ** 2 for m in runs[False]]))
    assert ratio < 0.45, ratio  # measured 0.16 (erf), 0.13 (tanh), 0.36 (relu): the proposal is close to the measure


def test_frozen_points_keep_the_jacobian_and_the_option_is_checked():
    erf = sf.RNN(2, phi="erf", scaling="mean_field").phi_fn
    a, b = TiltedMC(erf, 2000, 1, control=True), TiltedMC(erf, 2000, 1, control=False)
    for mc in (a, b):
        mc.freeze(S, CH)
    dS, dC = 0.01 * np.eye(3), 0.02 * np.ones((3, 3))
    ma, mb = a.tilted(S + dS, CH), b.tilted(S + dS, CH)
    for x, y in zip(ma.jvp(dS, dC), mb.jvp(dS, dC)):
        if x is not None:
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)
    assert np.abs(ma.phiphi - mb.phiphi).max() > 1e-4  # the constant correction of the frozen points
    tanh = sf.RNN(2, phi="tanh").phi_fn
    assert not TiltedMC(erf).control and TiltedMC(tanh, control=True).control  # off by default
    net = sf.RNN(3, phi="tanh", bias="none", scaling="mean_field")
    with pytest.raises(SpecError, match="control"):
        sf.feature_learning(net, np.eye(1), np.array([[0, 0, 1.0]]), estimator={"control": "yes"})


def test_benchmark_quick_mode():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_fl_control_variate import main
    out = main(["--quick", "--repeat", "1"])
    assert out["ratio"][0.5] < 0.5 and out["map"][0.5][True]["Chat"] > 0


def test_without_the_gaussian_kernel_the_plain_estimate_is_returned_with_a_warning(monkeypatch):
    from symfield.errors import AccuracyError
    from symfield.theory.feature_learning import tilted_mc

    class Failing:
        def expect(self, *args, **kw):
            raise AccuracyError("no rule reaches the accuracy here")

    erf = sf.RNN(2, phi="erf", scaling="mean_field").phi_fn
    plain = TiltedMC(erf, 2000, 3).tilted(S, CH)
    monkeypatch.setattr(tilted_mc, "kernel_map", lambda phi: Failing())
    with pytest.warns(UserWarning, match="control variate is off"):
        got = TiltedMC(erf, 2000, 3, control=True).tilted(S, CH)
    np.testing.assert_array_equal(got.phiphi, plain.phiphi)
