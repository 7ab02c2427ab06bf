"""CLIP ResNet loader: exact agreement with OpenAI's reference, every file format, clear errors."""
import functools
import hashlib
import http.server
import threading

import pytest
import torch

from fclip_derain.errors import WeightsError
from fclip_derain.models.clip_resnet import (build_from_state_dict, load_clip_resnet, resolve_clip_weights)
from fclip_derain.weights import download

SMALL = dict(layers=(1, 2, 1, 1), output_dim=64, heads=8, input_resolution=64, width=16)


def _ref(mod, **kw):
    torch.manual_seed(1)
    m = mod.ModifiedResNet(**kw).eval()
    # random BN statistics, so a wrong eps / order would show
    for bn in m.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.data.uniform_(0.5, 1.5)
    return m


def _ref_features(ref, x):
    x = x.type(ref.conv1.weight.dtype)
    x = ref.relu1(ref.bn1(ref.conv1(x)))
    x = ref.relu2(ref.bn2(ref.conv2(x)))
    stem = ref.relu3(ref.bn3(ref.conv3(x)))
    out, y = [stem], ref.avgpool(stem)
    for layer in (ref.layer1, ref.layer2, ref.layer3, ref.layer4):
        y = layer(y)
        out.append(y)
    return out


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def test_rn50_matches_openai_reference(openai_clip_model):
    ref = _ref(openai_clip_model, layers=(3, 4, 6, 3), output_dim=1024, heads=32, input_resolution=224, width=64)
    ours = build_from_state_dict(ref.state_dict()).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert _rel(ours(x), ref(x)) < 1e-4
        for a, b in zip(ours.features(x), _ref_features(ref, x)):
            assert a.shape == b.shape
            assert _rel(a, b) < 1e-4


def test_features_any_size_divisible_by_32(openai_clip_model):
    ours = build_from_state_dict(_ref(openai_clip_model, **SMALL).state_dict())
    with torch.no_grad():
        feats = ours.features(torch.randn(1, 3, 96, 160))
        assert [f.shape[-2:] for f in feats] == [(48, 80), (24, 40), (12, 20), (6, 10), (3, 5)]
        assert ours(torch.randn(1, 3, 96, 160)).shape == (1, 64)  # positions resampled
        assert ours.features(torch.randn(1, 3, 96, 160), depth=4)[-1].shape[1] == 16 * 16


def _save_torchscript(ref, path):
    class Wrap(torch.nn.Module):  # OpenAI's archives hold the whole CLIP; `visual.*` is what we read
        def __init__(self):
            super().__init__()
            self.visual = ref
            self.logit_scale = torch.nn.Parameter(torch.ones([]))

        def forward(self, x):
            return x * self.logit_scale

    # tracing keeps every parameter of the module tree, as OpenAI's archives do
    torch.jit.save(torch.jit.trace(Wrap().half(), torch.ones(1, dtype=torch.half)), str(path))


@pytest.mark.parametrize("fmt", ["torchscript-fp16", "visual-prefix-fp16", "plain-fp32", "open_clip-module"])
def test_load_formats(tmp_path, openai_clip_model, fmt):
    ref = _ref(openai_clip_model, **SMALL)
    sd = ref.state_dict()
    path = tmp_path / "w.pt"
    if fmt == "torchscript-fp16":
        _save_torchscript(ref, path)
    elif fmt == "visual-prefix-fp16":
        torch.save({f"visual.{k}": v.half() for k, v in sd.items()} | {"text_projection": torch.zeros(4, 4)}, path)
    elif fmt == "plain-fp32":
        torch.save(sd, path)
    else:
        torch.save({"epoch": 3, "state_dict": {f"module.visual.{k}": v for k, v in sd.items()}}, path)
    ours = load_clip_resnet(path)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expect = ref.float()(x) if "fp16" not in fmt else type(ref)(**SMALL).float().eval()
        if "fp16" in fmt:  # compare with the reference holding the same fp16-rounded weights
            expect.load_state_dict({k: v.half().float() for k, v in sd.items()})
            expect = expect(x)
        assert _rel(ours(x), expect) < 1e-4
    assert all(p.dtype == torch.float32 for p in ours.parameters())


