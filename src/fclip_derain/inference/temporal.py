"""Temporal fusion for video deraining: neighbouring frames remove the rain one frame cannot.

Rain moves from frame to frame and the scene does not (or moves smoothly with the camera). For
each frame t of a clip, every neighbour t+k within `radius` frames is aligned onto frame t by
dense optical flow (OpenCV's DIS, computed on the per-frame derained outputs, where the rain
that would mislead it is mostly gone), and pixels where the alignment cannot be trusted are
masked:
- forward-backward consistency: following the flow t->t+k and then t+k->t must come back
  (occlusions, disocclusions and wrong matches fail it; Sundaram et al., ECCV 2010);
- photometric error: the aligned neighbour, blurred to ignore thin rain residue, must look like
  frame t;
- pixels that leave the frame.
A neighbour whose frame is mostly masked (a scene cut, a flash) is left out entirely. Frames
under MIN_FLOW_SIDE pixels on a side are not fused: each comes out as its per-frame output.

The fusion is the one measured best on the project's synthetic rain clips
(benchmarks/video_temporal.py, docs/video.md): a confidence-weighted average over the aligned
frames of the *inputs* (warped with cubic interpolation, which keeps their detail), each pixel
weighted by its alignment and by how little rain it holds: the rain the per-frame model found
there (input minus derained output) or, if more, how much brighter it is than the median of its
aligned views (rain the model missed: rain is bright and does not stay). The rain-free views of
a pixel, which carry the scene's own detail, win; the per-frame output of frame t stands in
where every view has rain. Static cameras gain most (every neighbour aligns everywhere); fast
motion, occlusions and cuts fall back towards the per-frame output.

Everything here works on uint8 HxWx3 frames with NumPy and OpenCV (cv2 releases the GIL and
uses its own threads).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from ..errors import FclipError


def _cv2():
    try:
        import cv2
        return cv2
    except ImportError:
        raise FclipError("temporal video deraining needs OpenCV: pip install 'fclip-derain[video]' "
                         "(or use --per-frame)") from None


# OpenCV's DIS (5.1) refuses frames under 12 px, and kills the process (a segfault, nothing to
# catch) on wide frames under 16 px high with the `medium` preset or under 32 px with `fast` and
# `ultrafast`, so below this side no flow is computed. Frames that small hold too little texture
# for flow to follow anyway.
MIN_FLOW_SIDE = 32


@dataclass(frozen=True)
class FusionParams:
    radius: int = 2            # neighbours on each side (window of 2 radius + 1 frames)
    fb_tol: float = 1.0        # forward-backward error allowed, px (plus 5% of the motion)
    photo_tol: float = 24.0    # grey levels of blurred difference at which a view's weight is e^-1
    min_valid: float = 0.3     # a neighbour aligned on less than this fraction of the frame is dropped
    rain_tol: float = 4.0      # grey levels of rain at which a view's weight is e^-1
    out_weight: float = 0.05   # weight of the per-frame output of frame t beside the views
    flow_preset: str = "medium"  # DIS preset: ultrafast, fast, medium
    flow_on: str = "outputs"   # frames the flow is computed on: per-frame "outputs" (rain mostly gone) or "inputs"
    warp: str = "cubic"        # interpolation of the aligned neighbours: "cubic" keeps their detail, or "linear"
    temporal_rain: bool = True  # also count as rain what is brighter than the median of the aligned views
    fusion: str = "rain-weighted"  # or median / mean of the aligned per-frame outputs (fuse_window)


def luma(x: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB frame (uint8 or float), float32."""
    x = x.astype(np.float32, copy=False)
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


