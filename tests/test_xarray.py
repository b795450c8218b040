"""Labelled results: every result object's .to_xarray() (dims t, s, mu, nu, sample; the spec in attrs),
round-tripped through NetCDF (scipy engine)."""
import numpy as np
import pytest

import symfield as sf

xr = pytest.importorskip("xarray")
pytest.importorskip("scipy.io")

from symfield.labelled import spec_attrs, spec_from_attrs  # noqa: E402

NET = sf.RNN(3, phi="erf", g=1.2, sigma_b2=0.1)
X = np.random.default_rng(0).standard_normal((2, 3))


def _roundtrip(ds, tmp_path):
    path = tmp_path / "result.nc"
    ds.to_netcdf(path, engine="scipy")
    with xr.open_dataset(path, engine="scipy") as back:
        back = back.load()
    xr.testing.assert_allclose(ds, back)
    assert back.attrs["conventions"] == ds.attrs["conventions"]
    return back


def _check_spec(ds, spec):
    back = spec_from_attrs(ds.attrs)
    assert back == spec or spec_attrs(back)["spec"] == ds.attrs["spec"]   # a list g comes back as a tuple
    np.testing.assert_array_equal(back.g_values(), spec.g_values())
    np.testing.assert_array_equal(back.branch_mask(), spec.branch_mask())
    np.testing.assert_array_equal(back.leak_values(), spec.leak_values())
    assert ds.attrs["T"] == spec.T and ds.attrs["spec_label"] == spec.label


def test_mean_field_dims_values_and_spec(tmp_path):
    mf = sf.mean_field(NET, X)
    ds = _roundtrip(mf.to_xarray(), tmp_path)
    assert ds["C"].dims == ("t", "s", "mu", "nu") and list(ds["t"].values) == [0, 1, 2]
    np.testing.assert_array_equal(ds["C"].sel(t=2, s=1).values, mf.block(2, 1))
    np.testing.assert_array_equal(ds["variance"].values, mf.diagonal())
    _check_spec(ds, NET)
    assert spec_from_attrs(ds.attrs) == NET
    last = sf.mean_field(sf.DNN(3, phi="erf"), X, keep="last").to_xarray()
    assert np.isnan(last["C"].sel(t=0, s=1)).all() and (last["C"].sel(t=0, s=2) == 0).all()


def test_per_step_spec_round_trips():
    spec = sf.NetworkSpec(T=3, g=[1.0, 2.0], share={"W": "fresh"}, phi="tanh", leak=0.5)
    ds = sf.mean_field(spec, X).to_xarray()
    _check_spec(ds, spec)


def test_one_loop(tmp_path):
    ol = sf.one_loop(NET, X)
    ds = _roundtrip(ol.to_xarray(), tmp_path)
    np.testing.assert_allclose(ds["mean_shift"].values, ol.mean_shift)
    np.testing.assert_allclose(ds["variance"].values, ol.variance())
    assert {"mean_shift_tadpole", "mean_shift_weight_sharing"} <= set(ds.data_vars)
    assert ds.attrs["result"] == "OneLoop"


def test_simulators(tmp_path):
    ens = sf.simulate.prior(NET, X, N=8, samples=3, seed=1)
    ds = _roundtrip(ens.to_xarray(), tmp_path)
    assert ds["emp"].dims == ("sample", "t", "s", "mu", "nu") and ds.sizes["sample"] == 3
    np.testing.assert_array_equal(ds["aux"].values, ens.aux)
    assert ds.attrs["N"] == 8 and ds.attrs["seed"] == str(ens.seed)
    km = sf.simulate.kernel_moments(NET, X, N=8, samples=4, seed=1)
    ds = _roundtrip(km.to_xarray(), tmp_path)
    np.testing.assert_array_equal(ds["mean_emp"].values, km.C)
    _check_spec(ds, NET)


def test_posterior_samples(tmp_path):
    net = sf.RNN(2, phi="linear", bias="none", scaling="mean_field")
    post = sf.simulate.posterior(net, X[:1], np.array([[0.0, 1.0]]), N=4, seed=2, samples=5, burn=5, chains=2,
                                 leapfrog=4)
    ds = _roundtrip(post.to_xarray(), tmp_path)
    assert ds["f"].dims == ("sample", "mu", "t")
    np.testing.assert_array_equal(ds["C"].values, post.C)
    np.testing.assert_array_equal(ds["chain"].values, post.chain)


def test_gp_prediction(tmp_path):
    pred = sf.gp.predict(NET, X, np.array([1.0, -1.0]), X[:1] + 0.1, noise=0.01, return_cov=True)
    ds = _roundtrip(pred.to_xarray(), tmp_path)
    np.testing.assert_array_equal(ds["mean"].values, pred.mean)
    assert ds["cov"].dims == ("mu", "nu") and ds.attrs["readout"] == "2"   # the last time, 0-based
    several = sf.gp.predict(NET, X, np.ones((2, 2)), X[:1], noise=0.01, readout=[0, 2], return_cov=True)
    ds = _roundtrip(several.to_xarray(), tmp_path)
    assert ds["mean"].dims == ("mu", "t") and list(ds["t"].values) == [0, 2]
    np.testing.assert_allclose(ds["cov"].sel(t=2, s=2).values, several.cov[1:, 1:])


def test_feature_learning(tmp_path):
    net = sf.RNN(T=2, phi="linear", g=1.0, bias="none", scaling="mean_field")
    fl = sf.feature_learning(net, np.ones((1, 1)), np.array([[0.0, 1.0]]))
    ds = _roundtrip(fl.to_xarray(), tmp_path)
    np.testing.assert_allclose(ds["C"].values, fl.C)
    assert ds.attrs["phase"] == fl.phase and ds["prediction"].dims == ("mu", "t")
