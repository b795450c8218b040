"""Every bad input is named (issue 10, part 4): a table of public entry points × arguments × bad values.

Each call must raise a :class:`~symfield.errors.SymfieldError` subclass whose message names the argument;
a raw numpy / scipy / numba / threadpoolctl error, a symfield error that does not name the argument, or a
bad value silently accepted is a failure.  ``python tests/test_bad_inputs.py`` prints the failing cases
(the count before and after the fixes is in the commit messages).
"""
import math
import sys

import numpy as np
import pytest

import symfield as sf
import symfield.simulate as sim
from symfield import cli, gp
from symfield.errors import SymfieldError

X = [[1.0, 0.2], [0.3, -0.5]]
Y = [[0.5], [-0.2]]
NET = sf.RNN(2)
MUP = sf.RNN(1, phi="linear", bias="none", scaling="mean_field")  # the μP action and feature learning

# bad values by kind of argument: label -> value
NUMBER = {"str": "1.0", "None": None, "bool": True, "nan": math.nan, "inf": math.inf, "-inf": -math.inf,
          "complex": 1 + 2j, "array": np.array([1.0, 2.0]), "huge_int": 10 ** 400}
POSITIVE = {**NUMBER, "negative": -1.5}
INT = {"str": "3", "None": None, "bool": True, "float": 2.5, "nan": math.nan, "inf": math.inf, "negative": -3,
       "complex": 2j, "huge_int": 2 ** 63, "huge_float": 2.0 ** 63, "array": np.array([2, 3])}
SEED = {"str": "1", "bool": True, "float": 2.5, "nan": math.nan, "negative": -1, "complex": 1j,
        "nested": [[1, 2]], "obj": object()}
ARRAY = {"str": "abc", "None": None, "nan": [[1.0, math.nan], [0.0, 1.0]], "inf": [[1.0, math.inf], [0.0, 1.0]],
         "complex": [[1j, 0.0], [0.0, 1.0]], "ragged": [[1.0], [1.0, 2.0]], "strings": [["a", "b"], ["c", "d"]],
         "wrong_ndim": np.ones((2, 2, 2, 2)), "empty": np.ones((0, 2)), "scalar": 3.0}
CHOICE = {"bad": "nonsense", "None": None, "int": 3, "bool": True}
FLAG = {"str": "yes", "None": None, "float": 0.5}


def only(table, *labels):
    return {k: table[k] for k in labels}


def without(table, *labels):
    return {k: v for k, v in table.items() if k not in labels}


def tiny_posterior(**kw):
    args = dict(N=4, samples=2, burn=2, chains=1, leapfrog=2, seed=0)
    args.update(kw)
    spec = args.pop("spec", MUP)
    return sim.posterior(spec, args.pop("X", X), args.pop("Y", Y), **args)


def tiny_feature_learning(fn=sf.feature_learning, **kw):
    spec = kw.pop("spec", MUP)
    return fn(spec, kw.pop("X", X), kw.pop("Y", Y), **kw)


