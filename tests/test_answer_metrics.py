"""Answer metrics on hand-computed cases."""

import math

import pytest

from eval.answer_metrics import (
    best_over_references,
    citation_precision_recall,
    exact_match,
    mean_and_nans,
    normalize_answer,
    rouge_l,
    token_f1,
)


def test_squad_normalisation_and_exact_match() -> None:
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert exact_match("the eiffel tower.", "Eiffel Tower") == 1.0
    assert exact_match("Eiffel", "Eiffel Tower") == 0.0


def test_citation_markers_are_not_answer_words() -> None:
    assert exact_match("308 [1].", "308") == 1.0
    assert exact_match("Robert Lane and Benjamin Vail [1, 2]", "Robert Lane and Benjamin Vail") == 1.0
    assert token_f1("308 points [2]", "308") == pytest.approx(2 / 3)  # "points" is a word, "2" is not
    assert rouge_l("police killed the gunman [3]", "police kill the gunman") == 1.0
    assert exact_match("[1]", "1") == 0.0


def test_token_f1() -> None:
    # prediction: "red big car" (3 tokens), reference: "big red truck" (3): common red, big -> P=R=2/3
    assert token_f1("a red big car", "the big red truck") == pytest.approx(2 / 3)
    # prediction 1 token all correct, reference 4 tokens: P=1, R=1/4 -> F1 = 0.4
    assert token_f1("Denver", "Denver Broncos football team") == pytest.approx(0.4)
    assert token_f1("nothing shared", "completely different") == 0.0
    assert token_f1("", "") == 1.0
    assert best_over_references(token_f1, "Denver", ["Broncos", "Denver"]) == 1.0


def test_rouge_l() -> None:
    # LCS of "police killed the gunman" and "the police kill the gunman" (stemmed kill/killed):
    # police kill the gunman = 4; P = 4/4, R = 4/5 -> F = 8/9
    assert rouge_l("police killed the gunman", "the police kill the gunman") == pytest.approx(8 / 9)
    assert rouge_l("unrelated words", "the police kill the gunman") == 0.0


def test_citation_precision_and_recall() -> None:
    evidence = [("a.pdf", 3), ("a.pdf", 7)]
    cited = [("a.pdf", 2, 3), ("b.pdf", 3, 3), ("a.pdf", 9, 9)]
    # precision: only a.pdf 2-3 covers an evidence page -> 1/3; recall: page 3 covered, 7 not -> 1/2
    assert citation_precision_recall(cited, evidence) == pytest.approx((1 / 3, 1 / 2))
    precision, recall = citation_precision_recall([], evidence)
    assert math.isnan(precision) and recall == 0.0
    assert math.isnan(citation_precision_recall(cited, [])[1])


def test_nans_are_counted_not_averaged_as_zero() -> None:
    mean, nans = mean_and_nans([1.0, math.nan, 0.5, math.nan])
    assert mean == pytest.approx(0.75) and nans == 2
    mean, nans = mean_and_nans([math.nan])
    assert math.isnan(mean) and nans == 1