@pytest.mark.parametrize("arch", ["RN101", "RN50x4"])
def test_reads_architecture_off_state_dict(openai_clip_model, arch):
    from fclip_derain.models.encoders import CLIP_ARCHS
    cfg = dict(CLIP_ARCHS[arch])
    ref = openai_clip_model.ModifiedResNet(**cfg)
    ours = build_from_state_dict(ref.state_dict())
    assert ours.layers_cfg == cfg["layers"] and ours.width == cfg["width"]
    assert ours.input_resolution == cfg["input_resolution"] and ours.attnpool.num_heads == cfg["heads"]


def test_mismatched_checkpoint_names_first_bad_key(openai_clip_model):
    sd = _ref(openai_clip_model, **SMALL).state_dict()
    missing = {k: v for k, v in sd.items() if k != "layer2.0.conv2.weight"}
    with pytest.raises(WeightsError, match="layer2.0.conv2.weight"):
        build_from_state_dict(missing)
    bad = dict(sd)
    bad["layer1.0.bn1.weight"] = torch.zeros(3)
    with pytest.raises(WeightsError, match="layer1.0.bn1.weight"):
        build_from_state_dict(bad)
    with pytest.raises(WeightsError, match="extra.thing"):
        build_from_state_dict({**sd, "extra.thing": torch.zeros(1)})
    with pytest.raises(WeightsError, match="not a CLIP ResNet"):
        build_from_state_dict({"conv.weight": torch.zeros(1)})


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "junk.pt"
    p.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="junk.pt"):
        load_clip_resnet(p)


@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_download_verifies_sha256_and_is_atomic(http_dir, tmp_path):
    root, url = http_dir
    payload = bytes(range(256)) * 1000
    (root / "RN50.pt").write_bytes(payload)
    good = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "cache" / "RN50.pt"
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        download(f"{url}/RN50.pt", dest, sha256="0" * 64, progress=False)
    assert not dest.exists() and not list(dest.parent.glob("*"))  # nothing half-written left
    download(f"{url}/RN50.pt", dest, sha256=good, progress=False)
    assert dest.read_bytes() == payload
    with pytest.raises(WeightsError, match="could not download"):
        download(f"{url}/missing.pt", tmp_path / "cache" / "x.pt", progress=False)


def test_load_by_name_from_cache_and_download(http_dir, tmp_path, monkeypatch, openai_clip_model):
    from fclip_derain.models import clip_resnet
    root, url = http_dir
    ref = _ref(openai_clip_model, **SMALL)
    _save_torchscript(ref, root / "RN50.pt")
    digest = hashlib.sha256((root / "RN50.pt").read_bytes()).hexdigest()
    monkeypatch.setenv("FCLIP_DERAIN_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(clip_resnet.CLIP_URLS, "RN50", f"{url}/{digest}/RN50.pt")
    (root / digest).mkdir()
    (root / digest / "RN50.pt").write_bytes((root / "RN50.pt").read_bytes())
    m = load_clip_resnet("RN50")  # downloads, verifies, caches
    assert (tmp_path / "home" / "clip" / "RN50.pt").is_file()
    assert m.width == 16
    (root / digest / "RN50.pt").unlink()  # served no more: the cache answers
    assert resolve_clip_weights("RN50") == tmp_path / "home" / "clip" / "RN50.pt"


def test_offline_message_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FCLIP_DERAIN_HOME", str(tmp_path))
    monkeypatch.setenv("FCLIP_DERAIN_OFFLINE", "1")
    with pytest.raises(WeightsError, match=str(tmp_path / "clip" / "RN101.pt")):
        load_clip_resnet("RN101")
    with pytest.raises(WeightsError, match="neither a file nor"):
        load_clip_resnet("RN77")
