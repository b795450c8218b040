"""symfield reproduce sequential-digits, quick settings (derivations/sequential_digits.py)."""
import json

import numpy as np
import pytest

pytest.importorskip("sklearn")
from symfield.cli import main  # noqa: E402

T = 8
UNSUPERVISED = (0, 2, 4, 6)   # 0-based steps without targets in the evidence task


def test_reproduce_sequential_digits_quick(tmp_path):
    pytest.importorskip("matplotlib")
    assert main(["reproduce", "sequential-digits", "--quick", "--no-progress", "--out", str(tmp_path),
                 "--P", "20", "40", "--P_test", "40", "--widths", "16", "32", "--burn", "300", "--samples", "15",
                 "--chains", "2", "--P_sweep", "2", "4", "8", "--P_sweep_test", "4", "--N_sweep", "32"]) == 0
    data = json.loads((tmp_path / "sequential_digits.json").read_text())
    for ext in ("png", "pdf", "svg", "nc"):
        assert (tmp_path / f"sequential_digits.{ext}").stat().st_size > 1000
    assert "N = 16, 32" in data["caption"] and "seed 0" in data["caption"]
    gp = data["gp"]
    # with a readout at the last step only, RNN and DNN are the same GP (equal-time kernels agree)
    np.testing.assert_allclose(gp["class"]["RNN last"]["mse"], gp["class"]["DNN last"]["mse"], rtol=1e-8)
    assert max(gp["class"]["RNN pooled"]["accuracy"]) > 0.8          # the task is learnable
    # a DNN's readouts are untied: at a step never trained on it predicts 0, so its test MSE there is the
    # mean squared target ((t+1)/T)^2 exactly; the RNN's shared readout does better at the late steps
    dnn, rnn = gp["evidence"]["DNN"]["mse_per_step"], gp["evidence"]["RNN"]["mse_per_step"]
    for t in UNSUPERVISED:
        assert dnn[t] == pytest.approx(((t + 1) / T) ** 2, rel=1e-9)
    assert rnn[6] < dnn[6] and rnn[4] < dnn[4]
    # trained networks approach the theory: the distance shrinks with N and is within reach of it
    for name, e in data["trained"]["nets"].items():
        th = np.array(e["theory_f"])
        assert np.all(np.isfinite(th))
        dev = [r["rms_dev_from_theory"] for r in e["trained"]]
        assert dev[-1] < 3 * e["trained"][-1]["rms_sem"] + 0.15, (name, dev)
    # the DNN's theory output at unsupervised steps is 0 (untied readout), the RNN's is not
    dnn_th = np.array(data["trained"]["nets"]["DNN"]["theory_f"])
    rnn_th = np.array(data["trained"]["nets"]["RNN"]["theory_f"])
    assert np.max(np.abs(dnn_th[:, list(UNSUPERVISED)])) < 1e-8 < np.max(np.abs(rnn_th[:, list(UNSUPERVISED)]))
    # test error against P: trained networks at every P (P = 8 beyond what the mu-P solver accepts), the theory
    # where it exists (P <= P_fl + P_fl_test = 6), and the two agree within the test-set error at N = 32
    te = data["test_error"]
    assert te["P"] == [2, 4, 8] and te["N"] == 32
    for name, e in te["nets"].items():
        assert e["theory_P"] == [2, 4] and np.all(np.isfinite(e["mse"])) and len(e["mse"]) == 3
        for P, th in zip(e["theory_P"], e["theory_mse"]):
            k = te["P"].index(P)
            assert abs(e["mse"][k] - th) < 3 * e["mse_sem"][k] + 0.1, (name, P, e["mse"][k], th)
