"""A plain-text PDF: enough to hand the dossier to a court, a lawyer or a regulator as one printable file.

Why our own ~80 lines and not a PDF library: the dossier is text (no images, ever), and a PDF 1.4 file with a
standard font (Courier: every glyph the same width, so lines wrap predictably) needs no dependency.  Characters
outside Latin-1 are replaced with "?" (the standard fonts cannot show them); the JSON export keeps everything.
"""

from __future__ import annotations

import textwrap

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN = 40
FONT_SIZE = 8
LEADING = 10
#: Courier's advance is 0.6 em.
COLUMNS = int((PAGE_WIDTH - 2 * MARGIN) / (FONT_SIZE * 0.6))
LINES_PER_PAGE = int((PAGE_HEIGHT - 2 * MARGIN) / LEADING)


def _escape(line: str) -> bytes:
    data = line.encode("latin-1", "replace")
    return data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _lines(text: str) -> list[str]:
    out: list[str] = []
    for raw in text.expandtabs(4).splitlines() or [""]:
        clean = "".join(c if c.isprintable() else " " for c in raw)
        out.extend(textwrap.wrap(clean, COLUMNS, replace_whitespace=False, drop_whitespace=False,
                                 break_on_hyphens=False) or [""])
    return out


def text_to_pdf(text: str, *, title: str = "") -> bytes:
    lines = _lines(text)
    pages = [lines[i : i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)] or [[]]
    objects: list[bytes] = []  # object n is objects[n - 1]

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below, once the page tree's number is known
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>")
    page_ids = []
    tree = len(objects) + 1 + 2 * len(pages)  # pages tree comes after every page and its content
    for number, page in enumerate(pages, 1):
        footer = f"{title}  page {number}/{len(pages)}".strip()
        stream = [b"BT", f"/F1 {FONT_SIZE} Tf {LEADING} TL {MARGIN} {PAGE_HEIGHT - MARGIN} Td".encode()]
        stream += [b"(" + _escape(line) + b") Tj T*" for line in page]
        stream += [b"ET", b"BT", f"/F1 {FONT_SIZE} Tf {MARGIN} {MARGIN / 2:.0f} Td".encode(),
                   b"(" + _escape(footer) + b") Tj", b"ET"]
        content = b"\n".join(stream)
        content_id = add(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        page_ids.append(add(
            f"<< /Type /Page /Parent {tree} 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
            f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {content_id} 0 R >>".encode()
        ))
    kids = " ".join(f"{p} 0 R" for p in page_ids)
    assert add(f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>".encode()) == tree
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {tree} 0 R >>".encode()
    info = add(b"<< /Title (" + _escape(title) + b") /Producer (takeback) >>")

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, catalog, info, xref)
    return bytes(out)
