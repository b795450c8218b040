"""Bayesian feature learning in the mean-field (μP) regime (arXiv:2602.15593), for any declared network.

    fl = feature_learning(spec, X, Y, supervised=sup, kappa=kappa)   # saddle point of S(C)/N, best branch
    critical_signal(spec, X, Y, supervised=sup, kappa=kappa)         # |y_S| where the symmetric branch destabilises

Modules: :mod:`.problem` (the data on sites), :mod:`.terms` (Σ(C), A(C), S/N: one formula each),
:mod:`.rules` (verified matrix rules), :mod:`.action` (linear action, gradient, Hessian),
:mod:`.blocks` (symmetric sector block by block), :mod:`.solver` (congruence-coordinate maximiser),
:mod:`.spectrum` (Hessian spectra, lag sectors), :mod:`.branches` (signal continuation, branches),
:mod:`.result`, :mod:`.symbolic` (explicit components, compiled), :mod:`.closed` (closed forms of the
endpoint task), :mod:`.tilted` (tilted single-neuron measure, any φ).
"""
from .branches import (SignalScan, closed_form_threshold, critical_signal, feature_learning, make_action,
                       signal_scan)
from .problem import FLProblem, problem
from .result import Branch, FeatureLearning, mirror

__all__ = ["Branch", "FLProblem", "FeatureLearning", "SignalScan", "closed_form_threshold", "critical_signal",
           "feature_learning", "make_action", "mirror", "problem", "signal_scan"]
