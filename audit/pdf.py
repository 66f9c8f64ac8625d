"""The printable data-subject report: the accesses as a table, the checkpoint, how to verify.

fpdf2 embeds DejaVu Sans (vendored in audit/fonts/, with its licence) so Vietnamese prints the
same on any machine. The document's metadata carries the number of accesses
(`Keywords: accesses=N`) and the checkpoint, for tools that index PDFs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF

FONTS = Path(__file__).parent / "fonts"
FAMILY = "DejaVu"

TITLE_VI = "Báo cáo truy cập dữ liệu cá nhân"
TITLE_EN = "Personal data access report"

# Times are printed as a reader in Vietnam reads them, with UTC (what the log holds) beside.
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")

# (heading, width in mm, key of the access) on an A4 landscape page (277 mm between margins)
COLUMNS: tuple[tuple[str, float, str], ...] = (
    ("Thời gian (giờ VN / UTC)\nTime (Vietnam / UTC)", 33, "time"),
    ("Cơ quan\nAgency", 40, "agency"),
    ("Ứng dụng\nApplication", 34, "consumer"),
    ("Dịch vụ\nService", 38, "service"),
    ("Mục đích\nPurpose", 26, "purpose"),
    ("Thỏa thuận chia sẻ\nSharing agreement", 38, "grant"),
    ("Kết quả\nOutcome", 22, "outcome"),
    ("Mã yêu cầu\nRequest id", 31, "request_id"),
    ("Lá\nLeaf", 15, "leaf_index"),
)

OUTCOME_VI = {"served": "đã cung cấp", "refused": "từ chối", "failed": "lỗi"}

FOOTER = (
    "Kiểm chứng / Verify: mỗi dòng là một lá của nhật ký kiểm toán (cây Merkle RFC 9162) có bằng "
    "chứng bao hàm đối với điểm kiểm tra đã ký ở trên. Each row is a leaf of the hub's audit log; "
    "its inclusion proof (JSON or CSV form of this report) leads to the signed checkpoint above. "
    "Check offline: lgsp audit export … then lgsp audit verify-bundle BUNDLE."
)


class _Report(FPDF):
    """A4 landscape with the verification note and the page number at the foot of each page."""

    def __init__(self) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.widths: dict[tuple[str, float, str], float] = {}
        self._footer: list[str] | None = None

    def width(self, text: str) -> float:
        """get_string_width, remembered: the same names and words recur on every row."""
        key = (self.font_style, self.font_size_pt, text)
        found = self.widths.get(key)
        if found is None:
            found = self.widths[key] = self.get_string_width(text)
        return found

    def footer(self) -> None:
        self.set_font(FAMILY, size=6.5)
        if self._footer is None:
            self._footer = _wrap(self, FOOTER, self.epw, max_lines=4)
        top = self.h - 15
        for n, line in enumerate(self._footer):
            self.text(self.l_margin, top + n * 2.8, line)
        self.set_xy(self.l_margin, top + 3 * 2.8)
        self.cell(0, 3, f"{self.page_no()}/{{nb}}", align="R")  # cell(): text() skips {nb}
        self.set_font(FAMILY, size=FONT_SIZE)


def local_time(value: str) -> str:
    """`2026-11-24T03:20:05.123456Z` as `24/11/2026 10:20:05 (+07)` and `03:20:05 UTC`."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    here = moment.astimezone(VIETNAM)
    return f"{here:%d/%m/%Y %H:%M:%S} (+07)\n{moment:%H:%M:%S} UTC"


def _cell(access: Mapping[str, Any], key: str) -> str:
    value = access.get(key)
    if key == "time" and isinstance(value, str):
        return local_time(value)
    if key == "grant":
        number = access.get("grant_id")
        if number is None:
            return "không có / none"
        return f"#{number} {value}" if value else f"#{number} (đã xóa / deleted)"
    if key == "agency":
        name = access.get("agency_name")
        return f"{name}\n{value}" if name and value else str(value or "")
    if key == "consumer":
        title = access.get("consumer_title")
        return f"{title}\n{value}" if title and value else str(value or "")
    if key == "service":
        parts = [p for p in (value, access.get("version")) if p]
        route = access.get("route")
        return " ".join(str(p) for p in parts) + (f"\n{route}" if route else "")
    if key == "outcome":
        status = access.get("hub_status")
        return f"{OUTCOME_VI.get(str(value), value)} / {value}" + (f"\n{status}" if status else "")
    if key == "leaf_index":
        if access.get("pending"):
            return "chờ / pending"
        return str(value)
    return "" if value is None else str(value)


