"""End-to-end accuracy: ocrlite's torch nets vs the original ONNX nets (det, cls, rec), same pipeline.

    python scripts/eval_e2e.py [--data ../shared/data] [--limit N] [--funsd-limit N] [--onnx-dir DIR]

ICDAR 2015: word-level end-to-end P/R/H (IoU > 0.5 and case-insensitive equal text, '###' don't
care; PP-OCR reads lines, so multi-word lines cannot match word boxes: absolute numbers are low,
the comparison is what matters). FUNSD: bag-of-words P/R/F1 per ``ocrlite.evaluate.bag_of_words``.
Seconds per image cover the whole pipeline.
"""

from __future__ import annotations

import argparse

from _bench_common import TimedRun, add_common_args, build_systems, limited, print_table, run_systems

from ocrlite import OCR, PageResult
from ocrlite.datasets import load_funsd, load_icdar2015
from ocrlite.evaluate import PRScores, bag_of_words, evaluate_end_to_end


def identical_pages(runs: dict[str, TimedRun[PageResult]]) -> int:
    """Images on which both systems return the same texts and boxes."""
    first, second = runs.values()
    return sum(a.to_dict() == b.to_dict() for a, b in zip(first.outputs, second.outputs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--funsd-limit", type=int, default=None, help="FUNSD pages (default: --limit)")
    parser.add_argument("--skip-funsd", action="store_true", help="ICDAR 2015 only")
    args = parser.parse_args()

    systems = build_systems(args, stages=["det", "cls", "rec"])
    icdar = limited(load_icdar2015(args.data / "icdar2015"), args.limit)
    icdar_runs = run_systems(systems, [p for p, _ in icdar], OCR.__call__)
    icdar_scores = {
        name: evaluate_end_to_end([[(l.points, l.text) for l in page.lines] for page in run.outputs],
                                  [regions for _, regions in icdar])
        for name, run in icdar_runs.items()
    }
    funsd = [] if args.skip_funsd else limited(load_funsd(args.data / "funsd"),
                                               args.funsd_limit if args.funsd_limit is not None else args.limit)
    funsd_runs = run_systems(systems, [p for p, _ in funsd], OCR.__call__) if funsd else {}
    funsd_scores = {
        name: sum((bag_of_words([l.text for l in page.lines], words)
                   for page, (_, words) in zip(run.outputs, funsd)), PRScores())
        for name, run in funsd_runs.items()
    }

    rows = []
    for system in systems:
        e2e, run = icdar_scores[system.name], icdar_runs[system.name]
        row = [system.name, 100 * e2e.precision, 100 * e2e.recall, 100 * e2e.hmean,
               f"{run.seconds_per_image:.3f}"]
        if funsd:
            bow, frun = funsd_scores[system.name], funsd_runs[system.name]
            row += [100 * bow.precision, 100 * bow.recall, 100 * bow.f1, f"{frun.seconds_per_image:.3f}"]
        rows.append(row)
    headers = ["system", "IC15 e2e P %", "R %", "H %", "s/image"]
    headers += ["FUNSD BoW P %", "R %", "F1 %", "s/image"] if funsd else []
    print(f"\nEnd to end: ICDAR 2015 {len(icdar)} images; FUNSD {len(funsd)} pages")
    print_table(headers, rows)
    names = [s.name for s in systems]
    print(f"ICDAR e2e hmean difference (ocrlite - onnxruntime): "
          f"{100 * (icdar_scores[names[0]].hmean - icdar_scores[names[1]].hmean):+.2f} points; "
          f"identical pages {identical_pages(icdar_runs)}/{len(icdar)}")
    if funsd:
        print(f"FUNSD BoW F1 difference (ocrlite - onnxruntime): "
              f"{100 * (funsd_scores[names[0]].f1 - funsd_scores[names[1]].f1):+.2f} points; "
              f"identical pages {identical_pages(funsd_runs)}/{len(funsd)}")


if __name__ == "__main__":
    main()
