"""Shared by the response and template-derivative tests: the 25-digit mpmath template grid
(derivations/template_grid.py, stored in tests/data/template_grid.json) and the central-difference check of
theory.response against sf.mean_field along an input path."""
import importlib
import json
import os
import sys

import numpy as np

import symfield as sf
from symfield.gp import output_kernel
from symfield.theory.response import response

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "derivations"))
grid = importlib.import_module("template_grid")
with open(os.path.join(HERE, "data", "template_grid.json")) as _fh:
    RECORDS = json.load(_fh)
#: a stored reference is a 25-digit value rounded to a double
REF_FLOOR = 1e-15

X3 = np.array([[1.0, 0.3, -0.5], [0.2, -1.0, 0.7], [0.4, 0.4, 0.9]])
V3 = np.array([[0.3, -0.2, 0.1], [0.0, 0.5, -0.4], [-0.6, 0.1, 0.2]])  # direction of the input path


def response_and_differences(spec, X, V, h):
    """The response's prediction of d/dε C̄_tt and K^out along X + εV, Σ_{κ<=λ} response[κλ] · dC̄_11[κλ]/dε,
    beside central differences of sf.mean_field / output_kernel with step h:
    (response, ours_hidden, fd_hidden, ours_out, fd_out)."""
    res = response(spec, X)
    dC11 = spec.g_in ** 2 * (X @ V.T + V @ X.T) / X.shape[1]
    coef = dC11[res.pairs[:, 0], res.pairs[:, 1]]
    plus, minus = sf.mean_field(spec, X + h * V), sf.mean_field(spec, X - h * V)
    fd_hidden = (plus.equal_time() - minus.equal_time()) / (2 * h)
    fd_out = (output_kernel(spec, X + h * V, mf=plus) - output_kernel(spec, X - h * V, mf=minus)) / (2 * h)
    return (res, np.einsum("k,ktpq->tpq", coef, res.hidden), fd_hidden,
            np.einsum("k,kpq->pq", coef, res.output), fd_out)
