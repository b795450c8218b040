"""Declare once: theory and simulators read the declaration; the simulators never import the theory."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1] / "symfield"
NAMING = re.compile(r"arch\s*==|\.arch\b|shares_weights|[\"'](rnn|dnn|resnet)[\"']")


def _sources(*parts):
    for part in parts:
        yield from sorted((ROOT / part).rglob("*.py"))


def test_no_theory_or_simulator_module_names_an_architecture():
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in _sources("theory", "simulate")
             for i, line in enumerate(p.read_text().splitlines(), 1) if NAMING.search(line)]
    assert not found, "\n".join(found)


def test_simulators_do_not_import_the_theory():
    pattern = re.compile(r"^\s*(from\s+(\.\.theory|symfield\.theory)|import\s+symfield\.theory)", re.M)
    found = [str(p.relative_to(ROOT)) for p in _sources("simulate") if pattern.search(p.read_text())]
    assert not found, found
