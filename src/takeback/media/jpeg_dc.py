"""The luma of a large JPEG at 1/8 scale, from its DC coefficients alone.

Why: a phone photo is hashed from its 1/8-scale luma (`images.decode_image`), and at that scale libjpeg-turbo
spends nearly all of its time parsing AC coefficients that the 1x1 inverse DCT then ignores.  `_jpeg_dc.c` parses
them only to skip them (a code and its magnitude bits in one table lookup, often two codes at once) and gives
bit for bit the plane Pillow's ``draft("L", …)`` decode gives.

This module reads the markers up to the scan and lays out the scan for the C code.  Anything it does not take on
(progressive, arithmetic or lossless coding, 12-bit samples, separate scans per component, RGB or CMYK JPEGs, a
luma channel that is itself subsampled) and any damage the C code finds in the scan give ``None``, and the caller
decodes the file with Pillow, whose behaviour (and error messages) for such files stay exactly as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

try:
    from takeback.media import _jpeg_dc  # type: ignore[attr-defined]
except ImportError:  # the extension is optional: built where a C compiler was available at install time
    _jpeg_dc = None

#: Tables the format allows per class (DC, AC), and bytes per table in the block handed to C:
#: a defined flag, 16 code counts, 256 symbols.
_TABLES = 4
_TABLE_BYTES = 273
#: libjpeg's limit on blocks in one MCU.
_MAX_BLOCKS = 10
_RGB_IDS = (82, 71, 66)  # 'R', 'G', 'B': libjpeg's sign of an RGB JPEG without JFIF or Adobe markers
_SEQUENTIAL_HUFFMAN = (0xC0, 0xC1)
_MAX_DIMENSION = 65500  # libjpeg's JPEG_MAX_DIMENSION
#: Markers libjpeg reads between the scan and EOI of a one-scan file without stopping: DHT, DQT, DRI, DNL, COM
#: and APPn (with a length), RSTn and TEM (without).
_TRAILER_SEGMENTS = frozenset({0xC4, 0xDB, 0xDD, 0xDC, 0xFE, *range(0xE0, 0xF0)})
_TRAILER_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def available() -> bool:
    """Whether the compiled decoder was built (it needs a C compiler when takeback is installed)."""
    return _jpeg_dc is not None


@dataclass(frozen=True, slots=True)
class Component:
    ident: int
    h: int
    v: int
    quant_table: int


@dataclass(slots=True)
class ScanLayout:
    """What the C decoder needs: where the scan starts, the MCU grid, which blocks an MCU holds and the tables."""

    width: int
    height: int
    scan_start: int
    mcus_x: int
    mcus_y: int
    restart_interval: int
    luma_h: int
    luma_v: int
    quant: int
    #: Per block of an MCU, in scan order: DC table, AC table, luma (0/1), row and column inside the MCU.
    plan: bytes
    tables: bytes = field(repr=False)

    @property
    def out_size(self) -> tuple[int, int]:
        """(rows, columns) of the 1/8-scale plane, as libjpeg-turbo sizes it."""
        return -(-self.height // 8), -(-self.width // 8)


def _segment_at(data: bytes, code: int) -> tuple[int, int] | None:
    """[start, end) of the payload of the segment whose marker code byte is at `code`, or None if it runs out."""
    if code + 3 > len(data):
        return None
    length = (data[code + 1] << 8) | data[code + 2]
    end = code + 1 + length
    return (code + 3, end) if length >= 2 and end <= len(data) else None


def _segments(data: bytes) -> list[tuple[int, int, int]] | None:
    """(marker, payload start, payload end) of every segment up to and including SOS; None if the markers are
    not the plain layout libjpeg reads without warnings."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    found = []
    i = 2
    n = len(data)
    while i < n:
        if data[i] != 0xFF:
            return None  # bytes between segments: libjpeg skips them with a warning; leave it to Pillow
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            return None
        marker = data[i]
        if marker == 0x00 or marker == 0x01 or marker == 0xD8 or 0xD0 <= marker <= 0xD9:
            return None
        span = _segment_at(data, i)
        if span is None:
            return None
        found.append((marker, *span))
        if marker == 0xDA:
            return found
        i = span[1]
    return None


