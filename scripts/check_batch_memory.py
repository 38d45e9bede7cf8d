"""Memory over a long batch run: the peak RSS over its last tenth must stay within 10% of the peak over its first.

    python scripts/check_batch_memory.py [--pages 200] [--formats json,txt,tsv,hocr,pdf]

Renders ``--pages`` small text pages of varying sizes into a temp folder, runs them through
the batch runner's ``process_file`` one input at a time (as ``ocrlite ocr -o`` does with one
worker), and reads this process's RSS after each page. Prints the highest RSS over the first 10%
of the pages and over the last 10%, and the growth between them; exits 1 if it is 10% or more.
Peaks, not single readings, so that a reading just after the heap was trimmed proves nothing.
Like the ``ocrlite`` command, it runs under tcmalloc where that is installed (``OCRLITE_MALLOC=system``: not).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from ocrlite.backends.malloc import malloc_in_use, relaunch_with_tcmalloc
from ocrlite.errors import ConfigError, exit_on_error

WORDS = "invoice total paid date amount order number customer address phone account balance".split()


def _rss_mib() -> float:
    """Current resident set size of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _make_pages(folder: Path, count: int) -> None:
    from PIL import Image, ImageDraw, ImageFont

    rng = random.Random(0)
    font = ImageFont.load_default(size=28)
    for i in range(count):
        width, height = rng.randrange(320, 720, 16), rng.randrange(160, 480, 16)
        image = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(image)
        for y in range(16, height - 40, 48):
            draw.text((16, y), " ".join(rng.sample(WORDS, 3)), fill="black", font=font)
        image.save(folder / f"page{i:04d}.png")


def main() -> None:
    relaunch_with_tcmalloc()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--formats", default="json,txt,tsv,hocr,pdf")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    if args.pages < 1:
        raise ConfigError(f"--pages must be at least 1, got {args.pages}")

    import torch

    from ocrlite.batch.run import BatchOptions, EngineSpec, process_file

    torch.set_num_threads(args.threads)
    from ocrlite.batch.plan import make_plan

    with tempfile.TemporaryDirectory() as tmp:
        scans, out = Path(tmp, "scans"), Path(tmp, "out")
        scans.mkdir()
        _make_pages(scans, args.pages)
        options = BatchOptions(out, tuple(args.formats.split(",")))
        jobs = make_plan([scans], out, options.formats).jobs
        engine = EngineSpec().build()
        tenth = max(1, args.pages // 10)
        readings: list[float] = []
        start = time.perf_counter()
        for done, job in enumerate(jobs, start=1):
            outcome = process_file(engine, job, options)
            if outcome.failures:
                raise SystemExit(f"unexpected failure: {outcome.failures[0].message()}")
            readings.append(_rss_mib())
            if done % 50 == 0:
                print(f"  {done} pages: RSS {readings[-1]:.1f} MiB", flush=True)
        seconds = time.perf_counter() - start
    early, last = max(readings[:tenth]), max(readings[-tenth:])
    growth = (last - early) / early
    print(f"peak RSS over the first {tenth} pages: {early:.1f} MiB; over the last {tenth}: {last:.1f} MiB; "
          f"growth {100 * growth:+.1f}% (limit +10%); {seconds:.1f} s for the pages, malloc: {malloc_in_use()}")
    sys.exit(0 if growth < 0.10 else 1)


if __name__ == "__main__":
    exit_on_error(main, "check_batch_memory.py")