# (entry point, argument, call(value), bad values)
CASES = [
    *[("RNN", f, (lambda f: lambda v: sf.RNN(2, **{f: v}))(f), vals) for f, vals in [
        ("g", POSITIVE), ("sigma_b2", POSITIVE), ("g_in", POSITIVE), ("g_out", POSITIVE),
        ("sigma_out2", POSITIVE), ("sigma_v", POSITIVE), ("leak", without(NUMBER, "None")), ("r", NUMBER), ("phi", CHOICE),
        ("input", CHOICE), ("bias", without(CHOICE, "None")), ("scaling", CHOICE), ("readout", CHOICE),
        ("share", {"str": "W", "list": [1, 2], "bad_key": {"Q": [[1]]}}),
        ("phi_params", {"str": "scale", "list": [1.0], "value_str": {"scale": "a"}, "value_nan": {"scale": math.nan},
                        "value_huge_int": {"scale": 2 ** 63}, "value_huge_float": {"scale": 2.0 ** 63},
                        "value_complex": {"scale": 1j}, "value_None": {"scale": None}, "unknown": {"nope": 1.0}})]],
    ("RNN", "T", lambda v: sf.RNN(v), INT),
    ("DNN", "T", lambda v: sf.DNN(v), INT),
    ("ResNet", "r", lambda v: sf.ResNet(3, r=v), NUMBER),
    ("NetworkSpec", "arch", lambda v: sf.NetworkSpec(v, 2), only(CHOICE, "bad", "bool")),
    ("convert_T", "applications_of_W", sf.convert_T, INT),
    ("as_dnn", "spec", sf.as_dnn, {"str": "rnn", "None": None}),
    ("get_phi", "phi", sf.get_phi, CHOICE),
    ("get_phi", "scale", lambda v: sf.get_phi("erf", scale=v), NUMBER),
    ("register_phi", "name", lambda v: sf.register_phi(v, "x"), {"None": None, "int": 3, "empty": ""}),
    ("register_phi", "expr", lambda v: sf.register_phi("bad_probe", v),
     {"None": None, "int_list": [1, 2], "unparsable": "x +* 2", "free_symbol": "x + y"}),
    ("set_memory_limit", "limit", sf.set_memory_limit,
     {"str": "lots", "bool": True, "nan": math.nan, "negative": -1, "complex": 1j, "list": [1]}),
    # ---- theory
    ("mean_field", "spec", lambda v: sf.mean_field(v, X), {"str": "rnn", "None": None}),
    ("mean_field", "X", lambda v: sf.mean_field(NET, v), ARRAY),
    ("mean_field", "keep", lambda v: sf.mean_field(NET, X, keep=v), CHOICE),
    ("mean_field", "progress", lambda v: sf.mean_field(NET, X, progress=v), {k: v for k, v in FLAG.items() if v is not None}),  # None: on at a terminal
    ("fixed_point", "spec", sf.fixed_point, {"str": "rnn", "None": None}),
    ("fixed_point", "q_in", lambda v: sf.fixed_point(NET, q_in=v), POSITIVE),
    ("fixed_point", "q_max", lambda v: sf.fixed_point(NET, q_max=v), POSITIVE),
    ("fixed_point", "critical_tol", lambda v: sf.fixed_point(NET, critical_tol=v), POSITIVE),
    ("length_map", "q1", lambda v: sf.length_map(NET, v, 3), POSITIVE),
    ("length_map", "steps", lambda v: sf.length_map(NET, 1.0, v), INT),
    ("length_map", "q_in", lambda v: sf.length_map(NET, 1.0, 3, q_in=v), POSITIVE),
    ("one_loop", "X", lambda v: sf.one_loop(NET, v), ARRAY),
    ("one_loop", "method", lambda v: sf.one_loop(NET, X, method=v), without(CHOICE, "None")),
    ("one_loop", "n_nodes", lambda v: sf.one_loop(NET, X, n_nodes=v),
     {"str": "many", "int": 3, "bad_value": {4: -1}, "nan_value": {4: math.nan}, "str_value": {4: "a"},
      "huge_value": {4: 2 ** 63}}),
    ("response", "X", lambda v: sf.response(NET, v), ARRAY),
    ("response", "pairs", lambda v: sf.response(NET, X, pairs=v),
     {"str": "all", "out_of_range": [(0, 5)], "negative": [(-1, 0)], "float": [(0.5, 1)], "flat": [0, 1],
      "None_pair": [None]}),
    ("response", "mf", lambda v: sf.response(NET, X, mf=v),
     {"str": "mf", "other_X": sf.mean_field(NET, 5 * np.array(X)), "other_spec": sf.mean_field(sf.RNN(2, g=2.0), X)}),
    ("optimal_r", "pair", lambda v: sf.optimal_r(sf.ResNet(2), X, pair=v),
     {"str": "ab", "out_of_range": (0, 7), "float": (0.5, 1), "one": (0,), "None": None}),
    ("optimal_r", "bounds", lambda v: sf.optimal_r(sf.ResNet(2), X, bounds=v),
     {"str": "ab", "reversed": (10.0, 1.0), "negative": (-1.0, 2.0), "nan": (math.nan, 1.0), "None": None,
      "one": (1.0,)}),
    ("optimal_r", "points", lambda v: sf.optimal_r(sf.ResNet(2), X, points=v), without(INT, "huge_int")),
    ("optimal_r", "xtol", lambda v: sf.optimal_r(sf.ResNet(2), X, xtol=v), POSITIVE),
    ("action", "spec", lambda v: sf.action(v), {"str": "rnn", "None": None}),
    ("action", "kappa", lambda v: sf.action(MUP, X, Y, kappa=v), POSITIVE),
    ("action", "X", lambda v: sf.action(MUP, v, Y), without(ARRAY, "None")),
    ("action", "Y", lambda v: sf.action(MUP, X, v), without(ARRAY, "None", "wrong_ndim", "scalar")),
    ("feature_learning", "X", lambda v: tiny_feature_learning(X=v), ARRAY),
    ("feature_learning", "Y", lambda v: tiny_feature_learning(Y=v), ARRAY),
    ("feature_learning", "kappa", lambda v: tiny_feature_learning(kappa=v), POSITIVE),
    ("feature_learning", "steps", lambda v: tiny_feature_learning(steps=v), INT),
    ("feature_learning", "gtol", lambda v: tiny_feature_learning(gtol=v), POSITIVE),
    ("feature_learning", "overshoot", lambda v: tiny_feature_learning(overshoot=v), POSITIVE),
    ("feature_learning", "method", lambda v: tiny_feature_learning(method=v), without(CHOICE, "None")),
    ("feature_learning", "supervised", lambda v: tiny_feature_learning(supervised=v),
     {"str": "last", "shape": np.ones((3, 3), bool), "nan": np.full((2, 1), math.nan)}),
    ("critical_signal", "s_max", lambda v: tiny_feature_learning(sf.critical_signal, s_max=v), POSITIVE),
    ("critical_signal", "gtol", lambda v: tiny_feature_learning(sf.critical_signal, gtol=v), POSITIVE),
    ("critical_signal", "xtol", lambda v: tiny_feature_learning(sf.critical_signal, xtol=v), POSITIVE),
    # ---- GP
    ("gp.output_kernel", "X", lambda v: gp.output_kernel(NET, v), ARRAY),
    ("gp.output_kernel", "time", lambda v: gp.output_kernel(NET, X, time=v), without(INT, "None")),
    ("gp.output_kernel", "mf", lambda v: gp.output_kernel(NET, X, mf=v),
     {"str": "mf", "other_X": sf.mean_field(NET, 5 * np.array(X))}),
    ("gp.predict", "X_train", lambda v: gp.predict(NET, v, [0.1, 0.2], X), ARRAY),
    ("gp.predict", "Y_train", lambda v: gp.predict(NET, X, v, X), without(ARRAY, "wrong_ndim")),
    ("gp.predict", "X_test", lambda v: gp.predict(NET, X, [0.1, 0.2], v), without(ARRAY, "empty")),
    ("gp.predict", "noise", lambda v: gp.predict(NET, X, [0.1, 0.2], X, noise=v), POSITIVE),
    ("gp.predict", "time", lambda v: gp.predict(NET, X, [0.1, 0.2], X, time=v), without(INT, "None")),
    ("gp.gp_predict", "K_train", lambda v: gp.gp_predict(v, np.eye(2), np.ones(2), [1.0, 2.0]), ARRAY),
    ("gp.gp_predict", "K_cross", lambda v: gp.gp_predict(np.eye(2), v, np.ones(2), [1.0, 2.0]),
     without(ARRAY, "empty")),
    ("gp.gp_predict", "K_test_diag", lambda v: gp.gp_predict(np.eye(2), np.eye(2), v, [1.0, 2.0]), ARRAY),
    ("gp.gp_predict", "Y", lambda v: gp.gp_predict(np.eye(2), np.eye(2), np.ones(2), v), ARRAY),
    # ---- simulators
    ("simulate.prior", "X", lambda v: sim.prior(NET, v, 4, 2, seed=0), ARRAY),
    *[("simulate.prior", a, (lambda a: lambda v: sim.prior(NET, X, **{"N": 4, "samples": 2, "seed": 0, a: v}))(a),
       INT) for a in ("N", "samples")],
    ("simulate.prior", "seed", lambda v: sim.prior(NET, X, 4, 2, seed=v), SEED),
    ("simulate.prior", "chunk", lambda v: sim.prior(NET, X, 4, 2, seed=0, chunk=v), without(INT, "None")),
    ("simulate.prior", "blas_threads", lambda v: sim.prior(NET, X, 4, 2, seed=0, blas_threads=v),
     without(INT, "None")),
    ("simulate.kernel_moments", "N", lambda v: sim.kernel_moments(NET, X, v, 2, seed=0), INT),
    ("simulate.kernel_moments", "samples", lambda v: sim.kernel_moments(NET, X, 4, v, seed=0), INT),
    ("simulate.kernel_moments", "seed", lambda v: sim.kernel_moments(NET, X, 4, 2, seed=v), SEED),
    ("simulate.draw_network", "N", lambda v: sim.draw_network(NET, v, 2, 0), INT),
    ("simulate.draw_network", "D", lambda v: sim.draw_network(NET, 4, v, 0), INT),
    ("simulate.draw_network", "seed", lambda v: sim.draw_network(NET, 4, 2, v), SEED),
    ("simulate.forward", "X", lambda v: sim.forward(NET, sim.draw_network(NET, 4, 2, 0), v), ARRAY),
    ("simulate.forward", "net", lambda v: sim.forward(NET, v, X), {"str": "net", "None": None}),
    *[("simulate.posterior", a, (lambda a: lambda v: tiny_posterior(**{a: v}))(a), INT) for a in
      ("N", "samples", "burn", "thin", "chains", "leapfrog", "eig_samples")],
    ("simulate.posterior", "seed", lambda v: tiny_posterior(seed=v), SEED),
    ("simulate.posterior", "step", lambda v: tiny_posterior(step=v), without(POSITIVE, "None") | {"zero": 0.0}),
    ("simulate.posterior", "target_accept", lambda v: tiny_posterior(target_accept=v), POSITIVE | {"one": 1.0}),
    ("simulate.posterior", "kappa", lambda v: tiny_posterior(kappa=v), POSITIVE),
    ("simulate.posterior", "blas_threads", lambda v: tiny_posterior(blas_threads=v), without(INT, "None")),
    ("simulate.posterior", "X", lambda v: tiny_posterior(X=v), ARRAY),
    ("simulate.posterior", "Y", lambda v: tiny_posterior(Y=v), ARRAY),
]

