"""The ``symfield`` command: list / derive / reproduce."""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SpecError
from .parallel import SCHEDULER_HELP, set_default as set_default_scheduler
from .spec import PRESETS

DERIVATIONS = {"gp-kernels": "gp_kernels.py", "one-loop": "one_loop.py", "feature-learning": "feature_learning.py",
               "resnet": "resnet.py", "sequential-digits": "sequential_digits.py"}


@dataclass(frozen=True)
class Param:
    """A model parameter of a derivation: its default, its value under ``--quick`` (None: the default)
    and a help text.  Each derivation declares a ``PARAMETERS = {name: Param(...)}`` dict once; its
    command-line options (``--name``) are built from it (:func:`derivation_parser`)."""
    default: Any
    help: str
    quick: Any = None


def parse_phi(text: str):
    """A ``--phi`` value: a registered name (``erf``), or any SymPy expression in ``x``
    (``"x/(1+abs(x))"``), returned as a SymPy expression for :func:`symfield.gauss.get_phi`;
    UnknownNonlinearity for anything else.  The text goes through SymPy's parser (which evaluates
    Python): pass only expressions you would type into a shell yourself."""
    import tokenize

    import sympy as sp
    from .errors import UnknownNonlinearity
    from .gauss import available_phis
    from .gauss.registry import x
    text = str(text).strip()
    if text in available_phis():
        return text
    hint = f"give a registered name ({', '.join(available_phis())}) or a SymPy expression in x"
    try:
        expr = sp.parse_expr(text, local_dict={"x": x, "abs": sp.Abs, "Abs": sp.Abs}, evaluate=True)
    except (SyntaxError, TypeError, ValueError, AttributeError, tokenize.TokenError, sp.SympifyError) as err:
        raise UnknownNonlinearity(f"unknown phi {text!r}: {hint} (parse error: {type(err).__name__})") from None
    if not isinstance(expr, sp.Expr) or expr.free_symbols != {x}:
        raise UnknownNonlinearity(f"unknown phi {text!r}: {hint}")
    return expr


def _phi_option(text: str):
    from .errors import UnknownNonlinearity
    try:
        return parse_phi(text)
    except UnknownNonlinearity as err:
        raise argparse.ArgumentTypeError(str(err).strip("\"'")) from None


def phi_name(phi) -> str:
    """How a φ from :func:`parse_phi` is written in results (the name, or the expression as text)."""
    return phi if isinstance(phi, str) else str(phi)


def _option_type(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (tuple, list)):
        return _option_type(value[0])
    return type(value)


def _boolean_option(text: str) -> bool:
    values = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    if text.lower() not in values:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return values[text.lower()]


def derivation_parser(doc: str, out: str, parameters: dict) -> argparse.ArgumentParser:
    """The argument parser of a derivation script: ``--out``, ``--quick``, ``--no-progress`` and one
    option per declared :class:`Param` (``--phi`` takes a name or an expression in x; tuples take
    several values)."""
    parser = argparse.ArgumentParser(prog=f"symfield reproduce {Path(out).name}", description=doc.splitlines()[0])
    parser.add_argument("--out", default=out, help=f"output directory (default {out})")
    parser.add_argument("--quick", action="store_true", help="smaller run for a fast check (the 'quick' values)")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    parser.add_argument("--scheduler", default=None, help=SCHEDULER_HELP)
    for name, par in parameters.items():
        kw = {"default": None, "help": f"{par.help} (default {par.default}"
              + (f"; quick {par.quick}" if par.quick is not None else "") + ")"}
        if name == "phi":
            kw["type"] = _phi_option
        elif isinstance(par.default, bool):  # --flag alone means true; --flag false also works
            kw.update(type=_boolean_option, nargs="?", const=True)
        else:
            kw["type"] = _option_type(par.default)
            if isinstance(par.default, (tuple, list)):
                kw["nargs"] = "+"
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        parser.add_argument(*flags, dest=name, **kw)
    return parser


