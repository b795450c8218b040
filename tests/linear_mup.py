"""Shared set-up of the μP feature-learning tests: linear networks, one pattern, endpoint targets."""
import numpy as np

import symfield as sf

X1 = np.ones((1, 1))  # one pattern, |x|²/D = 1


def rnn(T, **kw):
    return sf.RNN(T, phi="linear", bias="none", scaling="mean_field", **kw)


def dnn(T, **kw):
    return sf.DNN(T, phi="linear", bias="none", scaling="mean_field", **kw)


def endpoint(T, y, P=1):
    """Targets (P, T): y at the last step, zero elsewhere."""
    Y = np.zeros((P, T))
    Y[:, -1] = y
    return Y
