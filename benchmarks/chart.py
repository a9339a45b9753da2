"""docs/benchmarks.png: median bars with min..max whiskers, pale bars for the figures before,
the targets as lines; drawn by matplotlib if it is importable, else by a PNG encoder of its
own (a 5x7 bitmap font, zlib and struct: `write_png_chart`)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

from benchmarks.record import LABELS
from benchmarks.targets import VARIANT_312, median

COLOURS = {
    "runenv": (46, 110, 180),
    "reference": (214, 120, 40),
    "uv": (120, 80, 160),
    "tar": (130, 130, 130),
}


ChartRow = tuple[str, float, float, float, str, float | None]

CHART_LABELS = {
    **LABELS,
    "startup_first": "start-up: first import",
    "startup_second": "start-up: second import",
}


def chart_rows(data: dict[str, dict[str, Any]], prev: dict[str, float]) -> list[ChartRow]:
    """(label, median, min, max, colour kind, median before this round or None) per bar."""
    rows = []
    for key, label in CHART_LABELS.items():
        entry = data.get(key)
        if entry:
            kind = (
                "runenv"
                if key.startswith(("runenv", "startup"))
                else "reference"
                if key == "reference"
                else "uv"
                if key.startswith("uv_by_hand")
                else "tar"
            )
            rows.append((label, entry["median"], entry["min"], entry["max"], kind, prev.get(key)))
    return rows


def target_lines(data: dict[str, dict[str, Any]]) -> list[tuple[float, str]]:
    """The targets drawn as vertical lines: warm and cold against uv --compile-bytecode."""
    lines = []
    uvbc = median(data, "uv_by_hand_bytecode")
    if uvbc:
        lines.append((0.25 * uvbc, "warm target 0.25x uv-bc"))
        lines.append((0.4 * uvbc, "cold target 0.4x uv-bc"))
    return lines


def write_chart(result: dict[str, Any], path: Path, *, renderer: str = "auto") -> str:
    """Draw the chart to `path` with matplotlib or the built-in encoder; say which."""
    data = result["measurements"]
    prev = result.get("previous", {}).get("medians", {})
    rows = chart_rows(data, prev)
    title = (
        f"runenv {VARIANT_312} ({len(result['machine']['requirements'])} packages), "
        f"median of {result['runs']} runs, seconds, pale bars: before"
    )
    if renderer in ("auto", "matplotlib"):
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            if renderer == "matplotlib":
                raise
        else:
            fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.6), dpi=100)
            ys = list(range(len(rows)))[::-1]
            for y, (_label, med, lo, hi, kind, old) in zip(ys, rows, strict=True):
                colour = tuple(c / 255 for c in COLOURS[kind])
                if old is not None:
                    ax.barh(y + 0.3, old, color=colour, alpha=0.35, height=0.25)
                ax.barh(y - 0.05, med, color=colour, height=0.45)
                ax.errorbar(
                    med,
                    y - 0.05,
                    xerr=[[med - lo], [hi - med]],
                    fmt="none",
                    ecolor="black",
                    capsize=3,
                    lw=1,
                )
                ax.text(
                    hi + 0.5,
                    y,
                    f"{med:.1f} s" if med >= 1 else f"{med:.2f} s",
                    va="center",
                    fontsize=9,
                )
            for (x, label), style in zip(sorted(target_lines(data)), ("--", ":"), strict=False):
                ax.axvline(x, color="crimson", ls=style, lw=1.2, label=f"{label} ({x:.1f} s)")
            if target_lines(data):
                ax.legend(loc="lower right", fontsize=9)
            ax.set_yticks(ys, [r[0] for r in rows])
            ax.set_xlabel("seconds")
            ax.set_title(title, fontsize=10)
            top = max(max(r[3], r[5] or 0) for r in rows)
            ax.set_xlim(0, top * 1.15)
            fig.tight_layout()
            fig.savefig(path)
            plt.close(fig)
            return "matplotlib"
    write_png_chart(rows, target_lines(data), title, path)
    return "built-in"


# A 5x7 bitmap font (upper case, digits, a little punctuation): 7 rows of 5 bits per glyph.
_FONT = {
    "A": "0E 11 11 11 1F 11 11",
    "B": "1E 11 11 1E 11 11 1E",
    "C": "0E 11 10 10 10 11 0E",
    "D": "1C 12 11 11 11 12 1C",
    "E": "1F 10 10 1E 10 10 1F",
    "F": "1F 10 10 1E 10 10 10",
    "G": "0E 11 10 17 11 11 0F",
    "H": "11 11 11 1F 11 11 11",
    "I": "0E 04 04 04 04 04 0E",
    "J": "07 02 02 02 02 12 0C",
    "K": "11 12 14 18 14 12 11",
    "L": "10 10 10 10 10 10 1F",
    "M": "11 1B 15 15 11 11 11",
    "N": "11 11 19 15 13 11 11",
    "O": "0E 11 11 11 11 11 0E",
    "P": "1E 11 11 1E 10 10 10",
    "Q": "0E 11 11 11 15 12 0D",
    "R": "1E 11 11 1E 14 12 11",
    "S": "0F 10 10 0E 01 01 1E",
    "T": "1F 04 04 04 04 04 04",
    "U": "11 11 11 11 11 11 0E",
    "V": "11 11 11 11 11 0A 04",
    "W": "11 11 11 15 15 15 0A",
    "X": "11 11 0A 04 0A 11 11",
    "Y": "11 11 11 0A 04 04 04",
    "Z": "1F 01 02 04 08 10 1F",
    "0": "0E 11 13 15 19 11 0E",
    "1": "04 0C 04 04 04 04 0E",
    "2": "0E 11 01 02 04 08 1F",
    "3": "1F 02 04 02 01 11 0E",
    "4": "02 06 0A 12 1F 02 02",
    "5": "1F 10 1E 01 01 11 0E",
    "6": "06 08 10 1E 11 11 0E",
    "7": "1F 01 02 04 08 08 08",
    "8": "0E 11 11 0E 11 11 0E",
    "9": "0E 11 11 0F 01 02 0C",
    " ": "00 00 00 00 00 00 00",
    ".": "00 00 00 00 00 0C 0C",
    ",": "00 00 00 00 0C 04 08",
    ":": "00 0C 0C 00 0C 0C 00",
    "-": "00 00 00 1F 00 00 00",
    "/": "00 01 02 04 08 10 00",
    "(": "02 04 08 08 08 04 02",
    ")": "08 04 02 02 02 04 08",
    "'": "04 04 08 00 00 00 00",
    "+": "00 04 04 1F 04 04 00",
    "=": "00 00 1F 00 1F 00 00",
    "<": "02 04 08 10 08 04 02",
    ">": "08 04 02 01 02 04 08",
    "%": "18 19 02 04 08 13 03",
    "_": "00 00 00 00 00 00 1F",
}


class _Canvas:
    """An RGB pixel buffer with rectangles and 5x7 text, encoded as a PNG."""

    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.px = bytearray(b"\xff" * (width * height * 3))

    def rect(self, x0: int, y0: int, x1: int, y1: int, rgb: tuple[int, int, int]) -> None:
        x0, x1 = max(0, min(x0, x1)), min(self.w, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.h, max(y0, y1))
        row = bytes(rgb) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.w + x0) * 3
            self.px[start : start + len(row)] = row

    def text(self, x: int, y: int, s: str, rgb: tuple[int, int, int], scale: int = 2) -> int:
        for ch in s.upper():
            glyph = _FONT.get(ch, _FONT["_"])
            for r, bits in enumerate(int(b, 16) for b in glyph.split()):
                for c in range(5):
                    if bits & (0x10 >> c):
                        self.rect(
                            x + c * scale,
                            y + r * scale,
                            x + (c + 1) * scale,
                            y + (r + 1) * scale,
                            rgb,
                        )
            x += 6 * scale
        return x

    def png(self) -> bytes:
        """The PNG file: signature, IHDR (8-bit RGB), one zlib IDAT of unfiltered rows, IEND."""
        raw = b"".join(
            b"\x00" + bytes(self.px[y * self.w * 3 : (y + 1) * self.w * 3]) for y in range(self.h)
        )

        def chunk(kind: bytes, body: bytes) -> bytes:
            return (
                struct.pack(">I", len(body))
                + kind
                + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
            )

        header = struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def write_png_chart(
    rows: list[ChartRow],
    lines: list[tuple[float, str]],
    title: str,
    path: Path,
) -> None:
    """A horizontal bar chart (median bars, min..max whiskers, pale bars for the figures
    before) with zlib and struct only."""
    scale, row_h, left, right, top = 2, 40, 380, 110, 96
    width, height = 1100, top + row_h * len(rows) + 60
    c = _Canvas(width, height)
    black, grey, red = (0, 0, 0), (200, 200, 200), (200, 30, 50)
    c.text(20, 20, title, black, 2 if len(title) * 12 < width - 40 else 1)
    top_value = max(max(r[3], r[5] or 0) for r in rows) * 1.05
    plot_w = width - left - right

    def x_of(v: float) -> int:
        return left + round(v / top_value * plot_w)

    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500) if top_value / s <= 8)
    tick = 0
    bottom = top + row_h * len(rows)
    while tick <= top_value:
        x = x_of(tick)
        c.rect(x, top - 5, x + 1, bottom, grey)
        c.text(x - 6 * len(str(tick)), bottom + 8, str(tick), black, scale)
        tick += step
    c.text(left + plot_w // 2 - 42, bottom + 30, "seconds", black, scale)
    for n, (label, med, lo, hi, kind, old) in enumerate(rows):
        y = top + n * row_h
        c.text(left - 10 - 12 * len(label), y + 12, label, black, scale)
        if old is not None:
            pale = tuple(255 - (255 - v) * 2 // 5 for v in COLOURS[kind])
            c.rect(left, y + 3, x_of(old), y + 11, (pale[0], pale[1], pale[2]))
        c.rect(left, y + 13, x_of(med), y + row_h - 5, COLOURS[kind])
        mid = y + 13 + (row_h - 18) // 2
        c.rect(x_of(lo), mid - 1, x_of(hi) + 1, mid + 1, black)
        for v in (lo, hi):
            c.rect(x_of(v), mid - 7, x_of(v) + 2, mid + 7, black)
        value = f"{med:.1f} S" if med >= 1 else f"{med:.2f} S"
        c.text(x_of(hi) + 8, y + 12, value, black, scale)
    for n, (v, name) in enumerate(sorted(lines)):
        x = x_of(v)
        label = f"{name} ({v:.1f} s)"
        for y in range(top - 5, bottom, 8):
            c.rect(x, y, x + 2, y + 4, red)
        c.text(x - 6 * len(label), top - 46 + 20 * (n % 2), label, red, scale)
    c.rect(left, top - 5, left + 1, bottom, black)
    path.write_bytes(c.png())
