"""Page orientation and the OCRmyPDF plugin, measured on the dev data (issue 15).

1. ``classifier``: page orientation on FUNSD and ICDAR 2015 dev images, each turned clockwise by
   0/90/180/270 degrees: accuracy per dataset and angle (target >= 98 %) of the page classifier alone, of
   the fused decision without the recognizer (classifier over four turns + the detected lines' shape and
   direction) and of the decision ``--rotate-pages`` applies (the same, plus, for a page in doubt, the
   recognizer's readings of its longest lines and the page turned a quarter), thresholds included; and the
   seconds per page the two decisions add to the line detection; accuracy on every other image too.
2. ``rotate``: the pipeline with ``pipeline.page_orientation: true`` (what ``ocrlite ocr --rotate-pages``
   runs) on FUNSD dev pages turned by 90/180/270 (cycling), bag-of-words F1 vs the same pages upright
   read without the page step (target: within 2 points).
3. ``ocrmypdf``: bag-of-words F1 of the text layer OCRmyPDF writes for FUNSD dev pages (one PDF, read
   back with pypdfium2), with ``--plugin ocrlite.ocrmypdf_plugin`` vs OCRmyPDF's own Tesseract.

Usage: nice -n 10 python scripts/bench_orientation.py [--parts classifier rotate ocrmypdf] [--limit N]
       [--datasets FUNSD "ICDAR 2015"] [--model PRESET] [--threads N]
       [--engines tesseract ocrlite]
(OCRmyPDF's command line lowers its own priority by 5 more.)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ocrlite import OCR
from ocrlite.errors import OcrliteError, exit_on_error
from ocrlite.eval.datasets import load_funsd, load_icdar2015
from ocrlite.eval.metrics import PRScores, bag_of_words
from ocrlite.extras import debian, extra, require
from ocrlite.presets import check_installed

REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
ANGLES = (0, 90, 180, 270)
TURN_CW = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def turned(image: np.ndarray, angle: int) -> np.ndarray:
    return image if angle == 0 else cv2.rotate(image, TURN_CW[angle])


def bench_classifier(data: Path, limit: int | None, model: str, datasets: list[str]) -> None:
    """Per dataset and angle: the page classifier alone (its top class on the page as given), the fused
    decision without the recognizer (classifier over four turns + the text lines' shape and direction) and
    the pipeline's decision (``--rotate-pages``: the same, plus the recognizer's readings and the page turned
    a quarter while the page is in doubt), both after the threshold; then the seconds per page that the two
    decisions take (CPU time) on top of detecting the page's lines, upright pages and all pages. The last two columns
    split the images into every other one (the 1st, 3rd, ... and the 2nd, 4th, ...): a setting tuned on one
    half is checked on the other."""
    ocr = OCR(model=model, overrides=["pipeline.page_orientation=true"])
    assert ocr.page_steps is not None and ocr.page_steps.classifier is not None
    classifier = ocr.page_steps.classifier
    loaders = {"FUNSD": lambda: load_funsd(data / "funsd"), "ICDAR 2015": lambda: load_icdar2015(data / "icdar2015")}
    kinds = ("classifier", "lines", "reading")
    print(f"page orientation, preset {model}: accuracy per clockwise turn of the page classifier alone, the fused "
          "decision without the recognizer (lines) and --rotate-pages' decision (reading)")
    print(f"{'dataset':<12}{'images':>7}{'decision':>12}" + "".join(f"{a:>8}" for a in ANGLES) + f"{'all':>8}"
          + f"{'1st half':>10}{'2nd half':>10}")
    timings = []
    for name in datasets:
        paths = [path for path, _ in loaders[name]()][:limit]
        hits = {kind: {a: 0 for a in ANGLES} for kind in kinds}
        halves = {kind: [0, 0] for kind in kinds}  # right decisions on the 1st, 3rd, ... and 2nd, 4th, ... image
        seconds = {kind: {a: 0.0 for a in ANGLES} for kind in kinds[1:]}
        for index, path in enumerate(paths):
            image = cv2.imread(str(path))
            for angle in ANGLES:
                page = turned(image, angle)
                right = {"classifier": classifier(page)[0] == angle}
                lines = ocr.lines(page)
                for kind, probe in (("lines", None), ("reading", ocr.probe)):
                    start = time.process_time()  # CPU time: fair on a shared machine (one torch thread)
                    right[kind] = classifier.correction(page, lines, probe)[0] == angle
                    seconds[kind][angle] += time.process_time() - start
                for kind, hit in right.items():
                    hits[kind][angle] += hit
                    halves[kind][index % 2] += hit
        for kind, counts in hits.items():
            cells = "".join(f"{100 * counts[a] / len(paths):>7.1f}%" for a in ANGLES)
            total = 100 * sum(counts.values()) / (4 * len(paths))
            split = "".join(f"{100 * halves[kind][h] / max(1, 4 * len(paths[h::2])):>9.1f}%" for h in (0, 1))
            print(f"{name:<12}{len(paths):>7}{kind:>12}{cells}{total:>7.1f}%{split}", flush=True)
        upright = {kind: seconds[kind][0] / len(paths) for kind in kinds[1:]}
        every = {kind: sum(seconds[kind].values()) / (4 * len(paths)) for kind in kinds[1:]}
        timings.append((name, upright, every))
    print("CPU seconds per page of the decision on top of detecting the lines (lines -> reading, added):")
    for name, upright, every in timings:
        print(f"{name:<12} upright pages {upright['lines']:.3f} -> {upright['reading']:.3f} "
              f"({upright['reading'] - upright['lines']:+.3f}); all turns {every['lines']:.3f} -> "
              f"{every['reading']:.3f} ({every['reading'] - every['lines']:+.3f})", flush=True)


def bench_rotate(data: Path, limit: int | None, model: str) -> None:
    """Upright FUNSD pages read plainly vs the same pages turned 90/180/270 (cycling) read with the page
    step; a running total every 10 pages (a cut-short run still states how many pages it measured)."""
    samples = load_funsd(data / "funsd")[:limit]
    plain = OCR(model=model)
    rotating = OCR(model=model, overrides=["pipeline.page_orientation=true"])
    upright, rotated, right = PRScores(0, 0, 0), PRScores(0, 0, 0), 0
    for i, (path, words) in enumerate(samples, 1):
        image = cv2.imread(str(path))
        angle = (90, 180, 270)[(i - 1) % 3]
        upright = upright + bag_of_words([plain(image).text], words)
        page = rotating(turned(image, angle))
        right += page.rotation == angle
        rotated = rotated + bag_of_words([page.text], words)
        if i % 10 == 0 or i == len(samples):
            print(f"FUNSD dev, {i} pages, preset {model}: bag-of-words F1 upright {100 * upright.f1:.1f}, "
                  f"turned 90/180/270 with --rotate-pages {100 * rotated.f1:.1f} (difference "
                  f"{100 * (rotated.f1 - upright.f1):+.1f} points; pages turned back right {right}/{i})", flush=True)


def _ocrmypdf_text(pdf: Path, out: Path, args: list[str]) -> tuple[list[str], float]:
    import pypdfium2 as pdfium

    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ocrmypdf", "-q", "--output-type", "pdf", *args, str(pdf), str(out)],
                   check=True)
    seconds = time.perf_counter() - start
    doc = pdfium.PdfDocument(str(out))
    try:
        return [doc[i].get_textpage().get_text_range() for i in range(len(doc))], seconds
    finally:
        doc.close()


def bench_ocrmypdf(data: Path, limit: int | None, model: str, threads: int, engines: list[str]) -> None:
    import img2pdf

    samples = load_funsd(data / "funsd")[:limit]
    with tempfile.TemporaryDirectory() as folder:
        pdf = Path(folder) / "funsd.pdf"
        pdf.write_bytes(img2pdf.convert([str(p) for p, _ in samples],
                                        layout_fun=img2pdf.get_fixed_dpi_layout_fun((100, 100))))
        systems = {
            "OCRmyPDF + Tesseract": ["--jobs", "1"],
            f"OCRmyPDF + ocrlite ({model})": ["--jobs", "1", "--plugin", "ocrlite.ocrmypdf_plugin",
                                              "--ocrlite-model", model, "--ocrlite-threads", str(threads)],
        }
        systems = {name: args for name, args in systems.items() if name.split()[2].lower() in engines}
        print(f"FUNSD dev, {len(samples)} pages (100 dpi PDF), text layer read back with pypdfium2")
        print(f"{'system':<36}{'precision':>10}{'recall':>8}{'F1':>8}{'s/page':>8}")
        for name, args in systems.items():
            texts, seconds = _ocrmypdf_text(pdf, Path(folder) / "out.pdf", args)
            score = PRScores(0, 0, 0)
            for text, (_, words) in zip(texts, samples, strict=True):
                score = score + bag_of_words([text], words)
            print(f"{name:<36}{100 * score.precision:>9.1f}%{100 * score.recall:>7.1f}%{100 * score.f1:>7.1f}%"
                  f"{seconds / len(samples):>8.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--parts", nargs="+", choices=("classifier", "rotate", "ocrmypdf"),
                        default=["classifier", "rotate", "ocrmypdf"])
    parser.add_argument("--limit", type=int, help="first N images/pages of each set (default: all)")
    parser.add_argument("--datasets", nargs="+", choices=("FUNSD", "ICDAR 2015"), default=["FUNSD", "ICDAR 2015"],
                        help="the sets of the 'classifier' part")
    parser.add_argument("--model", default="ppocr-v2", help="preset for 'rotate' and the plugin")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (also --ocrlite-threads)")
    parser.add_argument("--engines", nargs="+", choices=("tesseract", "ocrlite"), default=["tesseract", "ocrlite"],
                        help="the OCRmyPDF engines to measure")
    args = parser.parse_args()
    check_installed(args.model)  # what the parts need, before the first part runs
    if "ocrmypdf" in args.parts:
        require("the ocrmypdf part", ("ocrmypdf", "img2pdf"), extra("ocrmypdf"))
        if shutil.which("tesseract") is None:  # OCRmyPDF checks for it at start-up, whichever engine runs
            raise OcrliteError("the ocrmypdf part needs the tesseract binary" + debian("tesseract-ocr"))
    import torch

    torch.set_num_threads(args.threads)
    if "classifier" in args.parts:
        bench_classifier(args.data, args.limit, args.model, args.datasets)
    if "rotate" in args.parts:
        bench_rotate(args.data, args.limit, args.model)
    if "ocrmypdf" in args.parts:
        bench_ocrmypdf(args.data, args.limit, args.model, args.threads, args.engines)


if __name__ == "__main__":
    exit_on_error(main, "bench_orientation.py")
