"""The symfield command and the gp-kernels derivation."""
import json
import subprocess
import sys

import numpy as np
import pytest

from symfield.cli import main


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "erf" in out and "tanh" in out and "gp-kernels" in out


@pytest.mark.parametrize("arch", ["rnn", "dnn"])
def test_derive_text_and_latex(arch, capsys):
    assert main(["derive", arch, "--phi", "erf"]) == 0
    text = capsys.readouterr().out
    assert "Eq(C_u, g2*m*E(c11, c22, c12) + sdet)" in text and "asin" in text
    assert main(["derive", arch, "--phi", "relu", "--latex"]) == 0
    assert r"\tilde C" in capsys.readouterr().out


def test_derive_unknown_phi_is_a_clear_error(capsys):
    assert main(["derive", "rnn", "--phi", "nope"]) == 2
    assert "unknown phi 'nope'" in capsys.readouterr().err


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "symfield.cli", "derive", "dnn", "--phi", "tanh"],
                         capture_output=True, text=True, check=True).stdout
    assert "E(c11, c22, c12)" in out


def test_reproduce_gp_kernels_writes_figure_and_json(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["reproduce", "gp-kernels", "--quick", "--no-progress", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "gp_kernels.json").read_text())
    for ext in ("png", "pdf", "svg"):
        assert (tmp_path / f"gp_kernels.{ext}").stat().st_size > 10_000
    assert data["length_map"]["chi1"] == pytest.approx(0.9657, abs=1e-4)
    cross = data["cross_time"]
    # labels come from the specs: the DNN's bias is fresh
    assert [cross[k]["label"] for k in ("rnn_static", "rnn_fresh", "dnn_fresh")] == \
        ["RNN, static bias", "RNN, fresh bias", "DNN, fresh bias"]
    assert "N = 256" in data["caption"] and "40 samples" in data["caption"] and "seed 1" in data["caption"]
    static, fresh, dnn = cross["rnn_static"], cross["rnn_fresh"], cross["dnn_fresh"]
    # theory: static bias builds cross-time correlation, fresh bias keeps it at zero
    assert static["theory"]["30"][0] == pytest.approx(0.1) and static["theory"]["30"][28] > 0.5
    assert max(abs(v) for v in fresh["theory"]["30"][:29]) < 1e-12
    # simulation agrees with theory within 5 standard errors + the O(1/N) bias, and the DNN is near zero
    for s in ("10", "30"):
        sim, sem, th = (np.array(static[k][s]) for k in ("sim", "sem", "theory"))
        assert np.all(np.abs(sim - th) < 5 * sem + 0.02)
        dnn_off = np.delete(np.array(dnn["sim"][s]), int(s) - 1)
        assert np.all(np.abs(dnn_off) < 5 * np.delete(np.array(dnn["sem"][s]), int(s) - 1) + 0.01)
    assert "fixed point C* = 0.65117" in capsys.readouterr().out
    xr = pytest.importorskip("xarray")
    with xr.open_dataset(tmp_path / "gp_kernels.nc", engine="scipy") as ds:
        np.testing.assert_allclose(ds["cross_time__rnn_static__theory__30"].values, static["theory"]["30"])
        assert "N = 256" in ds.attrs["caption"]


def test_reproduce_one_loop_quick_writes_figure_and_json(tmp_path):
    pytest.importorskip("matplotlib")
    assert main(["reproduce", "one-loop", "--quick", "--no-progress", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "one_loop.json").read_text())
    for ext in ("png", "pdf", "svg"):
        assert (tmp_path / f"one_loop.{ext}").stat().st_size > 10_000
    assert "300 networks" in data["caption"] and "seed 3" in data["caption"]
    reg = data["regimes"]
    # RNN/DNN variance ratio: large in the ordered regime, ~1 in the chaotic one (theory Sec. 8.8)
    ratio = {k: reg[k]["RNN static"]["theory"][-1] / reg[k]["DNN"]["theory"][-1] for k in reg}
    assert ratio["ordered"] > 1.5 and abs(ratio["chaotic"] - 1) < 0.05
    assert all(abs(r["var_z"]) < 5 for r in data["table"])


def test_derive_declared_networks(capsys):
    """Presets and declarations by groups print their action; the skip network names C = A D Aᵀ."""
    assert main(["derive", "resnet", "--T", "4", "--r", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "saddle point" in out and "D" in out
    assert main(["derive", "custom", "--T", "4", "--share-W", "[[1, 2], [3]]", "--latex"]) == 0
    assert "W_a = W_b" in capsys.readouterr().out
    assert main(["derive", "custom", "--T", "4", "--share-W", "[[1, 2]]"]) == 2   # step 3 in no group
    assert "share['W']" in capsys.readouterr().err
    assert main(["derive", "dnn", "--share-W", "not json"]) == 2


def test_derive_custom_phi_expression(capsys):
    """--phi takes any SymPy expression in x; the derived kernel equation carries it through E."""
    assert main(["derive", "rnn", "--phi", "x/(1+abs(x))", "--T", "3"]) == 0
    assert "E(c11, c22, c12)" in capsys.readouterr().out
    for bad in ("sin(x", "x*y", "nope"):
        assert main(["derive", "rnn", "--phi", bad]) == 2
        assert f"unknown phi {bad!r}" in capsys.readouterr().err


def _balanced_environments(text):
    import re
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]*)\}", text):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack and stack.pop() == name, f"\\end{{{name}}} without its \\begin"
    return not stack


