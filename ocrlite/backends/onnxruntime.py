"""ONNX Runtime runner: plugs an ``.onnx`` net into the pipeline in place of a torch net.

onnxruntime is an optional dependency (``pip install "ocrlite[onnx]"``); it is imported only when
a runner is built. ``OnnxRunner`` also runs ocrlite's own exports (``ocrlite.backends.export``); for a
recognizer exported with the ``top1`` head it returns best classes and their probabilities (``top1``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np

from ocrlite.errors import BackendError
from ocrlite.extras import import_extra

__all__ = ["OnnxRunner", "import_onnxruntime"]


def import_onnxruntime() -> Any:
    """The onnxruntime module, or a BackendError saying how to install it (``import_extra``)."""
    return import_extra("onnxruntime", "the onnxruntime backend")


class OnnxRunner:
    """Run an ONNX model on the CPU: float32 NCHW batch in, its first output out.

    ``model_path`` is a file or a serialized model; ``threads`` sets onnxruntime's intra-op thread count
    (None = onnxruntime's default, all cores); inter-op parallelism is off (one thread). ``optimize``: all graph
    optimisations (ORT_ENABLE_ALL, the pipeline's choice), or only the basic ones that keep the float
    arithmetic of the graph as written ("basic": parity checks of an export).
    """

    def __init__(self, model_path: str | Path | bytes, threads: int | None = None,
                 optimize: Literal["all", "basic"] = "all") -> None:
        ort = import_onnxruntime()
        model = model_path if isinstance(model_path, bytes) else str(model_path)
        model_path = Path("<in memory>" if isinstance(model_path, bytes) else model_path)
        if not isinstance(model, bytes) and not model_path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {model_path}")
        options = ort.SessionOptions()
        options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize == "all"
                                            else ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: the PP-OCR exports declare a fixed T and warn per call
        if threads is not None:
            options.intra_op_num_threads = threads
        self.model_path, self.source = model_path, model
        self.threads = threads
        try:
            self.session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own error types: a truncated or damaged file, not a model
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BackendError(f"{model_path}: cannot load the ONNX model: {reason}") from None
        self.input_name: str = self.session.get_inputs()[0].name
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        inputs = {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}
        return self.session.run(None, inputs)[0]

    @property
    def top1(self) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None:
        """For a graph with the ``top1`` head (outputs ``index``, ``prob``): the call giving the best class and
        its probability per step (N x T each); None for any other graph, whose first output is then read."""
        return self._top1 if self.output_names[:2] == ["index", "prob"] else None

    def _top1(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index, prob = self.session.run(
            self.output_names[:2], {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return index, prob

    def check_stage(self, kind: str, classes: int, logits: bool,
                    size: tuple[int | None, int | None] = (None, None), batch: int | None = None) -> None:
        """A BackendError (one line naming the file) unless this graph can serve a ``kind`` stage whose net has
        ``classes`` outputs per position (det: 1 map), returns ``logits`` (then the graph must end in a Softmax
        or be a recognizer's ``top1`` graph) and is fed inputs of ``size`` (height, width; None where the stage's
        size varies) in batches of ``batch`` images (None: of varying size): a file exported for another stage or
        model (another charset, line height, a fixed batch or line width), or with
        ``--head raw``, would otherwise fail or read garbage on every image. The class count of a ``top1`` graph
        is read from the metadata ocrlite's exporter writes (``METADATA``); a file without it is checked on
        what its shapes show."""
        from ocrlite.backends.onnx_cache import METADATA

        name = self.model_path.name
        meta = self.session.get_modelmeta().custom_metadata_map
        made_for = meta.get(METADATA["kind"])
        if made_for is not None and made_for != kind:
            raise BackendError(f"{name}: exported for a {made_for} stage, not a {kind} stage")
        top1 = self.output_names[:2] == ["index", "prob"]
        if top1 and kind != "rec":
            raise BackendError(f"{name}: a recognizer's top1 graph (index, prob) cannot serve the {kind} stage")
        output = self.session.get_outputs()[0]
        if not top1 and output.type != "tensor(float)":
            raise BackendError(f"{name}: its output is a {output.type}, a {kind} stage reads a tensor(float) "
                               "(probabilities or logits)")
        shape = output.shape
        rank = {"det": 4, "rec": 3}.get(kind, 2)  # N x 1 x H x W maps, N x T x C steps, N x C classes
        if not top1 and len(shape) != rank:
            raise BackendError(f"{name}: its output has {len(shape)} dimensions, a {kind} stage's net gives {rank} "
                               "(a file exported for another stage?)")
        self._check_input(kind, size, batch)
        recorded = meta.get(METADATA["classes"], "")  # a top1 graph's outputs do not show its class count
        shown = None if top1 else shape[1] if kind == "det" else shape[-1]
        width = int(recorded) if recorded.isdigit() else shown if isinstance(shown, int) else None
        if width is not None and width != classes:
            charset = " (another charset?)" if kind == "rec" else ""
            raise BackendError(f"{name}: its output has {width} classes per position, the {kind} stage "
                               f"{classes}{charset}")
        if logits and not top1 and kind != "det" and self._last_op() != "Softmax":
            raise BackendError(f"{name} returns the net's logits, not probabilities: export it with --head probs")

    def _check_input(self, kind: str, size: tuple[int | None, int | None], batch: int | None) -> None:
        """A BackendError unless the graph takes one float32 N x 3 x H x W input, or when it fixes a batch size,
        input height or width the stage does not feed."""
        name, inputs = self.model_path.name, self.session.get_inputs()
        if len(inputs) != 1:
            raise BackendError(f"{name}: the graph has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}), "
                               f"a {kind} stage feeds one (N x 3 x H x W float32 images)")
        if inputs[0].type != "tensor(float)":
            raise BackendError(f"{name}: its input is a {inputs[0].type}, a {kind} stage feeds a tensor(float) "
                               "(float32 images)")
        shape = inputs[0].shape
        if len(shape) != 4:
            raise BackendError(f"{name}: its input has {len(shape)} dimensions, a {kind} stage feeds 4 (N x 3 x H x W)")
        if isinstance(shape[1], int) and shape[1] != 3:
            raise BackendError(f"{name}: its input has {shape[1]} channels, a {kind} stage feeds 3 (N x 3 x H x W)")
        if isinstance(shape[0], int) and shape[0] != batch:
            feeds = "one image at a time" if batch == 1 else "batches of varying size"
            hint = "set rec.preprocess.batch_size=1, or " if kind == "rec" and shape[0] == 1 else ""
            raise BackendError(f"{name}: its input fixes a batch of {shape[0]}, the {kind} stage feeds {feeds} "
                               f"({hint}export it with a dynamic batch)")
        fixed = [dim if isinstance(dim, int) else None for dim in shape[2:4]]
        if any(got is not None and got != want for got, want in zip(fixed, size)):
            def text(pair: Sequence[int | None]) -> str:
                return " x ".join(str(v) if v is not None else "any" for v in pair)
            raise BackendError(f"{name}: its input is {text(fixed)} px (height x width), the {kind} "
                               f"stage feeds {text(size)} (its preprocess settings; a file made for another model?)")

    def _last_op(self) -> str | None:
        """The type of the node producing the first output (None when the graph cannot be read here)."""
        if isinstance(self.source, bytes) or not Path(self.source).is_file():
            return None
        name = self.model_path.name
        onnx = import_extra("onnx", f"checking that {name} returns probabilities")
        from google.protobuf.message import DecodeError

        try:
            graph = onnx.load(str(self.source), load_external_data=False).graph
        except DecodeError:  # onnxruntime's own format (.ort), which it runs and onnx cannot read
            raise BackendError(f"{name}: not an ONNX protobuf (an ORT-format file?), so it cannot be checked to "
                               "return probabilities; give the .onnx file") from None
        return next((node.op_type for node in graph.node if graph.output[0].name in node.output), None)

    def __repr__(self) -> str:
        return f"OnnxRunner({str(self.model_path)!r}, threads={self.threads})"
