"""Figure style and result files shared by every derivation script (matplotlib: ``pip install symfield[plot]``).

One set of functions, so every figure looks alike and carries what a referee asks for:

* :func:`pyplot` — matplotlib on the Agg backend with the house style (Okabe–Ito colour-blind-safe
  palette as the colour cycle, readable font sizes), or None if matplotlib is missing;
* :data:`PALETTE` / :func:`colors` — the Okabe–Ito colours by name and a list of n distinct ones;
* :func:`panel_letters` — bold (a), (b), … above the top-left corner of each panel;
* :func:`legend_outside` — a legend beside or below the axes, never on the data;
* :func:`caption` — the sentence "N = …, … samples, seed …" for the JSON and the footnote;
* :func:`save` — footnote, tight bounding box, PNG + PDF + SVG;
* :func:`write_results` — JSON (with the caption), a NetCDF of the numeric arrays (if xarray is
  installed; scipy engine), and the figure.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

#: Okabe & Ito (2008) colour-blind-safe palette.
PALETTE = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
           "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7"}
#: Line styles to tell apart curves that may coincide (draw later ones dashed over earlier solid ones).
LINESTYLES = ("-", (0, (5, 2)), (0, (1, 1.5)), (0, (6, 2, 1, 2)))
#: Cycle order: strong, distinct colours first; yellow (low contrast on white) last.
_CYCLE = ("blue", "vermillion", "green", "orange", "purple", "sky", "black", "yellow")
FORMATS = ("png", "pdf", "svg")

_STYLE = {"axes.prop_cycle": None, "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9,
          "legend.fontsize": 7.5, "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.frameon": False,
          "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.6,
          "lines.markersize": 4, "savefig.dpi": 150, "svg.fonttype": "none", "pdf.fonttype": 42,
          "axes.formatter.min_exponent": 3}


def colors(n: int | None = None) -> list:
    """The palette's colours in cycle order (the first ``n``, repeating if n > 8)."""
    seq = [PALETTE[k] for k in _CYCLE]
    return seq if n is None else [seq[i % len(seq)] for i in range(n)]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend with the house style, or None (with a note on stderr)
    if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from cycler import cycler
    except ImportError:
        print("matplotlib not installed (pip install symfield[plot]): no figure written", file=sys.stderr)
        return None
    plt.rcParams.update({**_STYLE, "axes.prop_cycle": cycler(color=colors())})
    return plt


def panel_letters(axes, x: float = -0.02, y: float = 1.02) -> None:
    """Label the panels (a), (b), … in reading order, bold, just above each panel's top-left corner."""
    for k, ax in enumerate(np.ravel(axes)):
        ax.text(x, y, f"({chr(ord('a') + k)})", transform=ax.transAxes, fontweight="bold",
                fontsize=10, ha="right", va="bottom")


