"""Batch throughput: pages/minute, peak RSS and model load with 1 and 2 workers, ocrlite (local and Ray) vs RapidOCR.

    python scripts/bench_batch.py [--data ../shared/data/funsd] [--limit 20] [--workers 1,2] [--no-ray]
                                  [--backends torch,onnxruntime]

Each configuration runs in a fresh child process (this script with ``--child``); the parent
times it and samples the RSS of the child and all its worker processes together (psutil),
reporting the peak. Times are wall-clock for the whole child: start-up and model loading
in every worker included. ocrlite runs the real
batch runner (json output); RapidOCR (``rapidocr_onnxruntime``, if installed) runs in a
process pool of the same size, each process loading its models once; its onnxruntime
sessions pick their own thread count (1.2.x offers no setting), ocrlite splits the cores.
The Ray row (``ocrlite-ray``, if Ray is installed) runs the same batch with ``--executor ray``
on a private local Ray started by the child (one actor per worker, one torch thread each): its
time includes starting Ray, and its RSS includes Ray's own processes (GCS, raylet, workers).
``--backends``: the ocrlite backends of the local rows (the Ray row uses the first). ``load s``: each
system's cold model load (imports + one build of the engine) in a fresh process of its own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ocrlite.errors import ConfigError, exit_on_error
from ocrlite.eval.speed import require_psutil, run_tree
from ocrlite.extras import missing, require_onnx
from ocrlite.stages import BACKENDS

ROOT = Path(__file__).resolve().parents[1]


def _images(data: Path, limit: int) -> list[Path]:
    from ocrlite.io.images import expand_inputs

    files, _ = expand_inputs([data / "images" if (data / "images").is_dir() else data])
    return files[:limit]


def _child_ocrlite(files: list[str], workers: int, backend: str, ray: bool = False) -> int:
    from ocrlite.batch.run import BatchOptions, EngineSpec, run_batch

    execute = None
    if ray:
        from ocrlite.batch.ray_runner import RayExecutor, RayOptions

        execute = RayExecutor(RayOptions(workers=workers, threads=1))
    with tempfile.TemporaryDirectory() as out:
        report = run_batch(files, EngineSpec(backend=backend), BatchOptions(Path(out), ("json",), workers=workers,
                                                              quiet=True, overwrite=True), execute)
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


def _load_seconds(engine: str, backend: str) -> float:
    """Imports and one build of the engine, in this fresh process (``--child-load``)."""
    start = time.perf_counter()
    if engine == "rapidocr":
        _rapid_init()
    else:
        from ocrlite.batch.run import EngineSpec

        EngineSpec(backend=backend).build()
    return time.perf_counter() - start


def _measure(engine: str, backend: str, files: list[Path], workers: int) -> dict[str, float]:
    """Run one configuration in a child; wall time and peak RSS of its whole process tree."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("\n".join(str(f) for f in files))
    try:
        elapsed, peak, output = run_tree([sys.executable, __file__, "--child", engine, backend, str(workers),
                                          listing.name])
    except RuntimeError as exc:
        raise SystemExit(f"{engine} with {workers} workers failed: {exc}") from None
    finally:
        os.unlink(listing.name)
    pages = json.loads(output.strip().splitlines()[-1])["pages"]
    return {"pages": pages, "seconds": elapsed, "pages_per_min": 60 * pages / elapsed, "peak_rss_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data" / "funsd")
    parser.add_argument("--limit", type=int, default=20, help="pages to read (default 20)")
    parser.add_argument("--workers", default="1,2", help="worker counts to try (default 1,2)")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray row")
    parser.add_argument("--backends", default="torch", help="ocrlite backends, comma-separated (default torch)")
    parser.add_argument("--child", nargs=4, metavar=("ENGINE", "BACKEND", "WORKERS", "LIST"), help=argparse.SUPPRESS)
    parser.add_argument("--child-load", nargs=2, metavar=("ENGINE", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_load:
        print(json.dumps({"load_s": _load_seconds(*args.child_load)}))
        return
    if args.child:
        engine, backend, workers, listing = args.child
        files = Path(listing).read_text().split("\n")
        if engine == "rapidocr":
            pages = _child_rapidocr(files, int(workers))
        else:
            pages = _child_ocrlite(files, int(workers), backend, ray=engine == "ocrlite-ray")
        print(json.dumps({"pages": pages}))
        return

    backends = args.backends.split(",")
    unknown = [backend for backend in backends if backend not in BACKENDS]
    if unknown or not all(w.isdigit() and int(w) > 0 for w in args.workers.split(",")):
        raise ConfigError(f"--backends: choose from {', '.join(BACKENDS)}, got {unknown[0]!r}" if unknown else
                          f"--workers: expected worker counts >= 1, comma-separated, got {args.workers!r}")
    require_psutil()  # what the runs need, before any runs
    if "onnxruntime" in backends:
        require_onnx("the onnxruntime backend")
    files = _images(args.data, args.limit)
    if not files:
        raise ConfigError(f"no images under {args.data}")
    systems = [("ocrlite", backend) for backend in backends]
    if not args.no_ray:
        if missing(("ray", "pyarrow")):
            print('ray not installed (pip install "ocrlite[ray]"): no Ray row', file=sys.stderr)
        else:
            systems.append(("ocrlite-ray", backends[0]))
    if missing(("rapidocr_onnxruntime",)):
        print("rapidocr_onnxruntime not installed: no RapidOCR row", file=sys.stderr)
    else:
        systems.append(("rapidocr", "onnxruntime"))
    print(f"{len(files)} pages from {args.data}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} (other work on the machine skews the figures)")
    print(f"{'engine':<11} {'backend':<11} {'workers':>7} {'pages':>5} {'seconds':>8} {'pages/min':>10} "
          f"{'peak RSS MiB':>13} {'load s':>7}")
    loads: dict[tuple[str, str], float] = {}
    for workers in (int(w) for w in args.workers.split(",")):
        for engine, backend in systems:
            r = _measure(engine, backend, files, workers)
            key = ("rapidocr" if engine == "rapidocr" else "ocrlite", backend)
            if key not in loads:  # after a first run: any ONNX export of ours is cached by then
                loads[key] = json.loads(run_tree([sys.executable, __file__, "--child-load", *key])[2])["load_s"]
            print(f"{engine:<11} {backend:<11} {workers:>7} {r['pages']:>5} {r['seconds']:>8.1f} "
                  f"{r['pages_per_min']:>10.1f} {r['peak_rss_mib']:>13.0f} {loads[key]:>7.2f}", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    exit_on_error(main, "bench_batch.py")
