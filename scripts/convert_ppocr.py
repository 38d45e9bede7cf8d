"""Convert PaddleOCR's ONNX models to ocrlite weights: see ``ocrlite.convert.ppocr`` (``--help``)."""

from ocrlite.convert.ppocr import main

if __name__ == "__main__":
    main()
