"""Plan a batch run: which input files to process and where each one's outputs go.

Outputs mirror the inputs' tree under the output folder, relative to the deepest folder
holding every input (a single folder argument maps its contents straight under ``out/``),
and keep the input's full name: ``scans/a/p1.pdf`` -> ``out/a/p1.pdf.txt``, so
``p1.png`` and ``p1.pdf`` never collide. An input is up to date, and skipped, when all of
its outputs exist and none is older than the input (its mtime or ctime), unless it failed last time.

The output folder may hold or be inside the inputs' folders; a file found there is read unless it is named
like one of ocrlite's outputs (``x.png.pdf``: an input's name plus an output format), so a rerun does not
read back its own searchable PDFs. Files named explicitly are always read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Iterable

from ocrlite.io.images import expand_inputs
from ocrlite.io.pages import INPUT_EXTENSIONS
from ocrlite.io.writers import FORMATS

__all__ = ["REPORT_NAME", "Job", "Plan", "make_plan", "read_paths_list"]

REPORT_NAME = "ocrlite-report.json"


@dataclass(frozen=True)
class Job:
    """One input file: its path, its name under the output folder, and its output files."""

    source: Path
    name: str
    outputs: dict[str, Path]


@dataclass(frozen=True)
class Plan:
    """Jobs to run, inputs that are already done, (path, reason) input errors, and ``carried``: the failures
    that earlier runs recorded for inputs that still exist and that this run does not include (kept in its
    report, so a later run that includes them still retries them)."""

    jobs: list[Job]
    skipped: list[Job]
    errors: list[tuple[str, str]]
    carried: list[dict[str, Any]] = field(default_factory=list)


def make_plan(inputs: Iterable[str | Path], output: Path, formats: Iterable[str],
              glob: str | None = None, overwrite: bool = False) -> Plan:
    """Expand ``inputs`` (files and folders) into jobs writing ``formats`` under ``output``.

    ``glob`` filters the files found in folders by their path within the folder (files
    named explicitly are always kept). Files found inside ``output`` and named like an output are skipped.
    """
    formats = tuple(formats)
    out_dir = os.path.abspath(output)
    found: list[tuple[Path, str]] = []  # (file, its absolute folder root)
    errors: list[tuple[str, str]] = []
    for raw in inputs:
        files, bad = expand_inputs([raw], extensions=INPUT_EXTENSIONS)
        errors.extend(bad)
        root = os.path.abspath(raw) if Path(raw).is_dir() else None
        for file in files:
            if root and glob and not PurePath(os.path.relpath(file, raw)).match(glob):
                continue
            if root and _inside(os.path.abspath(file), out_dir) and _named_like_output(file):
                continue
            found.append((file, root or os.path.dirname(os.path.abspath(file))))
    found = _unique(found)
    if not found:
        return Plan([], [], errors)
    base = os.path.commonpath([root for _, root in found])
    unfinished = _unfinished(output / REPORT_NAME)
    retry = {str(entry["name"]) for entry in unfinished}
    jobs: list[Job] = []
    skipped: list[Job] = []
    for file, _ in found:
        name = Path(os.path.relpath(os.path.abspath(file), base)).as_posix()
        job = Job(file, name, {fmt: output / f"{name}.{fmt}" for fmt in formats})
        done = not overwrite and name not in retry and _up_to_date(job)
        (skipped if done else jobs).append(job)
    planned = {job.name for job in jobs + skipped}
    carried = [entry for entry in unfinished  # a failed input that still exists, left out of this run
               if str(entry["name"]) not in planned and entry.get("path") and os.path.exists(str(entry["path"]))]
    return Plan(jobs, skipped, errors, carried)


def read_paths_list(lines: Iterable[str]) -> list[str]:
    """Paths from a list file: one per line, blank lines and ``#`` comments ignored."""
    paths = []
    for line in lines:
        text = line.rstrip("\r\n")
        if text.strip() and not text.lstrip().startswith("#"):
            paths.append(text.strip())
    return paths


def _up_to_date(job: Job) -> bool:
    """True when every output exists and is at least as new as the input: as its contents (mtime) and as the
    file itself (ctime), so a file copied or moved in with an older mtime (``cp -p``, ``rsync -t``) is redone."""
    try:
        stat = job.source.stat()
        source_time = max(stat.st_mtime, stat.st_ctime)
        return all(path.stat().st_mtime >= source_time for path in job.outputs.values())
    except OSError:
        return False


def _unfinished(report: Path) -> list[dict[str, Any]]:
    """The failures the previous run's report lists (its own, and those it carried from earlier runs), and
    the inputs it did not reach (``pending``, as failures with that reason); each names its input.

    A file with a failed page still gets outputs for its other pages; this keeps it from counting as done,
    also across runs that leave it out (``--glob``, other inputs) or are interrupted before retrying it.
    """
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
        entries = [dict(item) for item in (*data.get("failures", []), *data.get("carried", [])) if item.get("name")]
        entries += [{"path": "", "name": str(name), "reason": "not reached by an interrupted run", "page": None}
                    for name in data.get("pending", [])]
        return entries
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return []


def _unique(found: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """Drop repeated files (the same file named twice, or found in two folder arguments)."""
    seen: set[str] = set()
    kept = []
    for file, root in found:
        key = os.path.abspath(file)
        if key not in seen:
            seen.add(key)
            kept.append((file, root))
    return kept


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _named_like_output(path: Path) -> bool:
    """True for ``<name>.<input extension>.<output format>``, the names batch mode writes."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    return len(suffixes) >= 2 and suffixes[-1][1:] in FORMATS and suffixes[-2] in INPUT_EXTENSIONS