# values that are valid for an argument although they are in its bad table (documented meanings)
VALID = {("response", "pairs", "flat"),  # one pair (mu, nu)
         ("ResNet", "r", "array"),  # T - 1 = 2 per-step values
         ("simulate.kernel_moments", "seed", "nested"),  # nested entropy words: a valid numpy seed there
         ("simulate.prior", "chunk", "huge_int"), ("simulate.prior", "chunk", "huge_float"),  # clamped to samples
         ("simulate.prior", "blas_threads", "huge_int"), ("simulate.posterior", "blas_threads", "huge_int")}

# cli: argv -> the option that must be named in the one-line error (exit status 2, no traceback)
CLI = [(["derive", "rnn", "--T", "x"], "--T"), (["derive", "rnn", "--T", "0"], "T"),
       (["derive", "rnn", "--T", str(2 ** 63)], "T"), (["derive", "rnn", "--leak", "nan"], "leak"),
       (["derive", "rnn", "--r", "inf"], "r"), (["derive", "custom", "--share-W", "[[1, 2"], "share"),
       (["derive", "rnn", "--phi", "nope"], "nope"), (["derive", "custom", "--share-W", '"x"'], "share"),
       (["derive", "rnn", "--T", "-2"], "T")]


def expand():
    for entry, arg, call, values in CASES:
        for label, value in values.items():
            yield pytest.param(entry, arg, label, call, value, id=f"{entry}-{arg}-{label}")


