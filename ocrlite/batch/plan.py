"""Plan a batch run: which input files to process and where each one's outputs go.

Outputs mirror the inputs' tree under the output folder, relative to the deepest folder
holding every input (a single folder argument maps its contents straight under ``out/``),
and keep the input's full name: ``scans/a/p1.pdf`` -> ``out/a/p1.pdf.txt``, so
``p1.png`` and ``p1.pdf`` never collide. The run's report records what made each output (``Job.stamp``:
the input's resolved path, size and mtime; the fingerprint of the settings that change what an output holds;
the output's own size and mtime), appended to ``JOURNAL_NAME`` as each output is recorded (a run killed
before its report still leaves them) and folded into the report when the run ends. An input is up to date, and
skipped, when the records say that each of its outputs was made from this very input, unchanged since, with
this run's settings, and the outputs are still those files, unless it failed last time. Anything else is
redone: another input of the same name (``m/2025/page1.png`` into the folder ``m/2024/page1.png`` was read
into), a changed input, other settings, an output without a record.

The output folder may hold or be inside the inputs' folders; a file found there is read unless it is named
like one of ocrlite's outputs (``x.png.pdf``: an input's name plus an output format), so a rerun does not
read back its own searchable PDFs. Files named explicitly are always read.
"""

from __future__ import annotations

import json
import os
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Iterable

from ocrlite.io.images import expand_inputs
from ocrlite.io.pages import INPUT_EXTENSIONS
from ocrlite.io.writers import FORMATS

__all__ = ["REPORT_NAME", "JOURNAL_NAME", "Job", "Plan", "file_stamp", "make_plan", "read_paths_list",
           "source_stamp"]

REPORT_NAME = "ocrlite-report.json"
JOURNAL_NAME = ".ocrlite-records.jsonl"  # output records appended as written, until the report takes them in


@dataclass(frozen=True)
class Job:
    """One input file: its path, its name under the output folder, its output files, and the input as it was
    when planned (``source_stamp``; None when it could not be looked up)."""

    source: Path
    name: str
    outputs: dict[str, Path]
    stamp: dict[str, Any] | None = None

    def record_key(self, fmt: str) -> str:
        """Where the report records its ``fmt`` output: the output's path under the output folder."""
        return f"{self.name}.{fmt}"


@dataclass(frozen=True)
class Plan:
    """Jobs to run, inputs that are already done, (path, reason) input errors, and ``carried``: the failures
    that earlier runs recorded for inputs that still exist and that this run does not include (kept in its
    report, so a later run that includes them still retries them). ``outputs`` and ``settings`` are the earlier
    runs' records (report, then journal) of the outputs still on disk as recorded, and of the settings those
    name (``ocrlite.batch.report.RunReport``)."""

    jobs: list[Job]
    skipped: list[Job]
    errors: list[tuple[str, str]]
    carried: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)


