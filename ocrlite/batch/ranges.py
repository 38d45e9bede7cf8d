"""Long inputs in page ranges: split a file's pages, OCR one range, join the ranges into the outputs.

A distributed run (``ocrlite.batch.ray_runner``) sends each range of a long PDF or TIFF to a
different worker. A range's pages come back as records without their images; once every
range is back, ``join_ranges`` adds them in page order to the same writers ``process_file``
uses (re-rendering a page image only for the pdf output) and writes the outputs atomically,
so the files equal those of a run that read the whole input at once.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace

from ocrlite.batch.heap import trim_heap
from ocrlite.batch.plan import Job
from ocrlite.batch.report import Failure, FileOutcome
from ocrlite.batch.run import BatchOptions, fail_file, read_pages, store_output
from ocrlite.errors import error_reason
from ocrlite.io.pages import open_pages
from ocrlite.io.writers import PageRecord, make_writer

__all__ = ["PageRange", "RangeOutcome", "join_ranges", "process_range", "split_pages"]

PageRange = tuple[int, int]
"""First and last page, 1-based and inclusive."""

RangeOutcome = tuple[FileOutcome, list[PageRecord]]
"""A range's counts and failures, and its pages' records (without images) in page order."""


def split_pages(pages: int, size: int) -> list[PageRange]:
    """``pages`` pages in ranges of at most ``size``: ``split_pages(5, 2) == [(1, 2), (3, 4), (5, 5)]``."""
    return [(first, min(first + size - 1, pages)) for first in range(1, pages + 1, size)]


class _Records:
    """A writer-like sink keeping each page's record without its image."""

    def __init__(self) -> None:
        self.records: list[PageRecord] = []

    def add(self, page: PageRecord) -> None:
        self.records.append(replace(page, image=None))

    def missing(self, number: int, reason: str) -> None:
        """``join_ranges`` finds the missing pages in the range's failures."""

    def render(self) -> bytes:
        raise NotImplementedError("records are joined by join_ranges, not rendered")


def process_range(engine: object, job: Job, options: BatchOptions, pages: PageRange,
                  data: bytes | None = None) -> RangeOutcome:
    """OCR pages ``pages`` of ``job.source`` (or of its contents ``data``, as ``process_file`` does);
    nothing is written, failures are returned, not raised."""
    outcome, sink = FileOutcome(job.name), _Records()
    try:
        with open_pages(job.source, options.dpi, options.max_pixels, data) as source:
            numbers = range(pages[0], min(pages[1], len(source)) + 1)
            read_pages(engine, source, job, numbers, [sink], outcome)
    except Exception as exc:  # the file could not be opened here
        outcome.failures.append(Failure(str(job.source), job.name, error_reason(exc)))
    finally:
        trim_heap()
    return outcome, sink.records


def join_ranges(job: Job, options: BatchOptions, parts: list[RangeOutcome]) -> FileOutcome:
    """Write ``job``'s outputs from all its ranges' records, in page order; failures are returned.

    The pages read are written even when some failed (a range's worker died, a page is broken),
    as a local run writes a file with a failed page; the failures make the next run retry the file.
    """
    outcome = FileOutcome(job.name)
    records: list[PageRecord] = []
    for part, part_records in parts:
        outcome.pages += part.pages
        outcome.lines += part.lines
        outcome.failures += [f for f in part.failures if f not in outcome.failures]
        records += part_records
    outcome.failures.sort(key=lambda f: (f.page is None, f.page or 0))
    if not records:
        return outcome
    gaps = {f.page: f.reason for f in outcome.failures if f.page is not None}
    try:
        writers = {fmt: make_writer(fmt, job.name) for fmt in job.outputs}
        pdf = "pdf" in writers  # the searchable pdf needs each page image again: render it here
        with open_pages(job.source, options.dpi, options.max_pixels) if pdf else nullcontext() as source:
            pages = sorted([(r.number, r) for r in records] + [(n, None) for n in gaps], key=lambda x: x[0])
            for number, record in pages:
                if record is None:  # a page that failed keeps its place, as in process_file
                    for writer in writers.values():
                        writer.missing(number, gaps[number])
                    continue
                page = replace(record, image=source.page(number).image) if source else record  # rendered once
                for writer in writers.values():
                    writer.add(page)
        for fmt, writer in writers.items():
            store_output(job.outputs[fmt], writer.render())
    except Exception as exc:  # an output that could not be written
        fail_file(outcome, job, exc)
    return outcome