def test_derive_latex_is_a_complete_document(tmp_path, capsys):
    """A document in the notation of docs/theory.md (g^2, C̃; no g_{2} or Ct_u); compiled when a LaTeX
    engine is installed, else checked for structure: preamble, balanced environments, braces and
    \\left/\\right, standard packages only."""
    import re
    import shutil
    path = tmp_path / "rnn.tex"
    assert main(["derive", "rnn", "--phi", "erf", "--T", "3", "--latex", "-o", str(path)]) == 0
    text = path.read_text()
    assert text.startswith(r"\documentclass") and text.rstrip().endswith(r"\end{document}")
    assert text.count(r"\begin{document}") == 1 and _balanced_environments(text)
    assert text.count("{") == text.count("}") and text.count(r"\left") == text.count(r"\right")
    assert set(re.findall(r"\\usepackage(?:\[[^]]*\])?\{([^}]*)\}", text)) <= {"amsmath", "amssymb", "geometry"}
    assert r"\tilde C_u" in text and "g^2" in text and r"\Sigma^{\rm det}_u" in text
    for old in ("g_{2}", "Ct_", "sdet", "c_{11}c"):
        assert old not in text
    engine = shutil.which("pdflatex") or shutil.which("tectonic")
    if engine:
        args = [engine, "-interaction=nonstopmode", path.name] if engine.endswith("pdflatex") else [engine, path.name]
        subprocess.run(args, cwd=tmp_path, check=True, capture_output=True, timeout=120)
        assert (tmp_path / "rnn.pdf").stat().st_size > 1000


#: the arrays of amsmath that mathtext lacks (innermost first)
ARRAY = r"\\begin\{(matrix|cases)\}((?:(?!\\begin\{).)*?)\\end\{\1\}"


def _flatten_arrays(fragment, cells=True):
    """Arrays replaced by their cells one after the other (``cells=False``: removed), innermost first."""
    import re
    while True:
        new = re.sub(ARRAY, lambda m: " " + (m.group(2).replace("&", r"\quad ").replace("\\\\", r"\quad ")
                                             if cells else "") + " ", fragment, flags=re.S)
        if new == fragment:
            return new
        fragment = new


#: amsmath constructs that matplotlib's mathtext lacks, rewritten before parsing with their arguments kept
#: (so the arguments are still parsed); these constructs themselves are checked only by the structural test
MATHTEXT_REWRITES = (
    (r"\\[Bb]ig[lr]?(?=[()\[\]|.]|\\[{}])", ""),            # \Big( -> (
    (r"\\tfrac", r"\\frac"),
    (r"\\frac(\d)(\d)", r"\\frac{\1}{\2}"),                      # \frac12 -> \frac{1}{2}
    (r"\\mathcal\s*([A-Za-z])", r"\\mathcal{\1}"),                # \mathcal A -> \mathcal{A}
)
#: commands allowed outside math (all defined by the article class), and the environments used
TEXT_COMMANDS = {"documentclass", "usepackage", "title", "date", "begin", "end", "maketitle", "section"}
ENVIRONMENTS = {"document", "equation*", "matrix", "cases"}


def _math_fragments(text):
    """(display bodies, inline fragments, text outside math) of a generated document."""
    import re
    displays = re.findall(r"\\begin\{equation\*\}\n(.*?)\n\\end\{equation\*\}", text, re.S)
    rest = re.sub(r"\\begin\{equation\*\}.*?\\end\{equation\*\}", " ", text, flags=re.S)
    assert rest.count("$") % 2 == 0, "unbalanced $"
    inline = re.findall(r"\$([^$]+)\$", rest)
    return displays, inline, re.sub(r"\$[^$]+\$", " ", rest)