class FlowCache:
    """DIS optical flow between frames by index, each ordered pair computed once (the flow
    t->t+k serves frame t, its reverse frame t+k); `drop(i)` forgets frame i."""

    PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}

    def __init__(self, preset: str = "medium"):
        cv2 = _cv2()
        self.dis = cv2.DISOpticalFlow_create(self.PRESETS[preset])
        self.grey: dict[int, np.ndarray] = {}
        self.flows: dict[tuple[int, int], np.ndarray] = {}

    def add(self, i: int, frame: np.ndarray):
        self.grey[i] = np.clip(luma(frame) + 0.5, 0, 255).astype(np.uint8)

    def __call__(self, i: int, j: int) -> np.ndarray:
        """Flow from frame i to frame j: pixel p of i is seen at p + flow[p] in j (HxWx2, x then y)."""
        if (i, j) not in self.flows:
            self.flows[(i, j)] = self.dis.calc(self.grey[i], self.grey[j], None)
        return self.flows[(i, j)]

    def drop(self, i: int):
        self.grey.pop(i, None)
        for key in [k for k in self.flows if i in k]:
            del self.flows[key]


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))


def align(flow_tk: np.ndarray, flow_kt: np.ndarray, tol: float):
    """-> (map_x, map_y) sampling frame t+k at frame t's pixels, and the mask (float 0/1) of
    pixels that stay inside the frame and pass the forward-backward check."""
    cv2 = _cv2()
    h, w = flow_tk.shape[:2]
    gx, gy = _grid(h, w)
    mx, my = gx + flow_tk[..., 0], gy + flow_tk[..., 1]
    back = cv2.remap(flow_kt, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err = np.hypot(flow_tk[..., 0] + back[..., 0], flow_tk[..., 1] + back[..., 1])
    motion = np.hypot(flow_tk[..., 0], flow_tk[..., 1])
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    ok = inside & (err <= tol + 0.05 * motion)
    return mx, my, ok.astype(np.float32)


FUSIONS = ("rain-weighted", "median", "mean")


def fuse_window(inputs: dict, outputs: dict, t: int, flows: FlowCache, p: FusionParams) -> np.ndarray:
    """The fused frame t from the frames of the window (dicts index -> uint8 HxWx3; `flows` knows
    them all). `p.fusion`: rain-weighted (the default: aligned inputs, weighted by alignment and by
    how little rain the model found in them), median or mean (of the aligned per-frame outputs,
    unaligned pixels taking frame t's output): the alternatives benchmarks/video_temporal.py measures."""
    cv2, fusion = _cv2(), p.fusion
    interp = {"cubic": cv2.INTER_CUBIC, "linear": cv2.INTER_LINEAR}[p.warp]
    remap = lambda a, mx, my: cv2.remap(a, mx, my, interp,  # noqa: E731
                                        borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    blur = lambda y: cv2.GaussianBlur(y, (0, 0), 2.0)  # noqa: E731  thin rain residue averages out
    it, ot = inputs[t].astype(np.float32), outputs[t].astype(np.float32)
    ref = blur(luma(ot))
    views = [(it, ot, np.ones(it.shape[:2], np.float32))]  # (input, output, alignment weight)
    for k in sorted(inputs):
        if k == t:
            continue
        mx, my, ok = align(flows(t, k), flows(k, t), p.fb_tol)
        if ok.mean() < p.min_valid:
            continue  # scene cut, flash, or motion too fast to follow: this neighbour says nothing
        ik, okk = remap(inputs[k], mx, my), remap(outputs[k], mx, my)
        photo = np.exp(-(((blur(luma(okk)) - ref) / p.photo_tol) ** 2))
        views.append((ik, okk, ok * photo))
    if fusion == "rain-weighted":
        num, den = ot * p.out_weight, np.full(ot.shape[:2], p.out_weight, np.float32)
        if p.temporal_rain and len(views) > 2:
            # rain the model missed: brighter than the median of the aligned views
            med = np.median(np.stack([np.where(a >= 0.5, luma(i), luma(ot)) for i, _, a in views]), 0)
        for i, o, a in views:
            rain = luma(i) - luma(o)
            if p.temporal_rain and len(views) > 2:
                rain = np.maximum(rain, luma(i) - med)
            w = a * np.exp(-((np.maximum(rain, 0) / p.rain_tol) ** 2))
            num += i * w[..., None]
            den += w
        y = num / den[..., None]
    elif fusion in ("median", "mean"):
        # an unaligned pixel (weight < 1/2) takes frame t's own output
        stack = np.stack([np.where((a >= 0.5)[..., None], o, ot) for _, o, a in views])
        y = np.median(stack, 0) if fusion == "median" else stack.mean(0)
    else:
        raise FclipError(f"fusion {fusion!r}: choose one of {', '.join(FUSIONS)}")
    return np.clip(y + 0.5, 0, 255).astype(np.uint8)


def temporal_stream(derain: Callable[[np.ndarray], np.ndarray], frames: Iterable[np.ndarray],
                    params: FusionParams = FusionParams()) -> Iterator[np.ndarray]:
    """Derain each frame with `derain` (uint8 HxWx3 -> same) and yield the fused frames in
    order. Holds at most 2 radius + 1 frames (inputs, outputs and their flows) at a time: frame t
    comes out once frame t + radius has been read. A clip whose frames are under MIN_FLOW_SIDE
    on a side comes out frame by frame, as `derain` makes it."""
    r = params.radius
    flows = FlowCache(params.flow_preset)
    inputs, outputs = {}, {}
    pending = deque()  # indices read but not yet yielded
    shape = None
    n = 0
    for n, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise FclipError(f"frame {n}: expected an HxWx3 uint8 frame, got {frame.dtype} {frame.shape}")
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise FclipError(f"frame {n}: size {frame.shape[1]}x{frame.shape[0]} differs from the clip's "
                             f"{shape[1]}x{shape[0]}")
        if min(shape[:2]) < MIN_FLOW_SIDE:
            yield derain(frame)
            continue
        inputs[n], outputs[n] = frame, derain(frame)
        flows.add(n, outputs[n] if params.flow_on == "outputs" else frame)
        pending.append(n)
        while pending and pending[0] + r <= n:
            yield _emit(pending.popleft(), inputs, outputs, flows, params)
    while pending:
        yield _emit(pending.popleft(), inputs, outputs, flows, params)


def _emit(t: int, inputs: dict, outputs: dict, flows: FlowCache, p: FusionParams) -> np.ndarray:
    near = {k: inputs[k] for k in inputs if abs(k - t) <= p.radius}
    y = fuse_window(near, {k: outputs[k] for k in near}, t, flows, p) if len(near) > 1 else outputs[t]
    # frames that no later frame will need
    for k in [k for k in inputs if k <= t - p.radius]:
        del inputs[k], outputs[k]
        flows.drop(k)
    return y


def derain_frames(derainer, frames: Iterable, per_frame: bool = False, radius: int = FusionParams.radius):
    """What `Derainer.derain_stream` runs: frames (HxWx3 uint8 arrays or PIL images, one clip in
    order) -> derained frames in order, each of its input's type."""
    from PIL import Image
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
        raise FclipError(f"radius {radius!r}: expected a whole number of frames >= 1 (or per_frame=True)")
    if not per_frame:
        _cv2()
    try:
        frames = iter(frames)
    except TypeError:
        raise FclipError(f"derain_stream takes an iterable of frames, not {type(frames).__name__}") from None
    kinds = deque()  # whether each frame read was a PIL image, to answer in kind

    def arrays():
        from ..data.io import _to_rgb
        for n, f in enumerate(frames):
            kinds.append(isinstance(f, Image.Image))
            if kinds[-1]:
                f = np.asarray(_to_rgb(f))
            elif not isinstance(f, np.ndarray):
                raise FclipError(f"frame {n}: expected an HxWx3 uint8 array or a PIL image, not {type(f).__name__}")
            yield f

    def fused():
        outs = (map(derainer.derain, arrays()) if per_frame
                else temporal_stream(derainer.derain, arrays(), FusionParams(radius=radius)))
        for y in outs:
            yield Image.fromarray(y) if kinds.popleft() else y

    return fused()  # a bad radius fails here, at the call, not at the first frame
