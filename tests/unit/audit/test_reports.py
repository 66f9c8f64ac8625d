"""Data-subject reports without a database: identifiers, masks, CSV cells, cursors, the PDF."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from audit import pdf, reports
from audit.errors import BadReportCursor, InvalidIdentifier
from audit.proofs import StoredCheckpoint

NOW = datetime(2026, 11, 24, 3, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("001203004512", "001203004512"), (" 012345678 ", "012345678"), ("012345678\n", "012345678")],
)
def test_identifiers_accepted(given, expected):
    assert reports.check_identifier(given) == expected


@pytest.mark.parametrize(
    "given",
    ["", "12345678", "1234567890", "12345678901", "1234567890123", "00120300451a", "0012 0300451",
     "０１２３４５６７８９０１", "٠١٢٣٤٥٦٧٨", "+84123456789"],
)  # fmt: skip
def test_identifiers_refused_without_repeating_them(given):
    with pytest.raises(InvalidIdentifier) as caught:
        reports.check_identifier(given)
    assert given.strip() not in str(caught.value) or not given.strip()


def test_masks_show_only_the_ends():
    assert reports.mask("001203004512") == "0012******12"
    assert reports.mask("012345678") == "012****78"


def test_outcomes():
    assert [reports.outcome(s) for s in (200, 204, 403, 422, 502, None)] == [
        "served", "served", "refused", "refused", "failed", "recorded",
    ]  # fmt: skip


def test_report_cursors_round_trip_and_refuse_strangers():
    assert reports.decode_cursor(reports.encode_cursor(1234, 99)) == (1234, 99)
    for bad in ("", "xyz", "cjox", reports.encode_cursor(1, 2)[:-2] + "!!"):
        with pytest.raises(BadReportCursor):
            reports.decode_cursor(bad)
    from audit.queries import encode_cursor  # a search cursor is not a report cursor

    with pytest.raises(BadReportCursor):
        reports.decode_cursor(encode_cursor(5))


def test_csv_cells():
    assert reports.csv_cell(None) == ""
    assert reports.csv_cell(True) == "true" and reports.csv_cell(False) == "false"
    assert reports.csv_cell(-3) == "-3"  # numbers are not formulas
    assert reports.csv_cell(["a", "b"]) == "a b"
    for formula in ("=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx"):
        assert reports.csv_cell(formula) == "'" + formula
    assert reports.csv_cell("Sở Y tế, tỉnh Lai Châu") == "Sở Y tế, tỉnh Lai Châu"
    assert reports.csv_cell("+/haoJTTpmGFuL1ZqQ=", raw=True) == "+/haoJTTpmGFuL1ZqQ="


def test_hashes_are_written_exactly():
    item = {"leaf_hash": "+abc=", "proof": ["-x=", "+y="], "purpose": "+abc="}
    lines = list(reports.csv_rows([item], ("leaf_hash", "proof", "purpose")))
    assert lines[1] == "+abc=,-x= +y=,'+abc=\r\n"


def test_csv_rows_stream_one_line_each_and_parse_back():
    items: list[dict[str, Any]] = [
        {"a": "x,y", "b": 'say "hi"', "c": None},
        {"a": "two\nlines", "b": 5, "c": ["p", "q"]},
    ]
    lines = list(reports.csv_rows(items, ("a", "b", "c")))
    assert len(lines) == 3 and all(line.endswith("\r\n") for line in lines)
    parsed = list(csv.DictReader(io.StringIO("".join(lines), newline="")))
    assert parsed == [
        {"a": "x,y", "b": 'say "hi"', "c": ""},
        {"a": "two\nlines", "b": "5", "c": "p q"},
    ]


def _header(checkpoint: StoredCheckpoint | None) -> dict[str, object]:
    return reports.header(
        identifier="001203004512",
        subject_hash="ab" * 32,
        checkpoint=checkpoint,
        keys=[],
        since=None,
        until=datetime(2026, 12, 1, tzinfo=UTC),
        generated_at=NOW,
    )


CHECKPOINT = StoredCheckpoint(
    id=1, size=42, root=b"\x01" * 32, time=NOW, key_id="0a1b2c3d", note="origin\n42\n...\n"
)


def test_the_header_says_everything_once():
    head = _header(CHECKPOINT)
    assert head["subject"] == {"masked": "0012******12", "subject_hash": "ab" * 32}
    assert head["generated_at"] == "2026-11-24T03:30:00.000000Z"
    assert head["until"] == "2026-12-01T00:00:00.000000Z" and head["since"] is None
    assert head["checkpoint"] == {
        "size": 42,
        "root": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        "time": "2026-11-24T03:30:00.000000Z",
        "key_id": "0a1b2c3d",
        "note": "origin\n42\n...\n",
    }
    assert "001203004512" not in str(head)
    assert _header(None)["checkpoint"] is None


def _access(n: int, *, pending: bool = False) -> dict[str, object]:
    return {
        "time": f"2026-11-{1 + n % 28:02d}T08:00:00.000000Z",
        "agency": "000.00.12.H12",
        "agency_name": "Sở Tư pháp tỉnh Lai Châu",
        "consumer": "mot-cua",
        "consumer_title": "Hệ thống thông tin giải quyết thủ tục hành chính",
        "service": "tra-cuu-cong-dan",
        "version": "v1",
        "route": "GET /cong-dan/{id}",
        "purpose": "xac-minh-ho-so",
        "grant_id": 7,
        "outcome": "refused" if n % 5 == 0 else "served",
        "hub_status": 403 if n % 5 == 0 else 200,
        "request_id": f"req-{n:08d}",
        "leaf_index": None if pending else 1000 + n,
        "pending": pending,
    }


def test_the_pdf_carries_the_count_and_the_checkpoint():
    rows = [_access(n) for n in range(120)] + [_access(999, pending=True)]
    document = pdf.render(_header(CHECKPOINT), rows, generated_at=NOW)
    assert document.startswith(b"%PDF-") and document.rstrip().endswith(b"%%EOF")
    assert b"/Keywords (accesses=121 checkpoint_size=42 key_id=0a1b2c3d)" in document
    pages = int(re.findall(rb"/Count (\d+)", document)[-1])
    assert pages >= 3  # 121 rows do not fit on one page; the headings repeat
    assert b"DejaVu" in document  # the embedded Unicode font, not a core font
    assert b"001203004512" not in document


def test_archived_ranges_are_named_in_the_header():
    archived = [
        {"first_leaf": 0, "end_leaf": 500, "min_seq": 1, "max_seq": 503, "records": 500,
         "file": f"archive-{n:012d}.tar", "sha256": "0" * 64, "created_at": "2026-11-01"}
        for n in range(7)
    ]  # fmt: skip
    head = reports.header(
        identifier="012345678", subject_hash="cd" * 32, checkpoint=CHECKPOINT, keys=[],
        since=None, until=None, generated_at=NOW, archived=archived,
    )  # fmt: skip
    assert head["archived"] == archived
    document = pdf.render(head, [_access(1)], generated_at=NOW)
    assert b"/Keywords (accesses=1 " in document
    assert _header(None)["archived"] == []


def test_an_empty_report_and_no_checkpoint():
    document = pdf.render(_header(None), [], generated_at=NOW)
    assert b"/Keywords (accesses=0)" in document
    assert int(re.findall(rb"/Count (\d+)", document)[-1]) == 1


def test_the_fonts_travel_with_their_licence():
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "LICENSE"):
        assert (pdf.FONTS / name).is_file()
    assert "Bitstream Vera" in (pdf.FONTS / "LICENSE").read_text()


def test_every_heading_is_drawn_inside_its_column_and_whole():
    """The headings row as drawn: no text runs into the next column, and none is cut short."""
    report = pdf._Report()
    report.add_font(pdf.FAMILY, "", str(pdf.FONTS / "DejaVuSans.ttf"))
    report.add_font(pdf.FAMILY, "B", str(pdf.FONTS / "DejaVuSans-Bold.ttf"))
    report.add_page()
    drawn: list[tuple[float, str, float]] = []
    original = report.text

    def drawing(x: float, y: float, text: str = "") -> None:
        drawn.append((x, text, report.get_string_width(text)))
        original(x, y, text)

    report.text = drawing  # type: ignore[method-assign]  # a spy on what the headings draw
    pdf._headings(report)
    left = report.l_margin
    for heading, width, _ in pdf.COLUMNS:
        inside = [(t, w) for x, t, w in drawn if left <= x < left + width]
        assert "".join(t for t, _ in inside).replace(" ", "") == heading.replace("\n", "").replace(
            " ", ""
        ), heading
        assert all(left + pdf.PAD + w <= left + width for _, w in inside), heading
        left += width
    assert left - report.l_margin <= report.epw


def test_times_read_in_vietnam_beside_utc_and_grants_by_what_they_allow():
    access = {**_access(1), "time": "2026-11-24T20:20:05.123456Z", "grant": "mot-cua → dan-cu"}
    assert pdf._cell(access, "time") == "25/11/2026 03:20:05 (+07)\n20:20:05 UTC"
    assert pdf._cell(access, "grant") == "#7 mot-cua → dan-cu"
    assert pdf._cell({**access, "grant": None}, "grant") == "#7 (đã xóa / deleted)"
    assert pdf._cell({**access, "grant_id": None, "grant": None}, "grant") == "không có / none"
