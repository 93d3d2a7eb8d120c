"""What ``pip install .`` ships: every package under the library's roots and the app's, and the console command.

Fast and offline: it asks setuptools' own package finder with the configuration in pyproject.toml, the
same call a wheel build makes, instead of building one (CI builds and installs the real wheel: .ci/run).
"""
from __future__ import annotations

import fnmatch
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHIPPED_ROOTS = ("autograd", "backends", "nn", "xpgrad")


def _pyproject() -> dict:
    try:
        import tomllib
    except ImportError:                      # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _packages_in_wheel() -> set[str]:
    setuptools = pytest.importorskip("setuptools")
    tool = _pyproject()["tool"]["setuptools"]
    assert "packages" in tool, "pyproject.toml: [tool.setuptools.packages] must say what the wheel holds"
    packages = tool["packages"]
    if isinstance(packages, list):           # an explicit list: what it names is what ships
        return set(packages)
    find = packages["find"]
    finder = setuptools.find_namespace_packages if find.get("namespaces", True) else setuptools.find_packages
    where = find.get("where", ["."])
    assert where == ["."], "the test reads packages from the repository root"
    return set(finder(where=str(ROOT), include=find.get("include", ("*",)), exclude=find.get("exclude", ())))


def _package_dirs() -> set[str]:
    """Every directory holding an ``__init__.py`` under the shipped roots, as a dotted name."""
    return {".".join(init.parent.relative_to(ROOT).parts)
            for top in SHIPPED_ROOTS for init in (ROOT / top).rglob("__init__.py")
            if "__pycache__" not in init.parts}


def test_every_package_directory_is_in_the_wheel():
    shipped, on_disk = _packages_in_wheel(), _package_dirs()
    assert set(SHIPPED_ROOTS) <= on_disk
    missing = sorted(on_disk - shipped)
    assert not missing, f"packages left out of the wheel (pyproject.toml [tool.setuptools.packages]): {missing}"


def test_nothing_but_the_shipped_roots_is_in_the_wheel():
    extra = sorted(p for p in _packages_in_wheel() if p.split(".")[0] not in SHIPPED_ROOTS)
    assert not extra, f"the wheel would install these as top-level packages: {extra}"
    assert {p for p in _packages_in_wheel() if p.split(".")[0] in SHIPPED_ROOTS} == _package_dirs()


def test_no_module_directory_lacks_an_init():
    """A folder of modules without ``__init__.py`` would be importable from the source tree (namespace
    package) but missing from the wheel."""
    orphans = sorted(str(d.relative_to(ROOT)) for top in SHIPPED_ROOTS for d in [ROOT / top, *(ROOT / top).rglob("*")]
                     if d.is_dir() and "__pycache__" not in d.parts and any(d.glob("*.py"))
                     and not (d / "__init__.py").exists())
    assert not orphans, f"directories of modules without __init__.py (left out of the wheel): {orphans}"


def test_console_command_points_at_the_cli():
    scripts = _pyproject()["project"].get("scripts", {})
    assert scripts.get("xpgrad") == "xpgrad.cli:main"
    from xpgrad import cli
    assert callable(cli.main)


# PEP 561: the markers that tell type checkers the packages are typed, and the stubs of the API made at run time
# (``python -m xpgrad.stubs``; tests/test_stubs.py checks they are current)
TYPING_FILES = [f"{top}/py.typed" for top in SHIPPED_ROOTS] + ["autograd/tensor.pyi", "autograd/__init__.pyi",
                                                               "nn/functional.pyi"]


def test_type_stubs_and_py_typed_are_in_the_wheel():
    package_data = _pyproject()["tool"]["setuptools"].get("package-data", {})
    shipped = _packages_in_wheel()
    on_disk = {str(p.relative_to(ROOT)) for top in SHIPPED_ROOTS for p in (ROOT / top).rglob("*.pyi")}
    assert set(TYPING_FILES) - {f"{top}/py.typed" for top in SHIPPED_ROOTS} <= on_disk
    for rel in sorted(set(TYPING_FILES) | on_disk):
        path = ROOT / rel
        assert path.is_file(), f"{rel} is missing"
        package = ".".join(path.parent.relative_to(ROOT).parts)
        assert package in shipped, f"{rel}: its package {package} is not in the wheel"
        patterns = list(package_data.get("*", ())) + list(package_data.get(package, ()))
        assert any(fnmatch.fnmatch(path.name, pat) for pat in patterns), \
            f"{rel} is not package data (pyproject.toml [tool.setuptools.package-data])"