def render(
    header: Mapping[str, Any],
    accesses: Iterable[Mapping[str, Any]],
    *,
    generated_at: datetime,
) -> bytes:
    """The report as PDF bytes (A4 landscape)."""
    rows = list(accesses)
    pdf = _Report()
    pdf.add_font(FAMILY, "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font(FAMILY, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_creation_date(generated_at)
    pdf.set_title(f"{TITLE_VI} / {TITLE_EN}")
    pdf.set_author("LGSP Hub")
    pdf.set_creator("lgsp-hub audit/pdf.py")
    checkpoint = header.get("checkpoint")
    keywords = f"accesses={len(rows)}"
    if checkpoint:
        keywords += f" checkpoint_size={checkpoint['size']} key_id={checkpoint['key_id']}"
    pdf.set_keywords(keywords)
    pdf.set_subject(f"subject {header['subject']['masked']}")
    pdf.add_page()

    pdf.set_font(FAMILY, "B", 15)
    pdf.cell(0, 8, TITLE_VI, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "", 11)
    pdf.cell(0, 6, TITLE_EN, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    pdf.set_font(FAMILY, "", 9)
    period = " – ".join(
        [header.get("since") or "đầu nhật ký / start", header.get("until") or "nay / now"]
    )
    lines = [
        f"Chủ thể dữ liệu / Data subject: {header['subject']['masked']}",
        f"Lập lúc / Generated at: {header['generated_at']}",
        f"Khoảng thời gian / Period: {period}",
        f"Số lượt truy cập / Accesses: {len(rows)}"
        + (
            f" (trong đó {sum(1 for r in rows if r.get('pending'))} chưa có bằng chứng / "
            "pending a checkpoint)"
            if any(r.get("pending") for r in rows)
            else ""
        ),
    ]
    if checkpoint:
        lines += [
            "Điểm kiểm tra đã ký / Signed checkpoint: "
            f"size {checkpoint['size']}, key {checkpoint['key_id']}, time {checkpoint['time']}",
            f"Gốc cây / Root: {checkpoint['root']}",
        ]
    else:
        lines.append("Chưa có điểm kiểm tra đã ký / No signed checkpoint yet")
    archived = header.get("archived") or []
    if archived:
        records = sum(int(a["records"]) for a in archived)
        lines.append(
            f"Đã lưu trữ / Archived: {records} bản ghi cũ trong {len(archived)} tệp lưu trữ, "
            "không liệt kê ở đây / older records in archive files, not listed here: "
            + ", ".join(str(a["file"]) for a in archived[:5])
            + (" …" if len(archived) > 5 else "")
        )
    for line in lines:
        pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    pdf.set_font(FAMILY, "", FONT_SIZE)
    if not rows:
        pdf.cell(0, 6, "Không có lượt truy cập nào / No access recorded", new_x="LMARGIN")
    else:
        _table(pdf, rows)
    return bytes(pdf.output())


# The table is laid out here rather than with FPDF.table(): that one measures every character
# through its line breaker (7 ms a row: a long history took minutes); this one measures each
# word once and draws each line with text(), about 20 times faster.
FONT_SIZE = 7.5
LINE = 3.2  # mm between baselines
PAD = 0.9  # mm inside each cell
MAX_LINES = 3  # lines in a cell; what does not fit ends with an ellipsis


def _wrap(pdf: _Report, text: str, width: float, *, max_lines: int = MAX_LINES) -> list[str]:
    """Greedy word wrap to `width` mm; a word wider than a line is cut."""
    lines: list[str] = []
    space = pdf.width(" ")
    for paragraph in text.split("\n"):
        current, used = "", 0.0
        for word in paragraph.split(" "):
            size = pdf.width(word)
            if current and used + space + size <= width:
                current, used = f"{current} {word}", used + space + size
                continue
            if current:
                lines.append(current)
            while size > width and len(word) > 1:
                cut = max(1, int(len(word) * width / size))
                lines.append(word[:cut])
                word = word[cut:]
                size = pdf.width(word)
            current, used = word, size
        lines.append(current)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and pdf.width(last + "…") > width:
            last = last[:-1]
        lines = [*lines[: max_lines - 1], last + "…"]
    return lines


def _row(pdf: _Report, cells: list[list[str]], *, bold: bool = False) -> None:
    height = max(len(c) for c in cells) * LINE + 2 * PAD
    if pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()
        _headings(pdf)
    top, x = pdf.get_y(), pdf.l_margin
    if bold:
        pdf.set_fill_color(225, 225, 225)
        pdf.rect(x, top, sum(w for _, w, _ in COLUMNS), height, style="F")
    for (_, width, _), lines in zip(COLUMNS, cells, strict=True):
        pdf.rect(x, top, width, height)
        for n, line in enumerate(lines):
            pdf.text(x + PAD, top + PAD + (n + 0.8) * LINE, line)
        x += width
    pdf.set_y(top + height)


def _headings(pdf: _Report) -> None:
    pdf.set_font(FAMILY, "B", FONT_SIZE)
    _row(pdf, [_wrap(pdf, h, w - 2 * PAD, max_lines=4) for h, w, _ in COLUMNS], bold=True)
    pdf.set_font(FAMILY, "", FONT_SIZE)


def _table(pdf: _Report, rows: list[Mapping[str, Any]]) -> None:
    pdf.set_draw_color(150, 150, 150)
    pdf.set_line_width(0.1)
    _headings(pdf)
    for access in rows:
        _row(pdf, [_wrap(pdf, _cell(access, key), w - 2 * PAD) for _, w, key in COLUMNS])