def make_plan(inputs: Iterable[str | Path], output: Path, formats: Iterable[str],
              glob: str | None = None, overwrite: bool = False, settings: str = "") -> Plan:
    """Expand ``inputs`` (files and folders) into jobs writing ``formats`` under ``output``.

    ``glob`` filters the files found in folders by their path within the folder (files
    named explicitly are always kept); a folder none of whose images matches is an input error. Files found
    inside ``output`` and named like an output are skipped.
    ``settings`` is the fingerprint of this run's settings: an input whose outputs were made with others is redone.
    """
    formats = tuple(formats)
    out_dir = os.path.realpath(output)  # the folder itself, however either path reaches it (symlinks)
    found: list[tuple[Path, str]] = []  # (file, its absolute folder root)
    errors: list[tuple[str, str]] = []
    for raw in inputs:
        files, bad = expand_inputs([raw], extensions=INPUT_EXTENSIONS)
        errors.extend(bad)
        root = os.path.abspath(raw) if Path(raw).is_dir() else None
        if root and glob:
            files = [file for file in files if PurePath(os.path.relpath(file, raw)).match(glob)]
            if not files and not bad:  # a folder of images none of which matches: not a silent empty run
                errors.append((str(raw), f"{raw}: no image in this folder matches the glob {glob!r} (it tells "
                                         "upper from lower case)"))
        for file in files:
            if root and _inside(file, out_dir) and _named_like_output(file):
                continue
            found.append((file, root or os.path.dirname(os.path.abspath(file))))
    found = _unique(found)
    previous = _read_report(output / REPORT_NAME)
    outputs, described = _read_journal(output / JOURNAL_NAME, _mapping(previous.get("outputs")),
                                       _mapping(previous.get("settings")))
    records = _records_on_disk(outputs, output)
    if not found:
        return Plan([], [], errors, outputs=records, settings=described)
    base = os.path.commonpath([root for _, root in found])
    unfinished = _unfinished(previous)
    retry = {str(entry["name"]) for entry in unfinished}
    jobs: list[Job] = []
    skipped: list[Job] = []
    longest = _name_max(output)
    names = [Path(os.path.relpath(os.path.abspath(file), base)).as_posix() for file, _ in found]
    clashes = _case_clashes(names, output)
    for (file, _), name in zip(found, names):
        too_long = [fmt for fmt in formats if len(os.fsencode(f"{PurePath(name).name}.{fmt}")) > longest]
        if too_long:
            errors.append((str(file), f"its output name ({PurePath(name).name}.{too_long[0]}) is longer than the "
                                      f"{longest} bytes a file name may have here; rename the input"))
            continue
        if name in clashes:
            errors.append((str(file), f"its outputs would overwrite those of {clashes[name]}: the file system "
                                      f"of {output} does not tell upper from lower case; rename one of the two"))
            continue
        job = Job(file, name, {fmt: output / f"{name}.{fmt}" for fmt in formats}, source_stamp(file))
        done = not overwrite and name not in retry and _up_to_date(job, records, settings)
        (skipped if done else jobs).append(job)
    planned = {job.name for job in jobs + skipped} | {path for path, _ in errors}  # refused again: not carried
    carried = [entry for entry in unfinished  # a failed input that still exists, left out of this run
               if str(entry["name"]) not in planned and entry.get("path") and os.path.exists(str(entry["path"]))]
    return Plan(jobs, skipped, errors, carried, records, described)


def _case_clashes(names: list[str], output: Path) -> dict[str, str]:
    """Output names (in order) that the output folder's file system takes for an earlier one because it does not
    tell upper from lower case (macOS, Windows, exFAT, SMB shares; such systems also fold Unicode normalisation):
    name -> the earlier name. The file system is probed only when two names differ in nothing else."""
    first: dict[str, str] = {}
    later: dict[str, str] = {}
    for name in names:
        key = unicodedata.normalize("NFC", name).casefold()
        if key in first:
            later[name] = first[key]
        else:
            first[key] = name
    return later if later and _folds_case(output) else {}


