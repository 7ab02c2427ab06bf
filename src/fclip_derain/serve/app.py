"""`fclip-derain serve`: a web page (upload or drop, before/after slider, download) and a JSON API.

POST /api/derain (multipart field `file`) -> {"width", "height", "ms", "name", "rain", "image": "data:image/png;base64,..."}
(`rain`: the expert of the default model that ran, light, heavy or blend; null for a --checkpoint model)
GET  /api/health -> {"status": "ok", "model": ...}

The image comes back as a PNG holding what `fclip-derain derain` keeps in a PNG: grey stays grey
(one channel), 16-bit grey stays 16-bit (browsers show and download 16-bit PNGs; their display
drops to 8 bits, the file does not), the ICC profile and EXIF (orientation applied) are kept,
and transparency is flattened onto white. Whatever the upload's format, the answer is a PNG:
lossless, and the one format every browser shows, where the CLI writes the input's own format.

Errors are one sentence in `detail`: 400 for a request without the `file` field and for an empty
or broken image file (its type is fine, its bytes are not), 415 for a file that is not an image in a
supported format, 413 for too large, 503 for busy.

Limits, in the order they bite (each failure is one 4xx/503 with a clear `detail`):
- bodies over the byte limit are refused from the Content-Length header, before they are read,
  and chunked bodies are cut off as soon as they pass it (`BodyLimit`);
- at most `max_queue` requests wait; the rest get 503 at once;
- the pixel count is read from the image header, before decoding;
- decoding and inference run one at a time (the model uses all cores) in a worker thread, so a
  waiting request holds only its upload (spooled to disk by Starlette above 1 MB), never a
  decoded image: memory is bounded by the model, one image, and the queue's uploads.
"""
# no `from __future__ import annotations`: FastAPI reads the endpoint annotations as objects

import asyncio
import base64
import io
import json
import threading
import time
from pathlib import Path

from PIL import Image

from ..data.io import native_array, native_output, open_native, save_options
from ..errors import ImageError, UnsupportedImageError

STATIC = Path(__file__).parent / "static"
# a raindrop; served inline so the page needs no other file
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M8 1C6 5 3 8 3 10.5a5 5 0 0 0 '
           '10 0C13 8 10 5 8 1z" fill="#3a7bd5"/></svg>')
MULTIPART_SLACK = 64 * 1024  # form boundaries and headers around the file itself


class BodyLimit:
    """ASGI middleware: 413 for request bodies over `limit` bytes, without reading them."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await _reject(send, 413, f"upload too large: {length.decode(errors='replace')} bytes, "
                                            f"limit {self.limit - MULTIPART_SLACK}")
        seen, started = 0, False

        async def counted_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return msg

        async def tracked_send(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await _reject(send, 413, f"upload too large: over {self.limit - MULTIPART_SLACK} bytes")


class _TooLarge(Exception):
    pass


async def _reject(send, status: int, detail: str):
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def create_app(derainer, max_bytes: int = 20 * 2 ** 20, max_pixels: int = 24_000_000, max_queue: int = 64):
    from fastapi import FastAPI, HTTPException, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse

    app = FastAPI(title="fclip-derain", version="1")

    @app.exception_handler(RequestValidationError)
    async def bad_request(request, exc):  # FastAPI's default is a 422 with its raw validation JSON
        return JSONResponse({"detail": "no image in the request: send it as multipart form data in the field "
                                       "`file` (curl -F file=@photo.jpg URL)"}, status_code=400)
    app.add_middleware(BodyLimit, limit=max_bytes + MULTIPART_SLACK)
    # a thread lock, not an asyncio one: it must not be bound to one event loop
    gate = threading.Lock()
    waiting = {"n": 0}  # only touched from the event loop thread

    @app.get("/", response_class=HTMLResponse)
    def page():
        return (STATIC / "index.html").read_text()

    @app.get("/favicon.svg")
    @app.get("/favicon.ico")
    def favicon():
        from fastapi.responses import Response
        return Response(FAVICON, media_type="image/svg+xml",
                        headers={"cache-control": "public, max-age=86400"})

    @app.get("/api/health")
    def health():
        return {"status": "ok", "model": derainer.model.config.encoder, "max_bytes": max_bytes,
                "max_pixels": max_pixels, "waiting": waiting["n"]}

    @app.post("/api/derain")
    async def derain(file: UploadFile):
        name = Path(file.filename or "upload").name  # never used as a path, only in messages
        if waiting["n"] >= max_queue:
            raise HTTPException(503, "server busy: too many requests waiting; retry shortly")
        size = file.size if file.size is not None else len(await file.read())
        if size > max_bytes:
            raise HTTPException(413, f"{name}: upload too large: {size} bytes, limit {max_bytes}")
        if size == 0:
            raise HTTPException(400, f"{name}: empty upload (0 bytes)")
        file.file.seek(0)
        try:  # the header alone gives the size: refuse huge images before decoding them
            with Image.open(file.file) as probe:
                w, h = probe.size
        except Exception:
            w = h = 0  # not an image: the decoder says what is wrong
        if w * h > max_pixels:
            raise HTTPException(413, f"{name}: {w}x{h} is over the limit of {max_pixels / 1e6:.1f} MP")

        def work():
            with gate:
                file.file.seek(0)
                im = open_native(file.file.read(), name)  # as the CLI reads a file: grey, 16-bit kept
                t = time.perf_counter()
                out = native_output(derainer.derain(native_array(im)), im, "PNG")
                ms = (time.perf_counter() - t) * 1e3
                route = derainer.last_routes[0] if getattr(derainer, "routed", False) else None
            buf = io.BytesIO()
            Image.fromarray(out).save(buf, "PNG", **save_options("PNG", like=im))
            return out.shape, ms, buf.getvalue(), route

        waiting["n"] += 1
        try:
            shape, ms, png, route = await asyncio.to_thread(work)
        except UnsupportedImageError as e:
            raise HTTPException(415, f"{e}; supported: PNG, JPEG, BMP, TIFF, WebP") from None
        except ImageError as e:  # a known format whose bytes are broken (truncated, corrupt)
            raise HTTPException(400, f"{e}; the file is damaged or incomplete") from None
        finally:
            waiting["n"] -= 1
        return JSONResponse({"width": int(shape[1]), "height": int(shape[0]), "ms": round(ms, 1),
                             "name": name, "rain": route, "image": "data:image/png;base64," + base64.b64encode(png).decode()})

    return app


def serve(derainer, host: str = "127.0.0.1", port: int = 7860, **kw):
    import signal
    import uvicorn
    # uvicorn handles SIGTERM: stop accepting, finish the requests in flight, then re-raise the
    # signal to the handler it found; a no-op one makes that a clean exit (status 0)
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(create_app(derainer, **kw), host=host, port=port, log_level="info", timeout_graceful_shutdown=30)
