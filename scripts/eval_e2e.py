"""End-to-end accuracy: ocrlite's torch nets vs the original ONNX nets (det, cls, rec), same pipeline.

    python scripts/eval_e2e.py [--data ../shared/data] [--limit N] [--funsd-limit N] [--onnx-dir DIR]

ICDAR 2015: word-level end-to-end P/R/H (IoU > 0.5 and case-insensitive equal text, '###' don't
care) on the pipeline's word boxes (``TextLine.words``, cut from each line at the CTC time steps);
"line quads" scores whole lines instead (a multi-word line cannot match a word box). FUNSD: bag-of-words P/R/F1 per ``ocrlite.evaluate.bag_of_words``.
Seconds per image cover the whole pipeline.
"""

from __future__ import annotations

import argparse

from _bench_common import TimedRun, add_common_args, build_systems, limited, print_table, run_systems

from ocrlite import OCR, PageResult
from ocrlite.datasets import load_funsd, load_icdar2015
from ocrlite.evaluate import GtRegion, PRScores, bag_of_words, evaluate_end_to_end


def page_lines(page: PageResult) -> list[tuple[tuple[int, ...], str]]:
    return [(tuple(line.points.ravel().tolist()), line.text) for line in page.lines]


def icdar_e2e(run: TimedRun[PageResult], gts: list[list[GtRegion]], words: bool) -> PRScores:
    """ICDAR 2015 end-to-end scores of one system's pages, on word boxes or on whole lines."""
    if words:
        preds = [[(w.points, w.text) for line in page.lines for w in line.words] for page in run.outputs]
    else:
        preds = [[(line.points, line.text) for line in page.lines] for page in run.outputs]
    return evaluate_end_to_end(preds, gts)


def agreement(runs: dict[str, TimedRun[PageResult]]) -> str:
    """How often both systems return the same boxes and texts (scores ignored)."""
    first, second = runs.values()
    pages = [(page_lines(a), page_lines(b)) for a, b in zip(first.outputs, second.outputs)]
    same_pages = sum(a == b for a, b in pages)
    lines = sum(max(len(a), len(b)) for a, b in pages)
    differing = sum(max(len(a), len(b)) - len(set(a) & set(b)) for a, b in pages)
    return f"identical pages {same_pages}/{len(pages)}, differing lines {differing}/{lines}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--funsd-limit", type=int, default=None, help="FUNSD pages (default: --limit)")
    parser.add_argument("--skip-funsd", action="store_true", help="ICDAR 2015 only")
    args = parser.parse_args()

    systems = build_systems(args, stages=["det", "cls", "rec"])
    icdar = limited(load_icdar2015(args.data / "icdar2015"), args.limit)
    icdar_runs = run_systems(systems, [p for p, _ in icdar], OCR.__call__)
    gts = [regions for _, regions in icdar]
    icdar_scores = {name: icdar_e2e(run, gts, words=True) for name, run in icdar_runs.items()}
    line_scores = {name: icdar_e2e(run, gts, words=False) for name, run in icdar_runs.items()}
    funsd_limit = args.funsd_limit if args.funsd_limit is not None else args.limit
    funsd = [] if args.skip_funsd else limited(load_funsd(args.data / "funsd"), funsd_limit)
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
               100 * line_scores[system.name].hmean, f"{run.seconds_per_image:.3f}"]
        if funsd:
            bow, frun = funsd_scores[system.name], funsd_runs[system.name]
            row += [100 * bow.precision, 100 * bow.recall, 100 * bow.f1, f"{frun.seconds_per_image:.3f}"]
        rows.append(row)
    headers = ["system", "IC15 e2e P %", "R %", "H %", "H % (line quads)", "s/image"]
    headers += ["FUNSD BoW P %", "R %", "F1 %", "s/image"] if funsd else []
    print(f"\nEnd to end: ICDAR 2015 {len(icdar)} images; FUNSD {len(funsd)} pages")
    print_table(headers, rows)
    names = [s.name for s in systems]
    print(f"ICDAR e2e hmean difference (ocrlite - onnxruntime): "
          f"{100 * (icdar_scores[names[0]].hmean - icdar_scores[names[1]].hmean):+.2f} points; "
          f"{agreement(icdar_runs)}")
    if funsd:
        print(f"FUNSD BoW F1 difference (ocrlite - onnxruntime): "
              f"{100 * (funsd_scores[names[0]].f1 - funsd_scores[names[1]].f1):+.2f} points; "
              f"{agreement(funsd_runs)}")


if __name__ == "__main__":
    main()
