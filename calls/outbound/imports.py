"""Reading a campaign's contact file (CSV or XLSX) into rows. Pure: no database, no phone rules.

The first non-empty row is the header when it names a phone column ("phone", "телефон", "номер" …);
a file without a header is read as phone [, name [, lead id]] when its first cell looks like a
number. Row numbers are the file's own (1 = the first line), so an operator finds the bad row.
CSV: UTF-8 (with or without BOM) or Windows-1251 (Excel's Russian export); ``,`` ``;`` or tab.
XLSX: the first sheet, read-only (openpyxl streams it); phone numbers stored as numbers are fine.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 50_000

PHONE_HEADERS = {"phone", "phone number", "phone_number", "number", "tel", "mobile", "телефон", "номер", "номер телефона", "мобильный"}
NAME_HEADERS = {"name", "full name", "full_name", "patient", "client", "имя", "фио", "пациент", "клиент"}
LEAD_HEADERS = {"crm_lead_id", "lead_id", "lead", "lead id", "сделка", "id сделки", "номер сделки"}
_PHONE_LIKE = re.compile(r"^\+?[\d\s()-]{7,20}$")


class ImportFileError(Exception):
    """The file as a whole cannot be read (wrong type, no phone column, too large)."""


@dataclass(frozen=True)
class ContactRow:
    row: int
    phone: str  # as written in the file
    name: str = ""
    crm_lead_id: str = ""  # as written; validated by the caller


@dataclass
class ParsedFile:
    rows: list[ContactRow] = field(default_factory=list)
    total_rows: int = 0  # data rows seen (empty lines excluded)


def cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return " ".join(str(value).split())


def _csv_rows(data: bytes) -> Iterator[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1251", errors="replace")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    yield from csv.reader(io.StringIO(text), dialect)


def _xlsx_rows(data: bytes) -> Iterator[list[str]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise ImportFileError("The file is not a readable XLSX workbook.") from exc
    try:
        if not workbook.worksheets:
            raise ImportFileError("The workbook has no sheets.")
        for values in workbook.worksheets[0].iter_rows(values_only=True):
            yield [cell_text(v) for v in values]
    finally:
        workbook.close()


def _columns(header: list[str]) -> dict[str, int] | None:
    names = [" ".join(cell.lower().replace("ё", "е").split()) for cell in header]
    columns: dict[str, int] = {}
    for index, name in enumerate(names):
        for key, aliases in (("phone", PHONE_HEADERS), ("name", NAME_HEADERS), ("lead", LEAD_HEADERS)):
            if name in aliases and key not in columns:
                columns[key] = index
    return columns if "phone" in columns else None


def read_contacts(filename: str, data: bytes) -> ParsedFile:
    if len(data) > MAX_BYTES:
        raise ImportFileError(f"The file is larger than {MAX_BYTES // 2**20} MB.")
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension == "xls" or data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise ImportFileError("Old Excel files (.xls) are not supported: save the sheet as .xlsx or .csv.")
    if extension == "xlsx" or data[:4] == b"PK\x03\x04":
        rows = _xlsx_rows(data)
    elif extension in ("csv", "txt", ""):
        if b"\x00" in data[:4096]:
            raise ImportFileError("The file is not a text CSV file.")
        rows = _csv_rows(data)
    else:
        raise ImportFileError("Upload a .csv or .xlsx file.")

    parsed = ParsedFile()
    columns: dict[str, int] | None = None
    for number, cells in enumerate(rows, start=1):
        cells = [cell_text(c) for c in cells]
        if not any(cells):
            continue
        if columns is None:
            columns = _columns(cells)
            if columns is not None:
                continue  # the header row
            if not _PHONE_LIKE.match(cells[0]):
                raise ImportFileError(
                    "No phone column: name a column “phone” or “телефон”, or put the numbers in the first column."
                )
            columns = {"phone": 0, "name": 1, "lead": 2}
        parsed.total_rows += 1
        if parsed.total_rows > MAX_ROWS:
            raise ImportFileError(f"More than {MAX_ROWS} rows: split the file.")

        values = {key: cells[index] if index < len(cells) else "" for key, index in columns.items()}
        parsed.rows.append(
            ContactRow(row=number, phone=values["phone"], name=values.get("name", "")[:200], crm_lead_id=values.get("lead", ""))
        )
    if columns is None:
        raise ImportFileError("The file is empty.")
    return parsed
