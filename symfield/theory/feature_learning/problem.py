"""The μP task lives in :mod:`symfield.task` (shared with the posterior sampler); re-exported here."""
from ...task import (FLProblem, READOUTS, check_kappa, check_supervised, check_targets,  # noqa: F401
                     problem, readout_mask)
