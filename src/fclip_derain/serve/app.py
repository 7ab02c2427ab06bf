"""`fclip-derain serve`: a web page (upload or drop, before/after slider, download) and a JSON API.

POST /api/derain (multipart field `file`) -> {"width", "height", "ms", "image": "data:image/png;base64,..."}
GET  /api/health -> {"status": "ok", "model": ...}

Uploads are limited in bytes (checked while streaming, before decoding), pixels and type; each
failure is a 4xx with one clear `detail`. One inference runs at a time (the model uses all
cores); at most `max_queue` requests wait, the rest get 503 at once, so memory stays bounded.
"""
# no `from __future__ import annotations`: FastAPI reads the endpoint annotations as objects

import asyncio
import base64
import io
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.io import open_image
from ..errors import ImageError

STATIC = Path(__file__).parent / "static"


def create_app(derainer, max_bytes: int = 20 * 2 ** 20, max_pixels: int = 24_000_000, max_queue: int = 64):
    from fastapi import FastAPI, HTTPException, Request, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse

    app = FastAPI(title="fclip-derain", version="1")
    # a thread lock, not an asyncio one: it must not be bound to one event loop
    gate = threading.Lock()
    waiting = {"n": 0}

    @app.get("/", response_class=HTMLResponse)
    def page():
        return (STATIC / "index.html").read_text()

    @app.get("/api/health")
    def health():
        return {"status": "ok", "model": derainer.model.config.encoder, "max_bytes": max_bytes,
                "max_pixels": max_pixels}

    @app.post("/api/derain")
    async def derain(request: Request, file: UploadFile):
        length = request.headers.get("content-length")
        if length and int(length) > max_bytes + 1024 * 64:
            raise HTTPException(413, f"upload too large: {int(length)} bytes, limit {max_bytes}")
        data = await file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise HTTPException(413, f"upload too large: over {max_bytes} bytes")
        name = Path(file.filename or "upload").name  # never used as a path, only in messages
        if not data:
            raise HTTPException(415, f"{name}: empty upload (0 bytes)")
        try:  # the header alone gives the size: refuse huge images before decoding them
            with Image.open(io.BytesIO(data)) as probe:
                w, h = probe.size
        except Exception:
            w = h = 0  # not an image: the decoder below says what is wrong
        if w * h > max_pixels:
            raise HTTPException(413, f"{name}: {w}x{h} is over the limit of {max_pixels / 1e6:.1f} MP")
        try:
            img = np.asarray(open_image(data, name))
        except ImageError as e:
            raise HTTPException(415, f"{e} (supported: PNG, JPEG, BMP, TIFF, WebP)") from None
        if waiting["n"] >= max_queue:
            raise HTTPException(503, "server busy: too many requests waiting; retry shortly")
        waiting["n"] += 1  # only touched from the event loop thread

        def work():
            with gate:
                t = time.perf_counter()
                return derainer.derain(img), (time.perf_counter() - t) * 1e3
        try:
            out, ms = await asyncio.to_thread(work)
        finally:
            waiting["n"] -= 1
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, "PNG")
        b64 = base64.b64encode(buf.getvalue()).decode()
        return JSONResponse({"width": int(out.shape[1]), "height": int(out.shape[0]), "ms": round(ms, 1),
                             "name": name, "image": f"data:image/png;base64,{b64}"})

    return app


def serve(derainer, host: str = "127.0.0.1", port: int = 7860, **kw):
    import uvicorn
    uvicorn.run(create_app(derainer, **kw), host=host, port=port, log_level="info")
