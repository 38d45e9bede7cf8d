"""Convert PaddleOCR's ONNX models to ocrlite weights: see ``ocrlite.convert.ppocr`` (``--help``)."""

from ocrlite.errors import BackendError, exit_on_error
from ocrlite.extras import extra, require


def main() -> None:
    """Check that onnx and onnxruntime (the ``convert`` extra) are installed, then run the converter."""
    require("converting the ONNX models", ("onnx", "onnxruntime"), extra("convert"), BackendError)
    from ocrlite.convert.ppocr import main as convert

    convert()


if __name__ == "__main__":
    exit_on_error(main, "convert_ppocr.py")
