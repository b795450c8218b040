"""The ``symfield`` command: list / derive / reproduce."""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

from .errors import SpecError
from .spec import PRESETS

DERIVATIONS = {"gp-kernels": "gp_kernels.py", "one-loop": "one_loop.py", "feature-learning": "feature_learning.py",
               "resnet": "resnet.py"}


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


def cmd_derive(args) -> int:
    from .action import action
    from .spec import NetworkSpec
    try:
        share = {"W": json.loads(args.share_W)} if args.share_W else {}
    except json.JSONDecodeError as err:
        raise SpecError(f"--share-W must be JSON groups such as '[[1, 2], [3]]' ({err})") from None
    spec = NetworkSpec(None if args.arch == "custom" else args.arch, args.T, phi=args.phi, leak=args.leak,
                       r=args.r, share=share)
    act = action(spec)
    sp_eq = act.saddle_point()
    if args.latex:
        print("% action")
        print(act.latex())
        print("% saddle point (derived by differentiation)")
        print(sp_eq.latex())
    else:
        print("action:")
        print(act)
        print("\nsaddle point (derived by differentiation):")
        print(sp_eq)
    return 0


def cmd_reproduce(args) -> int:
    module = _load_derivation(args.name)
    module.main(["--out", args.out] + (["--quick"] if args.quick else []))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="symfield", description="Field theory of wide DNNs and RNNs")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered nonlinearities, networks and derivations").set_defaults(func=cmd_list)
    d = sub.add_parser("derive", help="print the action and the saddle-point equations derived from it")
    d.add_argument("arch", choices=[*PRESETS, "custom"], help="a preset, or 'custom' for a declaration")
    d.add_argument("--phi", default="erf")
    d.add_argument("--T", type=int, default=3)
    d.add_argument("--leak", type=float, default=None, help="skip coefficient a (default: the preset's)")
    d.add_argument("--r", type=float, default=1.0, help="residual-branch scale r")
    d.add_argument("--share-W", default=None, help='W groups as JSON, e.g. "[[1, 2], [3]]" (custom only)')
    d.add_argument("--latex", action="store_true", help="LaTeX instead of plain text")
    d.set_defaults(func=cmd_derive)
    r = sub.add_parser("reproduce", help="run a derivation script (figure + JSON)")
    r.add_argument("name", choices=sorted(DERIVATIONS))
    r.add_argument("--out", default=None, help="output directory (default out/<name>)")
    r.add_argument("--quick", action="store_true", help="small simulation for a fast check")
    r.set_defaults(func=cmd_reproduce)
    args = parser.parse_args(argv)
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