def parse(data: bytes) -> ScanLayout | None:
    """The scan layout of a sequential Huffman-coded 8-bit JPEG whose first component is full size, or None."""
    segments = _segments(data)
    if segments is None:
        return None
    components: list[Component] | None = None
    width = height = 0
    quant: dict[int, int] = {}
    huffman: dict[tuple[int, int], bytes] = {}
    restart = 0
    jfif = False
    adobe_transform: int | None = None
    for marker, start, end in segments:
        seg = data[start:end]
        if marker in _SEQUENTIAL_HUFFMAN:
            if components is not None or len(seg) < 6:
                return None
            precision, height, width, count = seg[0], (seg[1] << 8) | seg[2], (seg[3] << 8) | seg[4], seg[5]
            if precision != 8 or count not in (1, 3) or len(seg) != 6 + 3 * count:
                return None
            if not (0 < width <= _MAX_DIMENSION and 0 < height <= _MAX_DIMENSION):
                return None
            fields = [seg[6 + 3 * c : 9 + 3 * c] for c in range(count)]
            components = [Component(f[0], f[1] >> 4, f[1] & 15, f[2]) for f in fields]
            if len({c.ident for c in components}) != count:
                return None
            if any(not (1 <= c.h <= 4 and 1 <= c.v <= 4) or c.quant_table >= _TABLES for c in components):
                return None
        elif 0xC0 <= marker <= 0xCF and marker != 0xC4:
            return None  # progressive, lossless, hierarchical or arithmetic-coded (DAC) files, and JPG
        elif marker == 0xC4:
            if not _read_huffman(seg, huffman):
                return None
        elif marker == 0xDB:
            if not _read_quant(seg, quant):
                return None
        elif marker == 0xDD:
            if len(seg) != 2:
                return None
            restart = (seg[0] << 8) | seg[1]
        elif marker == 0xE0:
            jfif = jfif or (len(seg) >= 14 and seg[:5] == b"JFIF\0")  # libjpeg needs the whole JFIF header
        elif marker == 0xEE:
            if len(seg) >= 12 and seg[:5] == b"Adobe":
                adobe_transform = seg[11]
        elif marker == 0xDA:
            if components is None:
                return None
            return _layout(seg, end, components, width, height, quant, huffman, restart, jfif, adobe_transform)
        elif not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            return None  # DNL, JPGn and other markers libjpeg refuses or treats specially
    return None


def _read_huffman(seg: bytes, huffman: dict[tuple[int, int], bytes]) -> bool:
    j = 0
    while j < len(seg):
        if j + 17 > len(seg):
            return False
        table_class, ident = seg[j] >> 4, seg[j] & 15
        counts = seg[j + 1 : j + 17]
        total = sum(counts)
        if table_class > 1 or ident >= _TABLES or total > 256 or j + 17 + total > len(seg):
            return False
        huffman[(table_class, ident)] = bytes(counts) + seg[j + 17 : j + 17 + total].ljust(256, b"\0")
        j += 17 + total
    return True


def _read_quant(seg: bytes, quant: dict[int, int]) -> bool:
    j = 0
    while j < len(seg):
        precision, ident = seg[j] >> 4, seg[j] & 15
        size = 128 if precision else 64
        if precision > 1 or ident >= _TABLES or j + 1 + size > len(seg):
            return False
        quant[ident] = ((seg[j + 1] << 8) | seg[j + 2]) if precision else seg[j + 1]
        j += 1 + size
    return True


