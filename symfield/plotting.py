"""Optional matplotlib access for the derivation scripts (install with ``pip install symfield[plot]``)."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, or None (with a note on stderr) if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install symfield[plot]): no figure written", file=sys.stderr)
        return None
    return plt


def save(fig, path, dpi: int = 120) -> None:
    """Tight layout, write ``path`` at ``dpi``, close the figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    fig.clf()
    import matplotlib.pyplot as plt
    plt.close(fig)


def write_results(out: Path, stem: str, data: dict, figure) -> None:
    """Write ``out/stem.json`` and, via ``figure(path) -> bool``, ``out/stem.png``; print what was written
    (with ``data["seconds"]`` if present)."""
    json_path, png_path = out / f"{stem}.json", out / f"{stem}.png"
    json_path.write_text(json.dumps(data, indent=1, default=float))
    wrote = figure(png_path)
    took = f" ({data['seconds']:.0f} s)" if "seconds" in data else ""
    print(f"wrote {json_path}" + (f" and {png_path}" if wrote else "") + took)
