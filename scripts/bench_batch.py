"""Batch throughput: pages/minute and peak RSS with 1 and 2 workers, ocrlite vs RapidOCR.

    python scripts/bench_batch.py [--data ../shared/data/funsd] [--limit 20] [--workers 1,2]

Each configuration runs in a fresh child process (this script with ``--child``); the parent
times it and samples the RSS of the child and all its worker processes together (psutil),
reporting the peak. Times are wall-clock for the whole child: start-up and model loading
in every worker included. ocrlite runs the real
batch runner (json output); RapidOCR (``rapidocr_onnxruntime``, if installed) runs in a
process pool of the same size, each process loading its models once; its onnxruntime
sessions pick their own thread count (1.2.x offers no setting), ocrlite splits the cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _images(data: Path, limit: int) -> list[Path]:
    from ocrlite.io.images import expand_inputs

    files, _ = expand_inputs([data / "images" if (data / "images").is_dir() else data])
    return files[:limit]


def _child_ocrlite(files: list[str], workers: int) -> int:
    from ocrlite.batch.run import BatchOptions, EngineSpec, run_batch

    with tempfile.TemporaryDirectory() as out:
        report = run_batch(files, EngineSpec(), BatchOptions(Path(out), ("json",), workers=workers,
                                                              quiet=True, overwrite=True))
    return report.pages


_rapid: dict[str, Any] = {}


def _rapid_init() -> None:
    from rapidocr_onnxruntime import RapidOCR

    _rapid["engine"] = RapidOCR()


def _rapid_one(path: str) -> int:
    result, _ = _rapid["engine"](path)
    return len(result or [])


def _child_rapidocr(files: list[str], workers: int) -> int:
    if workers == 1:
        _rapid_init()
        for path in files:
            _rapid_one(path)
        return len(files)
    with multiprocessing.get_context("spawn").Pool(workers, _rapid_init) as pool:
        list(pool.imap_unordered(_rapid_one, files, chunksize=1))
    return len(files)


def _measure(engine: str, files: list[Path], workers: int) -> dict[str, float]:
    """Run one configuration in a child; wall time and peak RSS of its whole process tree."""
    import psutil

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("\n".join(str(f) for f in files))
    command = [sys.executable, __file__, "--child", engine, str(workers), listing.name]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    proc, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        try:
            tree = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    output = child.stdout.read() if child.stdout else ""
    os.unlink(listing.name)
    if child.returncode != 0:
        raise SystemExit(f"{engine} with {workers} workers failed ({child.returncode}): {output}")
    pages = json.loads(output.strip().splitlines()[-1])["pages"]
    return {"pages": pages, "seconds": elapsed, "pages_per_min": 60 * pages / elapsed,
            "peak_rss_mib": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data" / "funsd")
    parser.add_argument("--limit", type=int, default=20, help="pages to read (default 20)")
    parser.add_argument("--workers", default="1,2", help="worker counts to try (default 1,2)")
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "WORKERS", "LIST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, workers, listing = args.child
        files = Path(listing).read_text().split("\n")
        run = _child_ocrlite if engine == "ocrlite" else _child_rapidocr
        print(json.dumps({"pages": run(files, int(workers))}))
        return

    files = _images(args.data, args.limit)
    if not files:
        raise SystemExit(f"no images under {args.data}")
    engines = ["ocrlite"]
    try:
        import rapidocr_onnxruntime  # noqa: F401

        engines.append("rapidocr")
    except ImportError:
        print("rapidocr_onnxruntime not installed: ocrlite only", file=sys.stderr)
    print(f"{len(files)} pages from {args.data}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} (other work on the machine skews the figures)")
    print(f"{'engine':<10} {'workers':>7} {'pages':>5} {'seconds':>8} {'pages/min':>10} {'peak RSS MiB':>13}")
    for workers in (int(w) for w in args.workers.split(",")):
        for engine in engines:
            r = _measure(engine, files, workers)
            print(f"{engine:<10} {workers:>7} {r['pages']:>5} {r['seconds']:>8.1f} "
                  f"{r['pages_per_min']:>10.1f} {r['peak_rss_mib']:>13.0f}", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
