"""The wheel holds every package of the tree: a package missing from pyproject's list installs fine with
``pip install -e`` (the tests' install) and breaks ``pip install .`` with ModuleNotFoundError."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = re.search(r"^\[tool\.setuptools\]\npackages = \[(.*?)\]", text, re.M | re.S)
    assert section is not None
    listed = set(re.findall(r'"([^"]+)"', section.group(1)))
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "ocrlite").rglob("__init__.py")}
    assert found - listed == set()
