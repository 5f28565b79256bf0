"""The package's public face: cheap to import, every public name importable from `oqtopus_data`, one version."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import oqtopus_data
from oqtopus_data._version import __version__

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pyarrow", "numpy", "polars", "duckdb")


def test_importing_the_package_loads_no_heavy_library():
    probe = f"import sys, oqtopus_data; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []


def test_the_public_names_import_from_the_package():
    for name in ("ApiClient", "Credentials", "ExportOptions", "compact", "usage_figures", "flatten", "export",
                 "connect", "scan", "read", "write_dataset", "write_report", "result_from_raw", "Dataset"):
        assert name in oqtopus_data.__all__, name
    for name in oqtopus_data.__all__:
        assert getattr(oqtopus_data, name) is not None, name
    assert set(oqtopus_data.__all__) <= set(dir(oqtopus_data))


def test_every_name_the_readme_calls_on_the_package_is_public():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    used = set(re.findall(r"\bod\.([A-Za-z_]\w*)", text))
    assert used and used <= set(oqtopus_data.__all__), used - set(oqtopus_data.__all__)


def test_no_module_of_the_package_shares_a_public_name_so_no_import_can_hide_a_public_function():
    package = ROOT / "oqtopus_data"
    modules = {p.stem for p in package.glob("*.py")}
    modules |= {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    assert not modules & set(oqtopus_data.__all__)
    probe = ("import oqtopus_data as od, oqtopus_data.run.export, oqtopus_data.tables.flatten, inspect; "
             "print(inspect.isfunction(od.export), inspect.isfunction(od.flatten))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]


def test_the_version_has_one_home():
    assert oqtopus_data.__version__ == __version__
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "oqtopus_data/_version.py"
