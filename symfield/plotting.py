"""Optional matplotlib access for the derivation scripts (install with ``pip install symfield[plot]``)."""
from __future__ import annotations

import sys


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


def save(fig, path) -> None:
    """Tight layout, write ``path`` at 120 dpi, close the figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.clf()
    import matplotlib.pyplot as plt
    plt.close(fig)
