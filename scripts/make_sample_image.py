"""Render tests/images/sample.png, the quick-start image (our own rendering, no licence strings)."""

import argparse
import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ocrlite.errors import OcrliteError, exit_on_error
from ocrlite.extras import debian
from ocrlite.io.atomic import atomic_write_bytes, ensure_folder

LINES = ["OCRLITE 2026", "Invoice No. 48213", "Total: 42.50 EUR", "Thank you!"]
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
NAME = "sample.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(__file__).resolve().parents[1] / "tests" / "images"
    parser.add_argument("--out", type=Path, default=default,
                        help=f"a folder (it gets {NAME}) or a .png file (default: tests/images)")
    out = parser.parse_args().out
    if out.is_dir() or not out.suffix:
        out = out / NAME
    if out.suffix.lower() != ".png":
        raise OcrliteError(f"--out: expected a folder or a .png file, got {out}")
    ensure_folder(out.absolute().parent)
    try:
        font = ImageFont.truetype(FONT, 34)
    except OSError:
        raise OcrliteError(f"font not found: {FONT}" + debian("fonts-dejavu-core")) from None
    image = Image.new("RGB", (640, 300), "white")
    pen = ImageDraw.Draw(image)
    for row, text in enumerate(LINES):
        pen.text((40, 25 + row * 68), text, fill=(20, 20, 20), font=font)
    png = io.BytesIO()
    image.save(png, format="PNG")
    atomic_write_bytes(out, png.getvalue())
    print(out)


if __name__ == "__main__":
    exit_on_error(main, "make_sample_image.py")