def _check_with_mathtext(text):
    """Every math fragment parses with matplotlib's mathtext (after :data:`MATHTEXT_REWRITES`); display
    bodies hold no alignment (& or \\\\ outside matrix/cases: an error in equation*); outside math only
    :data:`TEXT_COMMANDS` and no character that is special in text mode.  Returns the number of fragments."""
    import re
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    displays, inline, outside = _math_fragments(text)
    assert displays and inline
    for body in displays:
        cells_removed = _flatten_arrays(body, cells=False)
        assert "&" not in cells_removed and "\\\\" not in cells_removed, body
    for fragment in displays + inline:
        rewritten = _flatten_arrays(fragment)
        for pattern, repl in MATHTEXT_REWRITES:
            rewritten = re.sub(pattern, repl, rewritten, flags=re.S)
        try:
            parser.parse(f"${rewritten}$")
        except ValueError as err:
            raise AssertionError(f"mathtext cannot parse {fragment!r}: {err}") from None
    assert set(re.findall(r"\\([A-Za-z]+)", outside)) <= TEXT_COMMANDS
    assert set(re.findall(r"\\(?:begin|end)\{([^}]*)\}", text)) <= ENVIRONMENTS
    assert not re.search(r"[_^&#%]", re.sub(r"\\(?:usepackage|documentclass)(\[[^]]*\])?\{[^}]*\}", "", outside))
    return len(displays) + len(inline)


@pytest.mark.parametrize("argv", [["rnn", "--phi", "erf"], ["dnn", "--phi", "relu"], ["resnet", "--phi", "tanh"],
                                  ["custom", "--T", "4", "--share-W", "[[1, 2], [3]]", "--leak", "0.5",
                                   "--phi", "x/(1+abs(x))"]], ids=["rnn", "dnn", "resnet", "custom"])
def test_derive_latex_math_parses_with_mathtext(argv, tmp_path, capsys):
    """No TeX engine here: every math fragment of the document goes through matplotlib's mathtext parser
    (unknown commands, unbalanced braces or \\left/\\right, double sub/superscripts, malformed \\frac fail)."""
    path = tmp_path / "doc.tex"
    assert main(["derive", *argv, "--T", "3", "--latex", "-o", str(path)] if "--T" not in argv else
                ["derive", *argv, "--latex", "-o", str(path)]) == 0
    text = path.read_text()
    assert _balanced_environments(text) and text.count("{") == text.count("}")
    assert _check_with_mathtext(text) >= 8


def test_mathtext_check_catches_what_it_claims():
    """The check itself fails on a broken fragment of each kind it is meant to catch."""
    good = "\\begin{document}\n" + "$x$ " * 8 + "\n\\begin{equation*}\nE = \\frac{1}{2}\n\\end{equation*}\n\\end{document}"
    _check_with_mathtext(good)
    for bad in (r"\frac{1}{2", r"\left( x", r"x^a^b", r"x_a_b", r"\undefinedmacro x", r"a & b", r"a \\ b",
                r"\begin{cases} a & b \end{cases"):
        with pytest.raises(AssertionError):
            _check_with_mathtext(good.replace(r"\frac{1}{2}", bad))
    with pytest.raises(AssertionError):
        _check_with_mathtext(good.replace("$x$", "a_b $x$", 1))        # _ outside math


def test_boolean_parameters_are_flags_and_underscores_take_dashes(tmp_path):
    """A boolean Param is a flag (``--linear-only`` alone is true, ``--linear_only false`` false); a
    name with underscores is also spelt with dashes; a non-boolean value is refused."""
    from symfield.cli import Param, derivation_args
    params = {"linear_only": Param(False, "skip"), "T_max": Param(40, "T", quick=10)}
    out = str(tmp_path / "x")
    assert derivation_args("doc", out, params, [])[1] == {"linear_only": False, "T_max": 40}
    assert derivation_args("doc", out, params, ["--linear-only", "--quick"])[1] == {"linear_only": True, "T_max": 10}
    assert derivation_args("doc", out, params, ["--linear_only", "false", "--T-max", "7"])[1] == \
        {"linear_only": False, "T_max": 7}
    with pytest.raises(SystemExit):
        derivation_args("doc", out, params, ["--linear-only", "maybe"])


def test_reproduce_options_come_from_the_declared_parameters(capsys):
    """Each derivation's PARAMETERS become its options; --phi parses expressions; --quick picks the
    quick values; unknown options are refused."""
    from symfield.cli import Param, derivation_args
    params = {"phi": Param("erf", "phi"), "N": Param(512, "width", quick=64), "s": Param((1, 2), "times")}
    args, v = derivation_args("doc", "out/x", params, ["--quick", "--phi", "sin(x)", "--s", "3", "4"])
    assert v["N"] == 64 and v["s"] == (3, 4) and str(v["phi"]) == "sin(x)" and args.progress is None
    args, v = derivation_args("doc", "out/x", params, ["--N", "100", "--no-progress"])
    assert v["N"] == 100 and v["phi"] == "erf" and args.progress is False
    with pytest.raises(SystemExit):
        derivation_args("doc", "out/x", params, ["--phi", "sin(y"])
    with pytest.raises(SystemExit):
        main(["reproduce", "gp-kernels", "--help"])
    assert "--sigma_b2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["reproduce", "gp-kernels", "--bogus", "1"])
