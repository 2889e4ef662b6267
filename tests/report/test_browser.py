"""The report in a real browser: headless Chromium screenshots it (light and dark) and prints
it to PDF. The PNGs are decoded here (zlib, no imaging library) to check they are not blank.

Debian's `chromium` package (/usr/bin/chromium). With CI=true a missing browser fails the
test; elsewhere it is skipped, loudly.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import warnings
import zlib
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.report import seed

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "chromium is not installed (Debian: apt-get install chromium): browser test NOT run"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    warnings.warn(message, stacklevel=1)
    pytest.skip(message)


def browse(tmp_path: Path, page: Path, *args: str) -> None:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]


def pixels(png: Path) -> tuple[int, int, list[tuple[int, ...]]]:
    """Decode an 8-bit RGB or RGBA PNG (what Chromium writes) into rows of pixels."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    out: list[tuple[int, ...]] = []
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        out.extend(tuple(line[i : i + 3]) for i in range(0, stride, bpp))
        prev = line
    return width, height, out


def not_blank(png: Path) -> tuple[int, int, int]:
    """(r, g, b) of the background; asserts the page drew text and charts on it."""
    width, height, px = pixels(png)
    assert (width, height) == (1000, 1800)
    counts = Counter(px)
    background, n = counts.most_common(1)[0]
    drawn = 1 - n / len(px)
    assert drawn > 0.05, f"only {drawn:.1%} of the screenshot differs from the background"
    assert len(counts) > 200, f"only {len(counts)} colours: nothing much was drawn"
    return background  # type: ignore[return-value]


@pytest.fixture
def page(cli: Cli, tmp_path: Path) -> Path:
    seed.seeded(cli)
    out = tmp_path / "report.html"
    r = cli("report", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    return out


def test_chromium_renders_the_report_light_dark_and_print(page: Path, tmp_path: Path) -> None:
    light, dark, pdf = tmp_path / "light.png", tmp_path / "dark.png", tmp_path / "report.pdf"
    browse(tmp_path, page, "--window-size=1000,1800", f"--screenshot={light}")
    background = not_blank(light)
    assert sum(background) > 600, f"light mode background {background}"
    browse(tmp_path, page, "--window-size=1000,1800", "--force-dark-mode", f"--screenshot={dark}")
    background = not_blank(dark)
    assert sum(background) < 150, f"dark mode (prefers-color-scheme) background {background}"
    browse(tmp_path, page, "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    data = pdf.read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    assert data.startswith(b"%PDF") and pages >= 4, pages  # print: a page per workflow at least
    print(f"screenshots: {light} {dark}; print: {pdf}")
