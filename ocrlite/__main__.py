"""``python -m ocrlite``: the ``ocrlite`` command, for an environment whose scripts folder is not on PATH."""

from ocrlite.cli import run

run()
