"""Rows of ``ocrlite eval`` are kept by system name: a name given twice is refused, not scored as one system."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ocrlite.cli import main
from ocrlite.errors import ConfigError
from ocrlite.eval.harness import System, evaluate


def test_a_preset_given_twice_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", "det", "--data", str(tmp_path), "--model", "ppocr-v2,ppocr-v2"])
    assert (result.exit_code, result.output) == (
        2, "ocrlite: error: system 'ppocr-v2' is given twice; each row needs its own name\n")


def test_evaluate_refuses_two_systems_of_one_name(tmp_path: Path) -> None:
    systems = [System("a", detect=lambda image: []), System("a", detect=lambda image: [])]
    with pytest.raises(ConfigError, match="^system 'a' is given twice"):
        evaluate("det", systems, tmp_path)
