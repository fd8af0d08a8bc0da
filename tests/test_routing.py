"""Document routing: a question that names a document adds that document's chunks to the
fusion; a question that names none is searched as before."""

from __future__ import annotations

from indexes import DocumentRecord
from rag.routing import DocumentRouter, normalise_periods


def _doc(name: str, header: str) -> DocumentRecord:
    return DocumentRecord(name, f"/x/{name}", "0" * 64, 1, 10, 20, header=header)


NORTHWIND = "Northwind Traders, Inc. · Form 10-K annual report · fiscal year ended December 31"
SHELF = [
    _doc("a.pdf", f"{NORTHWIND}, 2018 (FY2018)"),
    _doc("b.pdf", f"{NORTHWIND}, 2019 (FY2019)"),
    _doc("c.pdf", "Contoso Foods Corporation · Form 10-Q quarterly report · quarter ended March 31, 2019"),
    _doc("d.pdf", "Fabrikam plc · earnings release · fourth quarter 2019 (2019)"),
]


def test_fiscal_years_are_written_as_the_headers_write_them() -> None:
    assert normalise_periods("capex in FY18?").endswith("FY2018")
    assert normalise_periods("fiscal year 2019 revenue").endswith("FY2019")
    assert normalise_periods("What was revenue in 2019?") == "What was revenue in 2019?"


def test_a_question_is_routed_to_the_documents_it_names_and_only_those() -> None:
    router = DocumentRouter(SHELF)
    routes = router.route([
        "What was Northwind's FY2019 capital expenditure?",  # company and year: one filing
        "Contoso net sales in the quarter",
        "What is the boiling point of water?",  # names no document
        "annual report",  # fits half the shelf: names none of it
    ])
    assert routes == [["b.pdf"], ["c.pdf"], [], []]


def test_documents_without_headers_route_nowhere() -> None:
    router = DocumentRouter([_doc("1", ""), _doc("2", "")])
    assert router.route(["anything at all"]) == [[]]


def test_one_shared_word_or_a_question_word_names_no_document() -> None:
    # encyclopedia-like paragraphs titled by their subject: a topic word is not a name
    shelf = [
        _doc("Prime_number-1", "Prime number 1"),
        _doc("Doctor_Who-2", "Doctor Who 2"),
        _doc("Super_Bowl_50-1", "Super Bowl 50 1"),
        *(_doc(f"other-{i}", f"Other subject {i}") for i in range(6)),
    ]
    routes = DocumentRouter(shelf).route([
        "Each area has a population that exceeds what number?",  # one word of "Prime number"
        "Who registered the most sacks on the team?",  # a question word, not the series
        "Which team won Super Bowl 50?",  # the whole name
    ])
    assert routes == [[], [], ["Super_Bowl_50-1"]]


def test_a_document_without_a_header_is_routed_to_by_its_file_name() -> None:
    # a one-chunk document gets no header; a question naming it must not go to its headed twin
    shelf = [
        _doc("Northwind_2018_annual.pdf", ""),
        _doc("b.pdf", f"{NORTHWIND}, 2019 (FY2019)"),
        *(_doc(f"x{i}.pdf", f"Unrelated Body {i} · annual report") for i in range(4)),
    ]
    assert DocumentRouter(shelf).route(["Northwind 2018 annual revenue"]) == [["Northwind_2018_annual.pdf"]]
