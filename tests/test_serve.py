"""Web page + JSON API: good and bad uploads, limits, concurrency, and a real headless browser."""
import base64
import io
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import rand_image

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from fclip_derain.inference import Derainer  # noqa: E402
from fclip_derain.serve import create_app  # noqa: E402


@pytest.fixture
def app(tiny_model):
    return create_app(Derainer(model=tiny_model, device="cpu"), max_bytes=200_000, max_pixels=300_000)


def _png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _decode(j):
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(j["image"].split(",", 1)[1]))))


def test_derain_endpoint(app):
    c = TestClient(app)
    assert c.get("/api/health").json()["status"] == "ok"
    img = rand_image(40, 60)
    r = c.post("/api/derain", files={"file": ("../../etc/passwd.png", _png(img), "image/png")})
    assert r.status_code == 200
    j = r.json()
    assert (j["width"], j["height"]) == (60, 40) and j["name"] == "passwd.png"  # no path kept
    assert np.array_equal(_decode(j), img)  # the untrained tiny model is the identity
    assert "Drop a rainy image" in c.get("/").text


def test_answer_keeps_what_the_cli_keeps(app):
    """16-bit grey came back as 8-bit RGB while `derain` keeps it 16-bit grey (issue 48)."""
    from PIL import ImageCms
    c = TestClient(app)
    deep = (np.random.default_rng(0).random((30, 40)) * 65535).astype(np.uint16)
    grey = rand_image(30, 40, 1)[..., 0]
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for arr, mode, kw in ((deep, "I;16", {}), (grey, "L", {}), (rand_image(30, 40, 2), "RGB", {"icc_profile": icc})):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "PNG", **kw)
        r = c.post("/api/derain", files={"file": ("x.png", buf.getvalue(), "image/png")})
        assert r.status_code == 200, r.text
        j = r.json()
        out = Image.open(io.BytesIO(base64.b64decode(j["image"].split(",", 1)[1])))
        assert out.mode == mode and (j["width"], j["height"]) == (40, 30)
        # the tiny model is the identity: 16 bits of precision kept (an 8-bit trip is off by up to 128)
        assert np.abs(np.asarray(out).astype(int) - arr).max() <= 1
        assert out.info.get("icc_profile") == kw.get("icc_profile")


@pytest.mark.parametrize("payload,code,match", [
    (b"random bytes, not an image", 415, "cannot read image"),
    (b"", 400, "empty"),  # the type is fine, the file is broken: 400, not 415
    (_png(rand_image(64, 64))[:300], 400, "damaged or incomplete"),  # truncated PNG
    (b"x" * 300_000, 413, "too large"),
])
def test_bad_uploads(app, payload, code, match):
    r = TestClient(app).post("/api/derain", files={"file": ("x.png", payload, "image/png")})
    detail = r.json()["detail"]
    assert r.status_code == code and isinstance(detail, str) and match in detail, (r.status_code, detail)
    assert " object at 0x" not in detail  # words, not a Python repr
    assert code == 415 or "supported:" not in detail  # a broken PNG is not told that PNG is supported


@pytest.mark.parametrize("kw", [{}, {"data": {"image": "x"}}, {"data": {"file": "not a file"}},
                                {"files": {"image": ("x.png", b"abc", "image/png")}}])
def test_request_without_the_file_field_gets_one_sentence(app, kw):
    # FastAPI answered these with its raw 422 validation JSON
    r = TestClient(app).post("/api/derain", **kw)
    assert r.status_code == 400 and isinstance(r.json()["detail"], str) and "`file`" in r.json()["detail"]


def test_favicon(app):
    r = TestClient(app).get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in r.text