def derivation_args(doc: str, out: str, parameters: dict, argv=None):
    """Parse ``argv`` for a derivation: returns ``(args, values)`` with ``values[name]`` the given option,
    else the quick value under ``--quick``, else the default; ``args.progress`` is None (on when stderr is
    a terminal) or False (``--no-progress``); ``--scheduler`` becomes the process default of
    :mod:`symfield.parallel`; ``args.out`` is the output directory (a Path, created)."""
    args = derivation_parser(doc, out, parameters).parse_args(argv)
    values = {}
    for name, par in parameters.items():
        given = getattr(args, name)
        if given is not None:
            values[name] = tuple(given) if isinstance(par.default, tuple) else given
        elif args.quick and par.quick is not None:
            values[name] = par.quick
        else:
            values[name] = par.default
    args.progress = False if args.no_progress else None
    set_default_scheduler(args.scheduler)  # ensembles, chains and widths of the derivation run there
    args.out = Path(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    return args, values


def derivations_dir() -> Path:
    """The repository's derivations/ folder (symfield is installed from its checkout)."""
    return Path(__file__).resolve().parents[1] / "derivations"


def _load_derivation(name: str):
    path = derivations_dir() / DERIVATIONS[name]
    if not path.exists():
        raise SystemExit(f"derivation script {path} not found (install symfield from its repository: pip install -e .)")
    spec = importlib.util.spec_from_file_location(f"symfield_derivation_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cmd_list(args) -> int:
    from .gauss import available_phis
    print("nonlinearities:", ", ".join(available_phis()))
    print("networks:      ", ", ".join(PRESETS), "(or any declaration: symfield derive custom --share-W ...)")
    print("derivations:   ", ", ".join(DERIVATIONS))
    return 0


LATEX_PACKAGES = ("amsmath", "amssymb")


def latex_document(title: str, sections: list) -> str:
    """A complete LaTeX document (article class, amsmath/amssymb only): ``sections`` is a list of
    ``(heading, [display lines])``; each line becomes one ``equation*`` (breaking inside a long line is left
    to the reader's editor)."""
    body = []
    for heading, lines in sections:
        body.append(f"\\section*{{{heading}}}")
        body += ["\\begin{equation*}\n" + line + "\n\\end{equation*}" for line in lines if line.strip()]
    return "\n".join([
        r"\documentclass[10pt]{article}",
        *(rf"\usepackage{{{p}}}" for p in LATEX_PACKAGES),
        r"\usepackage[margin=1.5cm,landscape]{geometry}",
        rf"\title{{{title}}}", r"\date{}",
        r"\begin{document}", r"\maketitle",
        r"Notation of docs/theory.md: $u=\{s,s'\}$ a pair of sites, $w$ a successor pair; $C_u$ the kernel "
        r"entry and $\tilde C_u$ its conjugate; $M_u = M_{ab}$ the weight-sharing mask of the pair; $g^2$ the "
        r"weight variance; $\Sigma^{\rm det}_u$ the deterministic (bias and input) part; $c_{11}, c_{22}, c_{12}$ "
        r"the covariance of the previous sites (for $w$: $d_1, d_2$ and $C_u$); "
        r"$E(c_{11},c_{22},c_{12}) = \langle\phi(z_1)\phi(z_2)\rangle$.",
        *body, r"\end{document}", ""])


def cmd_derive(args) -> int:
    from .action import action
    from .spec import NetworkSpec
    try:
        share = {"W": json.loads(args.share_W)} if args.share_W else {}
    except json.JSONDecodeError as err:
        raise SpecError(f"--share-W must be JSON groups such as '[[1, 2], [3]]' ({err})") from None
    spec = NetworkSpec(None if args.arch == "custom" else args.arch, args.T, phi=parse_phi(args.phi), leak=args.leak,
                       r=args.r, share=share)
    act = action(spec)
    sp_eq = act.saddle_point()
    if args.latex:
        text = latex_document(f"Action and saddle point: {spec.label}, $T = {spec.T}$",
                              [("Action", act.latex().splitlines()),
                               ("Saddle point (derived by differentiation)", sp_eq.latex().splitlines())])
        if args.output:
            Path(args.output).write_text(text)
            print(f"wrote {args.output}")
        else:
            print(text, end="")
    else:
        print("action:")
        print(act)
        print("\nsaddle point (derived by differentiation):")
        print(sp_eq)
    return 0


def cmd_reproduce(args) -> int:
    """Run derivation ``args.name`` with ``--out``, ``--quick`` and the remaining options (its model
    parameters, ``--phi``, ``--no-progress``; ``symfield reproduce NAME --help`` lists them)."""
    module = _load_derivation(args.name)
    module.main(["--out", args.out] + (["--quick"] if args.quick else []) + list(args.options))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="symfield", description="Field theory of wide DNNs and RNNs")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered nonlinearities, networks and derivations").set_defaults(func=cmd_list)
    d = sub.add_parser("derive", help="print the action and the saddle-point equations derived from it")
    d.add_argument("arch", choices=[*PRESETS, "custom"], help="a preset, or 'custom' for a declaration")
    d.add_argument("--phi", default="erf",
                   help='a registered name or any SymPy expression in x, e.g. "x/(1+abs(x))"')
    d.add_argument("--T", type=int, default=3)
    d.add_argument("--leak", type=float, default=None, help="skip coefficient a (default: the preset's)")
    d.add_argument("--r", type=float, default=1.0, help="residual-branch scale r")
    d.add_argument("--share-W", default=None, help='W groups as JSON, e.g. "[[1, 2], [3]]" (custom only)')
    d.add_argument("--latex", action="store_true", help="a LaTeX document instead of plain text")
    d.add_argument("-o", "--output", default=None, help="write the output to this file (default: stdout)")
    d.set_defaults(func=cmd_derive)
    r = sub.add_parser("reproduce", help="run a derivation script (figure + JSON + NetCDF)",
                       description="run a derivation; further options (model parameters, --phi, --no-progress) "
                                   "go to the derivation: symfield reproduce NAME --help lists them")
    r.add_argument("name", choices=sorted(DERIVATIONS))
    r.add_argument("--out", default=None, help="output directory (default out/<name>)")
    r.add_argument("--quick", action="store_true", help="small simulation for a fast check")
    r.set_defaults(func=cmd_reproduce)
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) >= 2 and argv[0] == "reproduce" and argv[1] in DERIVATIONS and ({"-h", "--help"} & set(argv)):
        return cmd_reproduce(argparse.Namespace(name=argv[1], out=str(Path("out") / argv[1]), quick=False,
                                                options=["--help"]))
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "reproduce":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.options = rest
    if getattr(args, "out", "x") is None:
        args.out = str(Path("out") / args.name)
    try:
        return args.func(args)
    except (ValueError, KeyError, TypeError) as err:
        print(f"symfield: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. --out on a read-only path: one line, not a traceback
        where = f" ({err.filename})" if err.filename and str(err.filename) not in str(err) else ""
        print(f"symfield: error: {err}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