def _folds_case(folder: Path) -> bool:
    """Whether ``folder``'s file system takes names that differ in case alone for one: a probe file is made there
    and removed (False when it cannot be made)."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".ocrlite-Case-Probe-", dir=folder)
    except OSError:
        return False
    os.close(handle)
    try:
        return os.path.exists(os.path.join(folder, os.path.basename(probe).swapcase()))
    finally:
        os.unlink(probe)


def _name_max(output: Path) -> int:
    """The longest file name (bytes) the output folder's file system allows (255 where it cannot be asked)."""
    folder = next((part for part in (output, *output.parents) if part.is_dir()), None)
    try:
        return os.pathconf(folder or ".", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # AttributeError: no pathconf (Windows)
        return 255


def read_paths_list(lines: Iterable[str]) -> list[str]:
    """Paths from a list file: one per line, as it is but for its line ending (a name may begin or end with a
    space); blank lines and ``#`` comments ignored; a UTF-8 byte-order mark before the first (Windows editors and
    PowerShell write one) is not part of it. A ValueError for a NUL character, which no path holds (a UTF-16
    list, as PowerShell's ``>`` writes; ``find -print0``)."""
    paths = []
    for number, line in enumerate(lines):
        text = line.rstrip("\r\n")
        if number == 0:
            text = text.removeprefix("\ufeff")
        if "\0" in text:
            raise ValueError(f"line {number + 1} holds a NUL character, which no path has (a UTF-16 list, or "
                             "find -print0?): give one path per line, in UTF-8")
        if text.strip() and not text.lstrip().startswith("#"):
            paths.append(text)
    return paths


def source_stamp(path: Path) -> dict[str, Any] | None:
    """An input as it is now, as output records name it: its resolved path, size and mtime (ns); None when it
    cannot be looked up."""
    try:
        resolved = path.resolve()
        info = resolved.stat()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return None
    return {"path": str(resolved), "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def file_stamp(path: Path) -> dict[str, int] | None:
    """An output file as records keep it: its size and mtime (ns); None when it is absent."""
    try:
        info = path.stat()
    except OSError:
        return None
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _up_to_date(job: Job, records: dict[str, dict[str, Any]], settings: str) -> bool:
    """True when every output of ``job`` is recorded as made from its input as it is now, with ``settings``."""
    if job.stamp is None:
        return False
    for fmt in job.outputs:
        record = records.get(job.record_key(fmt))
        if record is None or record.get("source") != job.stamp or record.get("settings") != settings:
            return False
    return True


def _read_report(path: Path) -> dict[str, Any]:
    """The previous run's report, or ``{}`` when there is none (or it cannot be read)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _read_journal(path: Path, outputs: dict[str, Any], settings: dict[str, Any]) -> tuple[dict[str, Any],
                                                                                          dict[str, Any]]:
    """``outputs`` and ``settings`` (the report's) updated by the journal's lines, in order: ``{"output": KEY,
    "record": {...}}`` and ``{"settings": {FINGERPRINT: {...}}}``. A line cut short by a kill is skipped."""
    outputs, settings = dict(outputs), dict(settings)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return outputs, settings
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("output"), str):
            outputs[entry["output"]] = entry.get("record")
        elif isinstance(entry, dict) and isinstance(entry.get("settings"), dict):
            settings.update(entry["settings"])
    return outputs, settings


def _records_on_disk(records: dict[str, Any], output: Path) -> dict[str, dict[str, Any]]:
    """The output records that still describe the files on disk: same size and mtime (an output replaced
    since, e.g. by a run killed before it recorded it, has lost its record)."""
    return {str(key): record for key, record in records.items()
            if isinstance(record, dict) and record.get("file") is not None
            and record["file"] == file_stamp(output / str(key))}


def _unfinished(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The failures the previous run's report lists (its own, and those it carried from earlier runs), and
    the inputs it did not reach (``pending``, as failures with that reason); each names its input.

    A file with a failed page still gets outputs for its other pages; this keeps it from counting as done,
    also across runs that leave it out (``--glob``, other inputs) or are interrupted before retrying it.
    """
    try:
        entries = [dict(item) for item in (*report.get("failures", []), *report.get("carried", []))
                   if item.get("name")]
        entries += [{"path": "", "name": str(name), "reason": "not reached by an interrupted run", "page": None}
                    for name in report.get("pending", [])]
        return entries
    except (ValueError, AttributeError, TypeError, KeyError):
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


def _inside(file: Path, folder: str) -> bool:
    """Whether ``file`` is in ``folder`` (a resolved path) or below it, whatever symlinks its own path goes
    through."""
    return f"{os.path.realpath(file.parent)}{os.sep}".startswith(folder.rstrip(os.sep) + os.sep)


def _named_like_output(path: Path) -> bool:
    """True for ``<name>.<input extension>.<output format>``, the names batch mode writes."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    return len(suffixes) >= 2 and suffixes[-1][1:] in FORMATS and suffixes[-2] in INPUT_EXTENSIONS
