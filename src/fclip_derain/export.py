"""Export a model for deployment: ONNX (dynamic H/W, verified with onnxruntime) and TorchScript.

The exported graph includes normalisation, the frozen encoder, the decoder and the clamp: feed
(B, 3, H, W) float32 in [0, 1] with H and W multiples of 16 (2^depth; pad reflectively first, as
`Derainer` does), get the derained image back. Padding stays outside the graph because its amount
is data-dependent Python arithmetic that a trace would freeze.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from .errors import FclipError


class _Exportable(torch.nn.Module):
    """Wraps the model so the encoder's `torch.no_grad()` context does not enter the trace."""

    def __init__(self, model):
        super().__init__()
        self.model = model.eval()

    def forward(self, x):
        return self.model(x)


@contextmanager
def _quiet_trace():
    """Silence the warnings every trace of this model prints, and only those: TracerWarnings about
    the model's input-shape checks and its padding branch (fixed for H, W multiples of 16, which
    the exported graph requires) and the ONNX exporter's note that it did not constant-fold a
    Slice. Both files are checked numerically against PyTorch at other sizes after export, which is
    what would catch a trace that does not generalise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
        yield


def export_onnx(model, path: str | Path, opset: int = 17, check_size=(1, 3, 64, 96)) -> dict:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.rand(*check_size)
    m = _Exportable(model)
    try:
        with _quiet_trace():
            torch.onnx.export(m, (x,), str(path), input_names=["image"], output_names=["derained"],
                              opset_version=opset, dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                                                 "derained": {0: "batch", 2: "height", 3: "width"}},
                              dynamo=False)
    except Exception as e:
        raise FclipError(f"ONNX export failed: {str(e).splitlines()[0]}") from None
    return verify_onnx(model, path)


def verify_onnx(model, path, sizes=((1, 3, 64, 96), (2, 3, 128, 80), (1, 3, 320, 480))) -> dict:
    """Run the ONNX file with onnxruntime (CPU) at several sizes; max abs diff vs PyTorch."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise FclipError("verifying ONNX needs onnxruntime: pip install 'fclip-derain[export]'") from None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for s in sizes:
        x = torch.rand(*s)
        with torch.no_grad():
            ref = model.eval()(x).numpy()
        got = sess.run(None, {"image": x.numpy()})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    return {"path": str(path), "max_abs_diff": worst, "sizes": [list(s) for s in sizes]}


def export_torchscript(model, path: str | Path) -> dict:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad(), _quiet_trace():
        traced = torch.jit.trace(_Exportable(model), x, check_trace=False)
    traced.save(str(path))
    loaded = torch.jit.load(str(path))
    worst = 0.0
    for s in ((1, 3, 64, 96), (1, 3, 96, 64), (1, 3, 320, 480)):
        y = torch.rand(*s)
        with torch.no_grad():
            worst = max(worst, float((loaded(y) - model.eval()(y)).abs().max()))
    return {"path": str(path), "max_abs_diff": worst}