def test_too_many_pixels(app):
    big = _png(np.zeros((600, 600, 3), np.uint8))  # small file, 0.36 MP > limit
    r = TestClient(app).post("/api/derain", files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 413 and "MP" in r.json()["detail"]


def test_concurrent_requests_get_their_own_answers(app):
    imgs = [rand_image(16 + i % 5, 24, i) for i in range(40)]
    results = [None] * len(imgs)

    def go(i):
        r = c.post("/api/derain", files={"file": (f"{i}.png", _png(imgs[i]), "image/png")})
        results[i] = (r.status_code, _decode(r.json()) if r.status_code == 200 else None)

    with TestClient(app) as c:
        threads = [threading.Thread(target=go, args=(i,)) for i in range(len(imgs))]
        [t.start() for t in threads]
        [t.join(timeout=120) for t in threads]
    assert all(code == 200 and np.array_equal(out, imgs[i]) for i, (code, out) in enumerate(results))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_browser_end_to_end(app, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    pw = pytest.importorskip("playwright.sync_api")
    if not chromium:
        pytest.skip("Debian chromium not installed")
    import uvicorn
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.05)
    img_path = tmp_path / "rainy photo.png"
    img_path.write_bytes(_png(rand_image(48, 64)))
    bad_path = tmp_path / "bad.png"
    bad_path.write_bytes(b"nope")
    try:
        with pw.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.set_input_files("#file", str(img_path))
            page.wait_for_selector("#download", state="visible", timeout=30000)
            assert "Done in" in page.inner_text("#status")
            src = page.get_attribute("#after", "src")
            assert src.startswith("data:image/png;base64,")
            page.fill("#slider", "20")
            assert page.eval_on_selector("#beforewrap", "e => e.style.width") == "20%"
            # as --compare: the input is the left part, and the slider spans the image's width
            assert page.get_attribute("#before", "alt") == "rainy input"
            assert "rainy input" in page.inner_text("#labels").split("derained")[0]
            img_w = page.eval_on_selector("#after", "e => e.clientWidth")
            assert page.eval_on_selector("#slider", "e => e.clientWidth") == img_w
            assert "curl -F file=@" in page.inner_text("footer")
            page.set_input_files("#file", str(bad_path))
            page.wait_for_function("document.getElementById('status').className === 'error'", timeout=30000)
            assert "bad.png" in page.inner_text("#status")
            browser.close()
    finally:
        server.should_exit = True
        th.join(timeout=10)


def _start_server(tmp_path, tiny_model, *extra):
    import subprocess
    import sys
    import httpx
    from fclip_derain.models import save_model
    ckpt = save_model(tiny_model, tmp_path / "tiny.safetensors")
    port = _free_port()
    # the log goes to a file: an unread pipe fills up (one line per request) and stalls the server
    log = open(tmp_path / "server.log", "wb")
    p = subprocess.Popen([sys.executable, "-m", "fclip_derain", "serve", "--checkpoint", str(ckpt), "--device", "cpu",
                          "--port", str(port), *extra], stdout=log, stderr=subprocess.STDOUT)
    p.log = tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url + "/api/health").status_code == 200:
                return p, url
        except httpx.HTTPError:
            time.sleep(0.2)
    p.kill()
    raise AssertionError(p.log.read_text())


def _vm_kb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc (Linux)")
def test_200_concurrent_requests_on_a_real_server(tmp_path, tiny_model):
    """A load generator on 127.0.0.1: 200 requests at once against `fclip-derain serve` with a
    queue of 64. Every request gets its own image back or a 503 'busy' (then retries); no crash,
    no mixed-up responses, and the server's peak memory stays bounded."""
    import asyncio
    import signal
    import httpx
    p, url = _start_server(tmp_path, tiny_model, "--max-queue", "64")
    imgs = [rand_image(24 + i % 7, 32 + i % 5, i) for i in range(200)]
    rss_before = _vm_kb(p.pid, "VmRSS")

    async def one(client, i):
        busy = 0
        while True:
            r = await client.post(url + "/api/derain", files={"file": (f"{i}.png", _png(imgs[i]), "image/png")})
            if r.status_code != 503:
                return r.status_code, busy, (_decode(r.json()) if r.status_code == 200 else None)
            assert "busy" in r.json()["detail"]
            busy += 1
            await asyncio.sleep(0.05)

    async def load():
        # fresh connections: reusing a keep-alive one the server is closing (idle 5 s) races in any client
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:
            return await asyncio.gather(*(one(client, i) for i in range(200)))

    try:
        results = asyncio.run(load())
        assert all(code == 200 and np.array_equal(out, imgs[i]) for i, (code, _, out) in enumerate(results))
        assert sum(b > 0 for _, b, _ in results) > 0  # the queue limit did bite
        peak_growth_mb = (_vm_kb(p.pid, "VmHWM") - rss_before) / 1024
        print(f"server peak RSS growth under load: {peak_growth_mb:.0f} MB")
        assert peak_growth_mb < 400, peak_growth_mb
        # an oversized body (1 GB announced) is refused from its header, before any body byte arrives
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(b"POST /api/derain HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                      b"Content-Length: 1000000000\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):  # the server answers and closes
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 413") and b"too large" in reply
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    assert p.returncode == 0 and "Traceback" not in p.log.read_text()


def test_sigterm_finishes_requests_in_flight(tmp_path, tiny_model):
    import signal
    import httpx
    p, url = _start_server(tmp_path, tiny_model)
    big = _png(rand_image(900, 1200, 1))  # takes a moment to derain
    result = {}

    def go():
        result["r"] = httpx.post(url + "/api/derain", files={"file": ("big.png", big, "image/png")}, timeout=120)

    th = threading.Thread(target=go)
    th.start()
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    th.join(timeout=120)
    p.wait(timeout=60)
    out = p.log.read_text()
    assert result["r"].status_code == 200 and result["r"].json()["width"] == 1200
    assert p.returncode == 0 and "Shutting down" in out and "Traceback" not in out