def outcome(entry, arg, label, call, value):
    """None if the call raised a SymfieldError naming ``arg`` (or ``label`` is valid), else what went wrong."""
    try:
        call(value)
    except SymfieldError as err:
        named = arg in str(err)
        return None if named else f"symfield error without {arg!r}: {type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 - that is the point
        return f"non-symfield error: {type(err).__module__}.{type(err).__name__}: {str(err)[:160]}"
    return None if (entry, arg, label) in VALID else "accepted silently"


@pytest.mark.parametrize("entry, arg, label, call, value", list(expand()))
def test_bad_input_is_named(entry, arg, label, call, value):
    problem = outcome(entry, arg, label, call, value)
    assert problem is None, problem


@pytest.mark.parametrize("argv, name", CLI)
def test_cli_bad_arguments_one_line(argv, name, capsys):
    with pytest.raises(SystemExit) if argv[2:3] == ["--T"] and argv[3] == "x" else nullcontext():
        status = cli.main(argv)
        assert status == 2
    err = capsys.readouterr().err
    assert name in err and "Traceback" not in err, err


class nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":  # count the failures: python tests/test_bad_inputs.py [seconds per case [id prefix]]
    import signal
    import warnings
    warnings.simplefilter("ignore")

    def too_long(*_):
        raise TimeoutError("no bound: still running after the per-case limit")

    signal.signal(signal.SIGALRM, too_long)
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    kinds = {}
    total = 0
    for p in expand():
        if not p.id.startswith(sys.argv[2] if len(sys.argv) > 2 else ""):
            continue
        total += 1
        signal.alarm(limit)
        try:
            problem = outcome(*p.values)
        except TimeoutError as err:
            problem = f"timed out: {err}"
        signal.alarm(0)
        if problem:
            kind = problem.split(":")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
            print(p.id, "->", problem, flush=True)
    print(f"{total} cases; failing: {kinds}", file=sys.stderr)
