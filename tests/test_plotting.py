"""The shared figure style and result files (symfield/plotting.py)."""
import builtins
import json

import numpy as np
import pytest

from symfield import plotting

pytest.importorskip("matplotlib")


def test_palette_is_okabe_ito_and_the_colour_cycle():
    # Okabe & Ito (2008), "Color Universal Design": the eight published colours
    assert set(plotting.PALETTE.values()) == {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2",
                                              "#D55E00", "#CC79A7"}
    plt = plotting.pyplot()
    cycle = [c["color"] for c in plt.rcParams["axes.prop_cycle"]]
    assert cycle == plotting.colors() and plotting.colors(10)[8] == plotting.colors()[0]


def test_save_writes_png_pdf_svg_with_footnote_and_outside_legend(tmp_path):
    plt = plotting.pyplot()
    fig, axes = plt.subplots(1, 2)
    for ax in axes:
        ax.plot([0, 1], [0, 1], label="a line")
    leg = plotting.legend_outside(axes[1])
    plotting.panel_letters(axes)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    assert leg.get_window_extent(r).x0 >= axes[1].get_window_extent(r).x1      # beside the data, not on it
    assert [t.get_text() for t in axes[0].texts] == ["(a)"] and axes[1].texts[0].get_text() == "(b)"
    written = plotting.save(fig, tmp_path / "f.png", note=plotting.caption(N=[256, 512], samples=40, seed=3))
    assert [p.suffix for p in written] == [".png", ".pdf", ".svg"]
    assert all(p.stat().st_size > 1000 for p in written)
    assert "N = 256, 512; 40 samples per ensemble; seed 3" in (tmp_path / "f.svg").read_text()
    with pytest.raises(ValueError, match="where"):
        plotting.legend_outside(axes[0], where="inside")


def test_write_results_json_caption_and_netcdf(tmp_path, capsys):
    xr = pytest.importorskip("xarray")
    data = {"parameters": {"N": 64, "quick": True, "phi": "erf"}, "curve": {"10": [1.0, 2.0, 3.0]},
            "rows": [{"case": "a", "z": 0.5}, {"case": "b", "z": -1.5}], "ragged": [[1, 2], [3]], "M": [[1, 2], [3, 4]]}
    plotting.write_results(tmp_path, "res", data, lambda p: False, caption="N = 64; seed 1")
    js = json.loads((tmp_path / "res.json").read_text())
    assert js["caption"] == "N = 64; seed 1" and js["curve"]["10"] == [1.0, 2.0, 3.0]
    with xr.open_dataset(tmp_path / "res.nc", engine="scipy") as ds:
        np.testing.assert_array_equal(ds["curve__10"].values, [1.0, 2.0, 3.0])
        np.testing.assert_array_equal(ds["M"].values, [[1, 2], [3, 4]])
        assert float(ds["rows__1__z"]) == -1.5 and ds["ragged__1"].values.tolist() == [3.0]
        assert ds.attrs["caption"] == "N = 64; seed 1" and json.loads(ds.attrs["parameters"])["N"] == 64
    assert "res.nc" in capsys.readouterr().out


def test_write_results_without_xarray_says_so(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_xarray(name, *args, **kw):
        if name == "xarray":
            raise ImportError("no xarray")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_xarray)
    plotting.write_results(tmp_path, "res", {"a": [1.0]}, lambda p: False)
    assert (tmp_path / "res.json").exists() and not (tmp_path / "res.nc").exists()
    assert "xarray not installed" in capsys.readouterr().err
