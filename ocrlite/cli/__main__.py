"""``python -m ocrlite.cli``: the ``ocrlite`` command (as ``python -m ocrlite``)."""

from ocrlite.cli import run

run()
