"""symfield.solve.continue_in: the jump test against a sampled solution's scatter (``jump_floor``)."""
import numpy as np

from symfield.solve import continue_in


def _sampled(jump_at=None):
    """x(s) = (s, 2s) plus an offset of ±0.1 that changes sign at every call (a new sample); +3 past jump_at."""
    calls = [0]

    def solve(s, guess):
        calls[0] += 1
        x = np.array([s, 2 * s]) + 0.1 * (-1) ** calls[0]
        if jump_at is not None and s > jump_at:
            x = x + 3.0
        return x, None
    return solve, calls


def test_a_sampling_offset_is_no_jump_with_the_floor_and_is_one_without():
    targets = list(np.linspace(0.05, 1.0, 20))
    solve, calls = _sampled()
    bare = continue_in(solve, 0.0, np.zeros(2), targets, min_step=1e-3)
    assert bare.jumps and calls[0] > 40  # refined down to min_step at every flagged step
    solve, calls = _sampled()
    floored = continue_in(solve, 0.0, np.zeros(2), targets, min_step=1e-3, jump_floor=0.5)
    assert floored.jumps == [] and calls[0] == len(targets) and floored.s[-1] == 1.0


def test_a_real_jump_is_still_found_with_the_floor():
    solve, _ = _sampled(jump_at=0.5)
    path = continue_in(solve, 0.0, np.zeros(2), list(np.linspace(0.05, 1.0, 20)), min_step=1e-3, jump_floor=0.5)
    assert len(path.jumps) == 1 and 0.5 < path.jumps[0] <= 0.55
