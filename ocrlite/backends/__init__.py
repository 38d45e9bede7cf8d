"""Runners: the interface through which a predictor calls a net (PyTorch, ONNX Runtime)."""
