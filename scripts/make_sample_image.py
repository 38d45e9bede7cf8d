"""Render tests/images/sample.png, the quick-start image (our own rendering, no licence strings)."""

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

LINES = ["OCRLITE 2026", "Invoice No. 48213", "Total: 42.50 EUR", "Thank you!"]
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(__file__).resolve().parents[1] / "tests" / "images" / "sample.png"
    parser.add_argument("--out", type=Path, default=default, help="where to write it (default: tests/images)")
    out = parser.parse_args().out
    image = Image.new("RGB", (640, 300), "white")
    pen = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 34)
    for row, text in enumerate(LINES):
        pen.text((40, 25 + row * 68), text, fill=(20, 20, 20), font=font)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    print(out)


if __name__ == "__main__":
    main()
