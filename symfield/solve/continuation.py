"""Natural-parameter continuation with a secant predictor and step refinement.

``solve(s, guess)`` returns a solution at parameter s (raising on failure).  Starting from
``(s0, x0)`` the path visits the requested parameter values in order; a step that fails from the
predicted guess is retried from the current point, and a failed step is halved
(the intermediate value is inserted) down to ``min_step``.  A step whose solution differs from
the prediction by more than ``jump_tol`` (relative) even at the smallest step is recorded as
a jump (a fold of the branch: the solution left the branch it was following): the corrector
moved more than ``jump_tol`` times the secant predictor's displacement plus ``jump_floor`` (absolute: the
scatter of a sampled solution, which no step size shrinks).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ConvergenceError


@dataclass
class ContinuationPath:
    s: list = field(default_factory=list)
    x: list = field(default_factory=list)
    info: list = field(default_factory=list)
    jumps: list = field(default_factory=list)  # parameter values where the path jumped


def continue_in(solve, s0, x0, targets, min_step=1e-6, jump_tol=2.0, predictor=None, callback=None,
                label="continuation", previous=None, jump_floor: float = 0.0) -> ContinuationPath:
    """Follow ``solve`` from (s0, x0) through the parameter values ``targets`` (monotone order).

    ``predictor(x_prev, x_cur, s_prev, s_cur, s_next)`` may replace the secant guess (it must
    return a valid guess or None).  ``callback(s, x, info)`` is called after every accepted step.
    ``previous = (s_prev, x_prev)``: an earlier point of the branch, for the first secant step.
    """
    path = ContinuationPath([s0], [x0], [None])
    s_cur, x_cur = s0, x0
    s_prev, x_prev = previous if previous is not None else (None, None)
    history = []
    for target in targets:
        while s_cur != target:
            step = target - s_cur
            s_next = target
            while True:
                guess = None
                if x_prev is not None:
                    guess = (predictor or _secant)(x_prev, x_cur, s_prev, s_cur, s_next)
                try:
                    try:
                        x_new, info = solve(s_next, x_cur if guess is None else guess)
                    except ConvergenceError:
                        if guess is None:
                            raise
                        # the predictor may leave the domain: retry from the current point (the prediction
                        # is still used below to recognise a jump)
                        x_new, info = solve(s_next, x_cur)
                except ConvergenceError as err:
                    history.extend(err.history[-3:])
                    if abs(step) <= min_step:
                        raise ConvergenceError(f"{label}: no convergence at s = {s_next:.6g} even with step "
                                               f"{step:.3g}", history) from err
                    step /= 2
                    s_next = s_cur + step
                    continue
                # a jump: the corrector moves much further than the predictor did (on a smooth branch the
                # predictor error is O(step²) against a predicted displacement O(step))
                far = guess is not None and (np.linalg.norm(x_new - guess)
                                             > jump_tol * max(np.linalg.norm(guess - x_cur), 1e-12) + jump_floor)
                if far and abs(step) > min_step:  # refine: is it a jump or just a large step?
                    step /= 2
                    s_next = s_cur + step
                    continue
                if far:
                    path.jumps.append(s_next)
                break
            s_prev, x_prev, s_cur, x_cur = s_cur, x_cur, s_next, x_new
            path.s.append(s_cur)
            path.x.append(x_cur)
            path.info.append(info)
            if callback is not None:
                callback(s_cur, x_cur, info)
    return path


def _secant(x_prev, x_cur, s_prev, s_cur, s_next):
    if s_cur == s_prev:
        return None
    return x_cur + (x_cur - x_prev) * ((s_next - s_cur) / (s_cur - s_prev))
