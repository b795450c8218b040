"""``sf.action(net, ...)``: the action of a declared network, chosen by ``net.scaling``.

* ``scaling="standard"``: :class:`~symfield.action.unified.GPAction` (NNGP action; no data needed).
* ``scaling="mean_field"``: :class:`~symfield.action.mean_field.MeanFieldAction` (μP).  Without data
  (``sf.action(net)``) it is the action of the symbolic default task (one pattern, endpoint
  supervision; Σdet entries, targets, κ and σ_v² are symbols in its equations); ``sf.action(net, X, Y,
  supervised=..., kappa=..., readout=...)`` is the action of that problem.
"""
from __future__ import annotations

from ..errors import SpecError, SpecTypeError
from ..spec import NetworkSpec


def action(spec: NetworkSpec, X=None, Y=None, *, supervised=None, kappa=1.0, readout=None):
    """The action of ``spec`` (module docstring); data arguments only for a mean-field (μP) network."""
    if not isinstance(spec, NetworkSpec):
        raise SpecTypeError(f"spec must be a NetworkSpec (sf.DNN / sf.RNN / sf.NetworkSpec), got {type(spec).__name__}")
    if spec.scaling == "mean_field":
        from .mean_field import MeanFieldAction
        return MeanFieldAction(spec, X, Y, supervised, kappa, readout)
    given = [name for name, v in (("X", X), ("Y", Y), ("supervised", supervised), ("readout", readout))
             if v is not None]
    if given:
        raise SpecError(f"{', '.join(given)}: the GP action (scaling='standard') takes no data; the task enters "
                         "through sf.gp / sf.mean_field. For the μP action declare scaling='mean_field'")
    from .unified import GPAction
    return GPAction(spec)
