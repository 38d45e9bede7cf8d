"""The fonts synthetic lines are drawn in: those under a folder, each checked for a text's glyphs."""

from __future__ import annotations

import re
import string
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from ...errors import ConfigError
from ...extras import debian

__all__ = ["FONT_ROOT", "CJK_FONT_NAMES", "LATIN_FONT_PACKAGES", "FontBank"]

FONT_ROOT = Path("/usr/share/fonts")
CJK_FONT_NAMES = ("wqy-microhei.ttc", "DroidSansFallbackFull.ttf")
LATIN_FONT_PACKAGES = "fonts-dejavu-core fonts-liberation"  # Debian's, for the fonts under FONT_ROOT
_PROBE = "\ue000\uffff"  # private-use / non-characters: what a font draws for a missing glyph
_SYMBOL_FONTS = re.compile(r"symbol|dingbat|d050000l|math|emoji|music", re.IGNORECASE)  # Latin codes, other glyphs


class FontBank:
    """Fonts found under a folder, each checked for the glyphs of a text before use."""

    def __init__(self, root: Path = FONT_ROOT) -> None:
        self.root = root
        if not root.is_dir():
            raise ConfigError(f"font folder {root} does not exist" + debian(LATIN_FONT_PACKAGES))
        files = sorted(
            p for p in root.rglob("*") if p.suffix.lower() in (".ttf", ".otf") and not _SYMBOL_FONTS.search(p.name)
        )
        cjk = sorted(p for p in root.rglob("*") if p.name in CJK_FONT_NAMES and self._opens(p))
        probe = string.ascii_letters + string.digits
        self.latin: tuple[Path, ...] = tuple(p for p in files if self.covers(p, probe) and p not in cjk)
        self.cjk: tuple[Path, ...] = tuple(cjk)
        if not self.latin:
            raise ConfigError(f"no usable TTF/OTF fonts with Latin glyphs under {root}" + debian(LATIN_FONT_PACKAGES))

    @staticmethod
    @lru_cache(maxsize=4096)
    def font(path: Path, size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.FreeTypeFont(str(path), size)  # truetype() would load a system font of the same name

    @staticmethod
    def _opens(path: Path) -> bool:
        """Whether ``path`` is a font file FreeType reads (a broken or truncated one is not used)."""
        try:
            FontBank.font(path, 24)
        except OSError:
            return False
        return True

    @staticmethod
    @lru_cache(maxsize=1 << 18)
    def _has_glyph(path: Path, char: str) -> bool:
        """Whether ``path`` draws ``char`` as something other than its missing-glyph box."""
        if not FontBank._opens(path):
            return False
        if char == " ":
            return True
        font = FontBank.font(path, 24)
        try:
            mask = font.getmask(char)
        except (OSError, ValueError):
            return False
        if mask.size[0] == 0 or mask.size[1] == 0 or max(bytes(mask)) == 0:
            return False
        own = (mask.size, bytes(mask))
        return all(own != _notdef(path, p) for p in _PROBE)

    def files(self) -> list[Path]:
        """Every font file used."""
        return [*self.latin, *self.cjk]

    def covers(self, path: Path, text: str) -> bool:
        return all(self._has_glyph(path, ch) for ch in set(text))


@lru_cache(maxsize=2048)
def _notdef(path: Path, probe: str) -> tuple[tuple[int, int], bytes]:
    mask = FontBank.font(path, 24).getmask(probe)
    return mask.size, bytes(mask)
