from __future__ import annotations

import pytest

from connectwise.checks.names import CompanyIndex, normalize_company_name, suggest_matches


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Contoso Ltd", "CONTOSO LIMITED"),
        ("Contoso Ltd.", "contoso"),
        ("Fabrikam, Inc.", "Fabrikam Incorporated"),
        ("Acme Pty Ltd", "ACME"),
        ("Acme Pty. Ltd.", "Acme"),
        ("Widgets L.L.C.", "Widgets LLC"),
        ("Müller GmbH", "Muller"),
        ("Smith & Jones Corp", "Smith and Jones"),
        ("Smith & Co", "Smith"),
        ("  The   Northwind  Traders Co. ", "northwind traders"),
    ],
)
def test_it_treats_names_that_differ_in_case_punctuation_and_legal_form_as_equal(a, b):
    assert normalize_company_name(a) == normalize_company_name(b)


def test_it_keeps_distinct_names_distinct():
    assert normalize_company_name("Contoso Ltd") != normalize_company_name("Contoso Labs Ltd")


def test_it_never_normalises_a_name_to_nothing():
    assert normalize_company_name("The Company") == "company"
    assert normalize_company_name("Ltd") == "ltd"
    assert normalize_company_name("") == ""


def test_it_suggests_the_exact_normalised_match_first():
    directory = [
        {"id": 1, "name": "Contoso Limited"},
        {"id": 2, "name": "Contosso Ltd"},
        {"id": 3, "name": "Fabrikam"},
    ]
    suggestions = suggest_matches("CONTOSO LTD.", directory)
    assert [s.company_id for s in suggestions] == [1, 2]
    assert suggestions[0].exact and suggestions[0].score == 1.0
    assert not suggestions[1].exact and 0.8 <= suggestions[1].score < 1.0


def test_it_accepts_directory_objects_and_a_prebuilt_index():
    class Row:
        def __init__(self, cw_company_id, name):
            self.cw_company_id, self.name = cw_company_id, name

    index = CompanyIndex([Row(7, "Northwind Traders Inc")])
    assert [s.company_id for s in suggest_matches("Northwind Traders", index)] == [7]
    assert suggest_matches("Completely Different", index) == []
