"""An export as an Excel workbook, for people: a header row that stays in view, amounts as numbers with their
currency's decimals, times as real date-times, text as text. Needs openpyxl (``pip install 'ordersync[xlsx]'``).

openpyxl's write-only mode streams each row to a temporary file, so memory stays flat whatever the size. What
Excel cannot hold is adapted, never lost in silence:

* a cell holds no time zone: times are written as the wall-clock time of the export's zone (UTC unless ``--tz``),
  and the header names the zone (``created_at (Europe/Oslo)``);
* a sheet holds 1,048,576 rows: a longer export goes on in a second sheet (``orders (2)``), header and all;
* ``raw`` is left out: a vendor record can be longer than the 32,767 characters a cell holds, and a spreadsheet is
  not where a JSON document is read (CSV, JSON Lines and Parquet keep it);
* text that starts with ``=`` stays text (a customer's name is never run as a formula), and the control
  characters XML cannot hold become U+FFFD.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from ordersync.values import exponent

if TYPE_CHECKING:
    from ordersync.export import Column, ExportOptions

MAX_ROWS = 1_048_576  # Excel's rows per sheet, the header included
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
_WIDTHS = {"money": 14, "time": 20, "plain": 16}


def write(batches: Iterator[list[dict[str, Any]]], columns: list[Column], options: ExportOptions, table: str,
          out: Path) -> int:
    """Write the shaped rows of ``table`` to the workbook ``out``; return how many were written."""
    book = Workbook(write_only=True)
    try:
        count = add_sheets(book, batches, columns, table, options.zone.key if options.zone else "UTC")
    except BaseException:
        with contextlib.suppress(Exception):  # finish the sheets so that openpyxl removes its temporary files
            book.save(out)  # the caller removes this unfinished file
        raise
    book.save(out)
    return count


def add_sheets(book: Workbook, batches: Iterator[list[dict[str, Any]]], columns: list[Column], title: str,
               zone: str) -> int:
    """Append the shaped rows to ``book`` as the sheet ``title`` (going on in ``title (2)``, ... past Excel's rows;
    the header alone when there are none); ``zone`` names the times' zone in the header. Returns the rows."""
    kept = [c for c in columns if c.kind != "raw"]
    sheet, room, count, made = None, 0, 0, 0
    for batch in batches:
        for row in batch:
            if room == 0:
                made += 1
                sheet = _sheet(book, f"{title} ({made})" if made > 1 else title, kept, zone)
                room = MAX_ROWS - 1
            assert sheet is not None
            sheet.append([_cell(sheet, c.kind, row[c.name], row) for c in kept])
            room -= 1
        count += len(batch)
    if sheet is None:  # no rows: the header alone says what the sheet would hold
        _sheet(book, title, kept, zone)
    return count


def _sheet(book: Workbook, title: str, columns: list[Column], zone: str) -> WriteOnlyWorksheet:
    """A sheet with the header row (bold, frozen) and column widths, before any row is written."""
    sheet = book.create_sheet(title=title)
    sheet.freeze_panes = "A2"
    for index, c in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(_WIDTHS[c.kind], len(c.name) + 2)
    header = []
    for c in columns:
        cell = WriteOnlyCell(sheet, f"{c.name} ({zone})" if c.kind == "time" else c.name)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    return sheet


def _cell(sheet: WriteOnlyWorksheet, kind: str, value: Any, row: dict[str, Any]) -> Any:
    """One value as Excel holds it: an amount as a number with its currency's decimals (minor units: a whole
    number), a time as the export's wall-clock date-time (it is already in the export's zone), text as text."""
    if value is None:
        return None
    if kind == "money":
        cell = WriteOnlyCell(sheet, value)
        places = exponent(row.get("currency"))
        cell.number_format = ("#,##0." + "0" * places if places else "#,##0") if isinstance(value, Decimal) else "0"
        return cell
    if isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, value.replace(tzinfo=None))
        cell.number_format = TIME_FORMAT
        return cell
    if isinstance(value, str):
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
        if text.startswith("="):  # openpyxl would write it as a formula
            cell = WriteOnlyCell(sheet, text)
            cell.data_type = "s"
            return cell
        return text
    return value
