"""The billing side's customer list upload: the form, and the CSV reading it shares with the other imports
(the text's encoding, why a CSV cannot be read, the customer names in it).
"""

from __future__ import annotations

import codecs
import csv
import io

from django import forms

from ..inputs import single_line

CSV_MAX_BYTES = 1024 * 1024
CSV_MAX_ROWS = 20000
_HEADER_WORDS = {"name", "customer", "customer name", "company", "company name", "client", "client name"}


class CustomerCsvForm(forms.Form):
    """The billing side's customer list: a CSV with a ``name`` column, or names in the first column."""

    file = forms.FileField(
        label="Billing customer list (CSV)",
        help_text="A .csv file up to 1 MB with a column called 'name', or the names in the first column.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        f = self.cleaned_data["file"]
        if f.size > CSV_MAX_BYTES:
            raise forms.ValidationError(
                f"This file is {f.size / 1024 / 1024:.1f} MB; the limit is 1 MB. Export only the customer names, "
                "or split the list. Nothing was imported."
            )
        name = (f.name or "").lower()
        if not (name.endswith(".csv") or name.endswith(".txt")):
            raise forms.ValidationError("Choose a .csv file (comma-separated values). Nothing was imported.")
        raw = f.read(CSV_MAX_BYTES + 1)
        text = decode_csv_bytes(raw)
        if text is None:
            raise forms.ValidationError(
                "This does not look like a CSV file (it contains binary data). Save the list as CSV "
                "(UTF-8, UTF-16 or Windows-1252) and try again. Nothing was imported."
            )
        try:
            self.names = parse_customer_names(text)
        except CsvProblem as exc:
            raise forms.ValidationError(f"{exc} Nothing was imported.") from None
        if not self.names:
            raise forms.ValidationError("The file has no customer names in it. Nothing was imported.")
        if len(self.names) > CSV_MAX_ROWS:
            raise forms.ValidationError(
                f"The file has more than {CSV_MAX_ROWS} names. Split it and try again."
            )
        return f


NAME_MAX_LENGTH = 200  # BillingCustomer.name


class CsvProblem(ValueError):
    """A customer list that cannot be imported; the message names the line."""


def decode_csv_bytes(raw: bytes) -> str | None:
    """The text of an uploaded CSV: UTF-8 (with or without BOM), UTF-16 (with a BOM, or without one when every
    other byte of ASCII text is NUL, as Excel's "Unicode text" writes it), else Windows-1252 (Excel's "CSV" on
    Windows). None when the bytes are not text in any of these (binary data, a NUL in the text)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif raw.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    else:
        candidates = ["utf-8", "cp1252"]
        sample = raw[:4096]
        if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4:
            candidates.insert(0, "utf-16-le")
        elif len(sample) >= 4 and sample[0::2].count(0) > len(sample) // 4:
            candidates.insert(0, "utf-16-be")
    for encoding in candidates:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            return None
        return text
    return None


def csv_problem(text: str) -> str | None:
    """Why the CSV reader cannot read ``text`` (a field over its 131,072-character limit, an unterminated quote),
    naming the line; None when every row reads. For imports whose rows another module parses."""
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        for _ in reader:
            pass
    except csv.Error as exc:
        detail = "a field is too long" if "field larger" in str(exc) else "it cannot be read as CSV"
        return f"Line {reader.line_num}: {detail}."
    return None


def parse_customer_names(text: str) -> list[str]:
    """Names from a CSV: the ``name`` column when there is one, else the first column; comma, semicolon or tab
    separated; blanks and repeats dropped; tabs and other control characters inside a name become spaces.

    Raises ``CsvProblem`` naming the line for a name longer than 200 characters or a field the CSV reader
    refuses (longer than its 131,072-character limit, or an unterminated quote)."""
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if any(c.strip() for c in row):
                rows.append((reader.line_num, row))
    except csv.Error as exc:
        detail = "a field is too long" if "field larger" in str(exc) else "it cannot be read as CSV"
        raise CsvProblem(f"Line {reader.line_num}: {detail}.") from None
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0][1]]
    column = 0
    if "name" in header:
        column, rows = header.index("name"), rows[1:]
    elif header and header[0] in _HEADER_WORDS:
        rows = rows[1:]
    seen: set[str] = set()
    names = []
    for line, row in rows:
        raw = row[column] if column < len(row) else ""
        if len(raw) > 10 * NAME_MAX_LENGTH:
            raise CsvProblem(
                f"Line {line}: the name is {len(raw):,} characters long; at most {NAME_MAX_LENGTH}."
            )
        value = single_line(raw, max_length=10 * NAME_MAX_LENGTH)
        if len(value) > NAME_MAX_LENGTH:
            raise CsvProblem(
                f"Line {line}: the name is {len(value):,} characters long; at most {NAME_MAX_LENGTH}."
            )
        if value and value.casefold() not in seen:
            seen.add(value.casefold())
            names.append(value)
    return names
