"""Known-answer tests of the metrics and the benchmark readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ocrlite.eval.datasets import load_funsd, load_icdar2015, load_word_crops, parse_icdar_line
from ocrlite.eval.metrics import (
    GtRegion,
    PRScores,
    alphanumeric_accuracy,
    bag_of_words,
    bow_tokens,
    correct_words,
    edit_distance,
    evaluate_detection,
    evaluate_end_to_end,
    evaluate_recognition,
    norm_edit_similarity,
    paired_bootstrap,
    polygon_iou,
    word_accuracy,
)


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Clockwise quad from top-left, like the detector's output."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def gt(x0: float, y0: float, x1: float, y1: float, text: str = "word") -> GtRegion:
    return GtRegion(rect(x0, y0, x1, y1), text, dont_care=text == "###")


def counts(s: PRScores) -> tuple[int, int, int]:
    return s.matched, s.n_pred, s.n_gt


# --- detection ----------------------------------------------------------------------------------


def test_detection_perfect_match():
    s = evaluate_detection([[rect(0, 0, 100, 20)]], [[gt(0, 0, 100, 20)]])
    assert counts(s) == (1, 1, 1)
    assert (s.precision, s.recall, s.hmean) == (1.0, 1.0, 1.0)


def test_detection_no_match():
    s = evaluate_detection([[rect(200, 200, 300, 220)]], [[gt(0, 0, 100, 20)]])
    assert counts(s) == (0, 1, 1)
    assert (s.precision, s.recall, s.hmean) == (0.0, 0.0, 0.0)


def test_detection_is_one_to_one():
    s = evaluate_detection([[rect(0, 0, 100, 20), rect(1, 0, 100, 20)]], [[gt(0, 0, 100, 20)]])
    assert counts(s) == (1, 2, 1)
    assert s.precision == 0.5 and s.recall == 1.0
    assert s.hmean == pytest.approx(2 / 3)


def test_detection_iou_threshold_is_strict():
    truth = [[gt(0, 0, 100, 10)]]
    assert polygon_iou(rect(0, 0, 49, 10), rect(0, 0, 100, 10)) == pytest.approx(0.49)
    assert evaluate_detection([[rect(0, 0, 49, 10)]], truth).matched == 0
    assert evaluate_detection([[rect(0, 0, 51, 10)]], truth).matched == 1
    assert evaluate_detection([[rect(0, 0, 50, 10)]], truth).matched == 0  # IoU == 0.5: no
    assert evaluate_detection([[rect(0, 0, 49, 10)]], truth, iou_thresh=0.4).matched == 1


def test_detection_dont_care_region():
    truth = [[gt(0, 0, 100, 20), gt(0, 100, 100, 120, "###")]]
    inside = rect(10, 100, 90, 120)  # wholly inside the don't-care region: ignored
    s = evaluate_detection([[rect(0, 0, 100, 20), inside]], truth)
    assert counts(s) == (1, 1, 1)
    # only don't-care truth: nothing counts either side
    assert counts(evaluate_detection([[inside]], [[gt(0, 100, 100, 120, "###")]])) == (0, 0, 0)


def test_detection_dont_care_overlap_must_exceed_half_of_the_prediction():
    truth = [[gt(0, 0, 50, 10, "###")]]
    half = rect(0, 0, 100, 10)  # exactly 0.5 of its area inside: still counted
    assert counts(evaluate_detection([[half]], truth)) == (0, 1, 0)
    mostly = rect(0, 0, 80, 10)  # 0.625 inside: ignored
    assert counts(evaluate_detection([[mostly]], truth)) == (0, 0, 0)


def test_detection_dont_care_truth_never_matches():
    s = evaluate_detection([[rect(0, 0, 100, 20)]], [[gt(0, 0, 100, 20, "###")]])
    assert counts(s) == (0, 0, 0)


def test_detection_accumulates_over_images():
    preds = [[rect(0, 0, 100, 20)], [rect(0, 0, 10, 10), rect(50, 50, 60, 60)]]
    truth = [[gt(0, 0, 100, 20)], [gt(0, 0, 10, 10), gt(200, 0, 210, 10), gt(300, 0, 310, 10)]]
    s = evaluate_detection(preds, truth)
    assert counts(s) == (2, 3, 4)
    assert s.precision == pytest.approx(2 / 3) and s.recall == 0.5
    assert s.row() == {
        "precision": 66.67, "recall": 50.0, "hmean": 57.14, "matched": 2, "n_pred": 3, "n_gt": 4
    }


def test_detection_empty_inputs_give_zeros():
    for preds, truth in [([], []), ([[]], [[]]), ([[rect(0, 0, 5, 5)]], [[]]), ([[]], [[gt(0, 0, 5, 5)]])]:
        s = evaluate_detection(preds, truth)
        assert (s.precision, s.recall, s.hmean) == (0.0, 0.0, 0.0)


def test_detection_degenerate_and_self_crossing_polygons_do_not_crash():
    bowtie = np.array([[0, 0], [10, 10], [10, 0], [0, 10]], dtype=np.float64)
    line = np.array([[0, 0], [10, 0], [10, 0], [0, 0]], dtype=np.float64)
    s = evaluate_detection([[bowtie, line]], [[GtRegion(bowtie, "x"), gt(0, 0, 10, 10, "###")]])
    assert s.n_gt == 1


def test_detection_length_mismatch_raises():
    with pytest.raises(ValueError):
        evaluate_detection([[]], [])


# --- end to end ---------------------------------------------------------------------------------


def test_end_to_end_text_must_match_case_insensitively():
    truth = [[gt(0, 0, 100, 20, "Hello"), gt(0, 50, 100, 70, "World")]]
    preds = [[(rect(0, 0, 100, 20), " hELLo "), (rect(0, 50, 100, 70), "Word")]]
    s = evaluate_end_to_end(preds, truth)
    assert counts(s) == (1, 2, 2)
    assert s.hmean == 0.5


def test_end_to_end_pairs_by_geometry_first():
    # Standard ICDAR rule: the first prediction pairs with the truth; its wrong text makes it a miss,
    # and the second (correct) prediction is left unpaired.
    truth = [[gt(0, 0, 100, 20, "exit")]]
    preds = [[(rect(0, 0, 100, 20), "exlt"), (rect(0, 0, 100, 20), "EXIT")]]
    assert counts(evaluate_end_to_end(preds, truth)) == (0, 2, 1)


def test_end_to_end_dont_care_and_empty():
    truth = [[gt(0, 0, 100, 20, "###"), gt(0, 50, 100, 70, "ok")]]
    preds = [[(rect(0, 0, 100, 20), "anything"), (rect(0, 50, 100, 70), "OK")]]
    assert counts(evaluate_end_to_end(preds, truth)) == (1, 1, 1)
    assert counts(evaluate_end_to_end([[]], [[]])) == (0, 0, 0)
    assert evaluate_end_to_end([], []).hmean == 0.0


# --- bag of words -------------------------------------------------------------------------------


def test_bow_tokens_normalisation():
    assert bow_tokens(['"Hello," said U.S.A.', "-", "(x)"]) == {"hello": 1, "said": 1, "u.s.a": 1, "x": 1}


def test_bag_of_words_counts():
    s = bag_of_words(["Hello, world!", "foo"], ["hello", "World", "bar", "-"])
    assert counts(s) == (2, 3, 3)
    assert s.precision == pytest.approx(2 / 3) and s.f1 == pytest.approx(2 / 3)


def test_bag_of_words_is_a_multiset_and_sums():
    page1 = bag_of_words(["a a a"], ["a", "a"])
    assert counts(page1) == (2, 3, 2)
    page2 = bag_of_words(["b"], ["c"])
    total = page1 + page2
    assert counts(total) == (2, 4, 3)
    assert total.precision == 0.5 and total.recall == pytest.approx(2 / 3)


def test_bag_of_words_empty():
    s = bag_of_words([], [])
    assert counts(s) == (0, 0, 0) and (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)


# --- recognition --------------------------------------------------------------------------------


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("same", "same") == 0


def test_word_accuracy_and_ned():
    preds, truth = ["Hello", "wrld "], ["hello", "world"]
    assert word_accuracy(preds, truth) == 0.5
    assert word_accuracy(preds, truth, case_sensitive=True) == 0.0
    assert norm_edit_similarity(preds, truth) == pytest.approx(1 - (0 + 1 / 5) / 2)
    assert norm_edit_similarity(preds, truth, case_sensitive=True) == pytest.approx(1 - (1 / 5 + 1 / 5) / 2)
    assert norm_edit_similarity([""], [""]) == 1.0
    scores = evaluate_recognition(preds, truth)
    assert scores.row() == {"n": 2, "accuracy": 50.0, "1-NED": 90.0}


def test_correct_words_per_item():
    preds, truth = ["Hello", "wrld ", " Total"], ["hello", "world", "Total"]
    assert correct_words(preds, truth) == [True, False, True]
    assert correct_words(preds, truth, case_sensitive=True) == [False, False, True]


def test_paired_bootstrap_interval():
    # 30 of 100 items right for one system only: the difference is 0.3, its standard error sqrt(0.21 / 100)
    better, base = [1.0] * 30 + [0.0] * 70, [0.0] * 100
    low, high = paired_bootstrap(better, base)
    assert 0.3 - 1.96 * 0.0458 - 0.02 < low < 0.3 - 1.96 * 0.0458 + 0.02
    assert 0.3 + 1.96 * 0.0458 - 0.02 < high < 0.3 + 1.96 * 0.0458 + 0.02
    assert paired_bootstrap(base, better) == pytest.approx((-high, -low), abs=0.02)
    # the same items right for both systems: nothing differs, whatever is resampled
    assert paired_bootstrap(better, better) == (0.0, 0.0)
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 0.0])


def test_alphanumeric_accuracy_compares_letters_and_digits_only():
    # IIIT5K-style labels: visible punctuation and spaces are not in the label
    preds = ["life.", "\u201cSERVING", "193 KM", "Sure", "CHANGE!!", "smlie", "\u4e2d"]
    truth = ["LIFE", "SERVING", "193KM", "SURE", "CHANGE", "smile", "-"]
    assert alphanumeric_accuracy(preds, truth) == 5 / 6  # the last label has no letter or digit: left out
    assert word_accuracy(preds, truth) == 1 / 7
    assert alphanumeric_accuracy(["\u00e9t\u00e9"], ["t"]) == 1.0  # accented letters are not ASCII: dropped
    assert alphanumeric_accuracy([], []) == 0.0


def test_alphanumeric_accuracy_drops_non_ascii_letters_before_folding():
    # the benchmarks' lower() + [^0-9a-z] filter: 'ß' and the 'ﬁ' ligature are not ASCII letters, so they are
    # dropped, not casefolded into 'ss' and 'fi' that an ASCII prediction would match
    assert alphanumeric_accuracy(["STRASSE", "fire"], ["Stra\u00dfe", "\ufb01re"]) == 0.0
    assert alphanumeric_accuracy(["STRAE", "re"], ["Stra\u00dfe", "\ufb01re"]) == 1.0


def test_recognition_empty_inputs():
    assert word_accuracy([], []) == 0.0
    assert norm_edit_similarity([], []) == 0.0
    with pytest.raises(ValueError):
        word_accuracy(["a"], [])


# --- readers on hand-made files -----------------------------------------------------------------


def test_parse_icdar_line_unquotes_as_the_official_parser_and_refuses_nan():
    assert parse_icdar_line('1,2,3,4,5,6,7,8,"SCAN"').text == "SCAN"
    assert parse_icdar_line('1,2,3,4,5,6,7,8,"a\\"b"').text == 'a"b'
    assert parse_icdar_line('1,2,3,4,5,6,7,8,"We').text == '"We'  # a mark of the word itself stays
    with pytest.raises(ValueError, match="not finite coordinates"):
        parse_icdar_line("1,2,3,nan,5,6,7,8,x")


def test_parse_icdar_line_keeps_commas_in_text():
    region = parse_icdar_line("1,2,3,4,5,6,7,8,(US$1,57\n")
    assert region.text == "(US$1,57" and not region.dont_care
    np.testing.assert_array_equal(region.points, [[1, 2], [3, 4], [5, 6], [7, 8]])
    assert parse_icdar_line("\ufeff0,0,1,0,1,1,0,1,###").dont_care
    with pytest.raises(ValueError):
        parse_icdar_line("1,2,3")


def test_word_gt_escapes_and_crlf(tmp_path: Path):
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "gt.txt").write_bytes(
        b'\xef\xbb\xbfword_1.png, "Genaxis Theatre"\r\nword_2.png, "READER\\""\r\nword_3.png, "a,b"\r\n'
    )
    samples = load_word_crops(tmp_path)
    assert [text for _, text in samples] == ["Genaxis Theatre", 'READER"', "a,b"]
    assert samples[0][0] == tmp_path / "images" / "word_1.png"


def test_tags_reader(tmp_path: Path):
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "train.tags").write_text("train/1_2.png You\ntrain/3_4.png WISHES\n")
    assert load_word_crops(tmp_path) == [
        (tmp_path / "images" / "train/1_2.png", "You"),
        (tmp_path / "images" / "train/3_4.png", "WISHES"),
    ]


# --- readers on the real benchmark files ----------------------------------------------------------


@pytest.mark.data
def test_icdar2015_reader(shared_data: Path):
    samples = load_icdar2015(shared_data / "icdar2015")
    assert len(samples) == 150
    assert samples[0][0].name == "img_1.jpg" and samples[1][0].name == "img_7.jpg"
    regions = [r for _, image_gt in samples for r in image_gt]
    assert len(regions) == 1860
    assert sum(r.dont_care for r in regions) == 1141
    assert sum(not r.dont_care for r in regions) == 719
    assert all(path.is_file() for path, _ in samples)
    assert samples[0][1][0].text == "Genaxis Theatre"
    assert any("," in r.text for r in regions)


@pytest.mark.data
def test_funsd_reader(shared_data: Path):
    samples = load_funsd(shared_data / "funsd")
    assert len(samples) == 149
    assert sum(len(words) for _, words in samples) == 22512
    assert all(path.is_file() for path, _ in samples)


@pytest.mark.data
@pytest.mark.parametrize(("name", "count"), [("icdar2015_words", 4468), ("iiit5k", 2000)])
def test_word_crop_readers(shared_data: Path, name: str, count: int):
    samples = load_word_crops(shared_data / name)
    assert len(samples) == count  # the full train splits (see each set's README.md)
    assert all(path.is_file() and text for path, text in samples)


@pytest.mark.data
def test_icdar_word_labels_are_unescaped(shared_data: Path):
    texts = [text for _, text in load_word_crops(shared_data / "icdar2015_words")]
    assert texts[0] == "Genaxis Theatre"
    assert 'READER"' in texts
    assert not any(text.endswith("\r") for text in texts)