def legend_outside(ax, where: str = "right", ncol: int = 1, **kw):
    """A legend outside the axes (``where``: 'right' of the panel or 'below' it), so it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if where == "right":
        return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), ncol=ncol,
                         borderaxespad=0.0, **kw)
    if where == "below":
        return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol,
                         borderaxespad=0.0, **kw)
    raise ValueError(f"where must be 'right' or 'below', got {where!r}")


def caption(N=None, samples=None, seed=None, **extra) -> str:
    """The sentence naming the widths, the ensemble sizes and the seeds (plus ``extra`` key = value
    items in order), e.g. ``caption(N=512, samples=150, seed=1)`` ->
    'N = 512; 150 samples per ensemble; seed 1'."""
    def fmt(v):
        if isinstance(v, (list, tuple, np.ndarray)):
            return ", ".join(fmt(x) for x in v)
        return f"{v:g}" if isinstance(v, float) else str(v)

    parts = []
    if N is not None:
        parts.append(f"N = {fmt(N)}")
    if samples is not None:
        parts.append(f"{fmt(samples)} samples per ensemble")
    if seed is not None:
        parts.append(f"seed {fmt(seed)}")
    parts += [f"{k.replace('_', ' ')} = {fmt(v)}" for k, v in extra.items()]
    return "; ".join(parts)


def save(fig, path, dpi: int = 150, note: str | None = None) -> list:
    """Add the footnote ``note`` (bottom left, small), write ``path`` as PNG and, beside it, PDF and SVG
    (tight bounding box, so legends outside the axes are kept); close the figure; return the paths."""
    import matplotlib.pyplot as plt
    path = Path(path)
    fig.tight_layout()
    if note:
        fig.text(0.005, -0.01, note, ha="left", va="top", fontsize=7, color="0.25", wrap=True)
    written = []
    for fmt in FORMATS:
        p = path.with_suffix(f".{fmt}")
        fig.savefig(p, dpi=dpi, bbox_inches="tight", pad_inches=0.05)
        written.append(p)
    plt.close(fig)
    return written


# ------------------------------------------------------------------ result files
def _numeric_arrays(data, prefix: str = "") -> dict:
    """Every numeric leaf of the nested dict/list ``data`` that forms a rectangular array (a number, or
    nested lists of numbers), keyed by its path joined with '__' (NetCDF-safe names); lists of dicts or
    ragged lists are entered item by item, strings and booleans skipped."""
    out = {}
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, (bool, str)) or data is None:
        return out
    else:
        try:
            arr = np.asarray(data, dtype=float)
        except (TypeError, ValueError):   # ragged, or holding dicts / strings
            arr = None
        if arr is not None:
            if arr.size:
                name = prefix or "value"
                out[f"v_{name}" if name[0].isdigit() else name] = arr
            return out
        if not isinstance(data, (list, tuple)):
            return out
        items = enumerate(data)
    for k, v in items:
        name = re.sub(r"[^0-9A-Za-z_]", "_", str(k))
        out.update(_numeric_arrays(v, f"{prefix}__{name}" if prefix else name))
    return out


def write_netcdf(path: Path, data: dict, attrs: dict) -> bool:
    """Write the numeric arrays of ``data`` to ``path`` (NetCDF3 via xarray's scipy engine; dims
    named ``<variable>_i<k>``); False with a notice on stderr if xarray is not installed."""
    try:
        import xarray as xr
    except ImportError:
        print("xarray not installed (pip install symfield[xarray]): no NetCDF written", file=sys.stderr)
        return False
    arrays = _numeric_arrays(data)
    ds = xr.Dataset({name: ([f"{name}_i{k}" for k in range(a.ndim)], a) for name, a in arrays.items()})
    ds.attrs.update({k: (v if isinstance(v, (str, int, float)) and not isinstance(v, bool) else json.dumps(v, default=str))
                     for k, v in attrs.items()})
    ds.to_netcdf(path, engine="scipy")
    return True


def write_results(out: Path, stem: str, data: dict, figure, caption: str | None = None) -> None:
    """Write ``out/stem.json`` (``data`` with ``data["caption"] = caption``), ``out/stem.nc`` (the numeric
    arrays of ``data``, see :func:`write_netcdf`) and, via ``figure(path) -> bool``, ``out/stem.png`` (+ .pdf,
    .svg); print what was written (with ``data["seconds"]`` if present)."""
    out = Path(out)
    if caption is not None:
        data["caption"] = caption
    json_path, png_path, nc_path = out / f"{stem}.json", out / f"{stem}.png", out / f"{stem}.nc"
    json_path.write_text(json.dumps(data, indent=1, default=float))
    wrote_nc = write_netcdf(nc_path, data, {"title": stem, "caption": data.get("caption", ""),
                                            "parameters": data.get("parameters", {})})
    wrote = figure(png_path)
    took = f" ({data['seconds']:.0f} s)" if "seconds" in data else ""
    files = [str(json_path)] + ([str(nc_path)] if wrote_nc else []) + \
        ([str(png_path.with_suffix(f".{f}")) for f in FORMATS] if wrote else [])
    print("wrote " + ", ".join(files) + took)
