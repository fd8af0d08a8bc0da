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
