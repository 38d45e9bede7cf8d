"""Converting PaddleOCR's ONNX models into ocrlite nets: safetensors weights, manifests and parity fixtures."""
