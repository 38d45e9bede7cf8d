"""A user's type checker sees the public API's real types: ``py.typed`` ships in the wheel (else mypy skips an
installed ocrlite as untyped), and the names ``ocrlite`` imports lazily are visible to it (else each is Any)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ocrlite

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_marks_the_package_as_typed() -> None:
    assert (ROOT / "ocrlite" / "py.typed").is_file()
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = re.search(r"^\[tool\.setuptools\.package-data\]\n(.*?)(?:\n\[|\Z)", text, re.M | re.S)
    assert section is not None
    assert re.search(r'^"ocrlite" = \[[^\]]*"py\.typed"', section.group(1), re.M)


def _mypy(script: Path, tmp_path: Path) -> str:
    """mypy --strict's report on ``script``, with ocrlite read as if installed (its own errors not reported)."""
    mypy_api = pytest.importorskip("mypy.api")
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\nstrict = True\nmypy_path = {ROOT}\n[mypy-ocrlite.*]\nfollow_imports = silent\n")
    out, err, _ = mypy_api.run([str(script), "--config-file", str(config), "--cache-dir", str(tmp_path / "cache"),
                                "--no-error-summary"])
    return str(out + err)


def test_a_users_script_is_checked_against_the_real_types(tmp_path: Path) -> None:
    names = [name for name in ocrlite.__all__ if name != "__version__"]
    script = tmp_path / "user.py"
    script.write_text(
        f"from ocrlite import {', '.join(names)}\n"
        + "".join(f"reveal_type({name})\n" for name in names)
        + "page = OCR()(123)\n"  # not an image: the checker must say so
        + "reveal_type(page.lines[0].text)\n"
    )
    out = _mypy(script, tmp_path)
    revealed = re.findall(r'Revealed type is "(.*)"', out)
    assert len(revealed) == len(names) + 1, out
    assert [kind for kind in revealed if kind == "Any"] == [], out
    assert revealed[-1] in ("str", "builtins.str")
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1 and 'Argument 1 to "__call__" of "OCR" has incompatible type "int"' in errors[0], out


def test_the_readmes_python_example_type_checks(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", readme, re.M | re.S)
    assert blocks and "read_documents" in blocks[0]
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    assert _mypy(script, tmp_path) == ""  # was: Item "None" of "PageResult | None" has no attribute "text"


def test_dir_lists_the_lazily_imported_names() -> None:
    """``dir(ocrlite)`` (and so tab completion in a REPL or notebook) showed none of the public names, which are
    imported on first use: ``OCR``, the errors and the result types were missing."""
    assert set(ocrlite.__all__) <= set(dir(ocrlite))
