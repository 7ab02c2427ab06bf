"""Export a model for deployment: ONNX (dynamic H/W, verified with onnxruntime) and TorchScript.

The exported graph includes normalisation, the frozen encoder, the decoder and the clamp: feed
(B, 3, H, W) float32 in [0, 1] with H and W multiples of 16 (2^depth; pad reflectively first, as
`Derainer` does), get the derained image back. Padding stays outside the graph because its amount
is data-dependent Python arithmetic that a trace would freeze.

That contract travels inside each file (`io_contract`), since a file passed on without this
package's docs would otherwise say nothing of range, channel order or size: in the ONNX model's
`metadata_props` (onnxruntime: `InferenceSession(...).get_modelmeta().custom_metadata_map`), and
in the TorchScript archive as the extra file `io_contract.json`.
"""
from __future__ import annotations

import json
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


def io_contract(model, about: dict | None = None) -> dict[str, str]:
    """What a caller of an exported file must feed it and gets back; string values (ONNX
    metadata_props hold strings only)."""
    m = str(getattr(model, "pad_multiple", 16))
    from . import __version__
    return {
        "input": f"image: float32, NCHW (batch, 3, height, width), RGB channel order, values in [0, 1]; "
                 f"height and width multiples of {m} (pad reflectively, then crop the output back)",
        "output": "derained: the same as the input: float32 NCHW RGB in [0, 1], the input's size",
        "layout": "NCHW", "channels": "RGB", "dtype": "float32", "value_range": "0,1",
        "size_multiple": m,
        "producer": f"fclip-derain {__version__}",
        **{k: str(v) for k, v in (about or {}).items()},
    }


def export_onnx(model, path: str | Path, opset: int = 17, check_size=(1, 3, 64, 96),
                about: dict | None = None) -> dict:
    """`about`: more metadata (which expert, which checkpoint), beside the I/O contract."""
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
    import onnx
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, io_contract(model, about))
    proto.doc_string = "FCLIP-UNet deraining: " + io_contract(model)["input"]
    onnx.save(proto, str(path))
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


def export_torchscript(model, path: str | Path, about: dict | None = None) -> dict:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad(), _quiet_trace():
        traced = torch.jit.trace(_Exportable(model), x, check_trace=False)
    traced.save(str(path), _extra_files={"io_contract.json": json.dumps(io_contract(model, about), indent=1)})
    loaded = torch.jit.load(str(path))
    worst = 0.0
    for s in ((1, 3, 64, 96), (1, 3, 96, 64), (1, 3, 320, 480)):
        y = torch.rand(*s)
        with torch.no_grad():
            worst = max(worst, float((loaded(y) - model.eval()(y)).abs().max()))
    return {"path": str(path), "max_abs_diff": worst}