def _layout(
    sos: bytes,
    scan_start: int,
    components: list[Component],
    width: int,
    height: int,
    quant: dict[int, int],
    huffman: dict[tuple[int, int], bytes],
    restart: int,
    jfif: bool,
    adobe_transform: int | None,
) -> ScanLayout | None:
    count = len(components)
    rgb_ids = tuple(c.ident for c in components) == _RGB_IDS
    if count == 3 and not jfif and (adobe_transform == 0 or (adobe_transform is None and rgb_ids)):
        return None  # libjpeg's colour-space guess says RGB, which it turns into grey by weighting all three
    if len(sos) < 1 or sos[0] != count or len(sos) != 4 + 2 * count:
        return None
    ids = [c.ident for c in components]
    order: list[tuple[int, int, int]] = []
    for s in range(count):
        ident, tables = sos[1 + 2 * s], sos[2 + 2 * s]
        if ident not in ids or any(ids.index(ident) == o[0] for o in order):
            return None
        order.append((ids.index(ident), tables >> 4, tables & 15))
    if sos[1 + 2 * count] != 0 or sos[2 + 2 * count] != 63 or sos[3 + 2 * count] != 0:
        return None  # not a sequential scan
    luma = components[0]
    if any(c.quant_table not in quant for c in components) or quant[luma.quant_table] > 32767:
        return None  # libjpeg refuses a missing table; a DC quantiser over 32767 wraps in its 16-bit multiplier
    h_max = max(c.h for c in components)
    v_max = max(c.v for c in components)
    if count == 1:
        mcus_x, mcus_y = -(-width // 8), -(-height // 8)
        plan = [(order[0][1], order[0][2], 1, 0, 0)]
        luma_h = luma_v = 1
    else:
        if luma.h != h_max or luma.v != v_max:
            return None
        mcus_x, mcus_y = -(-width // (8 * h_max)), -(-height // (8 * v_max))
        plan = [
            (dc, ac, int(index == 0), row, col)
            for index, dc, ac in order
            for row in range(components[index].v)
            for col in range(components[index].h)
        ]
        luma_h, luma_v = luma.h, luma.v
    if len(plan) > _MAX_BLOCKS:
        return None
    for dc, ac, *_ in plan:
        if (0, dc) not in huffman or (1, ac) not in huffman or dc >= _TABLES or ac >= _TABLES:
            return None
    tables = bytearray(2 * _TABLES * _TABLE_BYTES)
    for (table_class, ident), definition in huffman.items():
        at = (table_class * _TABLES + ident) * _TABLE_BYTES
        tables[at] = 1
        tables[at + 1 : at + _TABLE_BYTES] = definition
    return ScanLayout(
        width=width,
        height=height,
        scan_start=scan_start,
        mcus_x=mcus_x,
        mcus_y=mcus_y,
        restart_interval=restart,
        luma_h=luma_h,
        luma_v=luma_v,
        quant=quant[luma.quant_table],
        plan=bytes(b for block in plan for b in block),
        tables=bytes(tables),
    )


def luma_eighth(data: bytes) -> npt.NDArray[np.uint8] | None:
    """The (ceil(H/8), ceil(W/8)) luma plane libjpeg-turbo's 1/8-scale grey decode gives, or None when this
    file should go to Pillow (see the module docstring)."""
    if _jpeg_dc is None:
        return None
    layout = parse(data)
    if layout is None:
        return None
    rows, cols = layout.out_size
    out = np.empty((rows, cols), dtype=np.uint8)
    status, end = _jpeg_dc.luma_dc(
        data,
        layout.scan_start,
        layout.tables,
        layout.plan,
        layout.mcus_x,
        layout.mcus_y,
        layout.restart_interval,
        layout.luma_h,
        layout.luma_v,
        cols,
        rows,
        layout.quant,
        out,
    )
    return out if status == 0 and _ends_cleanly(data, end) else None


def _ends_cleanly(data: bytes, at: int) -> bool:
    """Whether libjpeg would read from the marker after the scan (its code byte at `at`) to EOI without an error.

    Why: Pillow finishes a JPEG with jpeg_finish_decompress, which reads on to EOI and fails on a second scan, an
    unknown marker or a missing EOI; a file it refuses must be refused here too, so that the fast path and Pillow
    never disagree about whether a photo can be hashed.
    """
    n = len(data)
    while at < n:
        marker = data[at]
        if marker == 0xD9:
            return True
        if marker in _TRAILER_SEGMENTS:
            span = _segment_at(data, at)
            if span is None:
                return False
            seg = data[span[0] : span[1]]
            if marker == 0xC4 and not _read_huffman(seg, {}):
                return False
            if marker == 0xDB and not _read_quant(seg, {}):
                return False
            if marker == 0xDD and len(seg) != 2:
                return False
            at = span[1]
        elif marker in _TRAILER_STANDALONE:
            at += 1
        else:
            return False
        # The next marker: libjpeg skips stray bytes (and stuffed FF 00 pairs) before it with a warning.
        while True:
            ff = data.find(b"\xff", at)
            if ff < 0:
                return False
            at = ff + 1
            while at < n and data[at] == 0xFF:
                at += 1
            if at < n and data[at] != 0:
                break
    return False


__all__ = ["ScanLayout", "available", "luma_eighth", "parse"]
