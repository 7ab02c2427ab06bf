"""The command line end to end on small images: derain, eval, metrics, synth, errors."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fclip_derain.cli import main
from fclip_derain.models import save_model
from conftest import rand_image


@pytest.fixture
def ckpt(tiny_model, tmp_path):
    return str(save_model(tiny_model, tmp_path / "tiny.safetensors"))


@pytest.fixture
def images(tmp_path):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(rand_image(40, 56, 1)).save(d / "a.png")
    Image.fromarray(rand_image(33, 21, 2)).save(d / "b b.jpg", quality=95)
    Image.fromarray(rand_image(20, 20, 3)).save(d / "sub" / "c.webp")
    (d / "broken.png").write_bytes(b"nope")
    return d


def test_derain_folder_reports_failures_and_continues(ckpt, images, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["derain", str(images), "-o", str(out), "-c", ckpt, "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "broken.png" in err and "done: 2" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b b.jpg"]
    assert Image.open(out / "a.png").size == (56, 40)
    assert not list(out.glob(".*"))  # no temp files


def test_derain_recursive_compare_format_skip(ckpt, images, tmp_path, capsys):
    out = tmp_path / "out"
    files = [str(images / "a.png"), str(images / "sub")]
    assert main(["derain", *files, "-o", str(out), "-c", ckpt, "--compare", "--format", "png", "-q"]) == 0
    assert (out / "a_compare.png").is_file() and Image.open(out / "a_compare.png").size == (112, 40)
    assert (out / "c.png").is_file()
    before = (out / "a.png").stat().st_mtime_ns
    assert main(["derain", str(images / "a.png"), "-o", str(out), "-c", ckpt, "--skip-existing", "-q"]) == 0
    assert (out / "a.png").stat().st_mtime_ns == before and "skipped: 1" in capsys.readouterr().err
    assert main(["derain", str(images / "*.png"), "-o", str(tmp_path / "g"), "-c", ckpt, "-q"]) == 1  # glob; broken fails


@pytest.fixture
def trained_ckpt(trained_tiny_model, tmp_path):
    """A model whose output is not its input (tiny_model's zero head makes it the identity)."""
    return str(save_model(trained_tiny_model, tmp_path / "trained.safetensors"))


def test_batch_size_gives_the_same_files(trained_ckpt, tmp_path, capsys):
    """Batched and one-by-one deraining write the same files, with the mirrored ensemble and
    fp32; on a model that changes its input, so that a path dropping the model, --ensemble or
    --precision would write other pixels (checked: each flag changes them)."""
    src = tmp_path / "in"
    src.mkdir()
    for i, (h, w) in enumerate([(40, 56), (40, 56), (40, 56), (32, 48), (40, 56)]):
        Image.fromarray(rand_image(h, w, i)).save(src / f"{i}.png")
    (src / "2b.png").write_bytes(b"broken")  # a bad file inside a batch run fails alone
    flags = ["-c", trained_ckpt, "-q", "--ensemble", "2", "--precision", "fp32"]
    assert main(["derain", str(src), "-o", str(tmp_path / "one"), *flags]) == 1
    assert main(["derain", str(src), "-o", str(tmp_path / "four"), *flags, "-b", "4"]) == 1
    assert "done: 5" in capsys.readouterr().err
    read = lambda d, i: np.asarray(Image.open(tmp_path / d / f"{i}.png"))
    for i in range(5):
        assert np.array_equal(read("one", i), read("four", i))
    for name, other in [("no-ensemble", ["--ensemble", "1", "--precision", "fp32"]),
                        ("half", ["--ensemble", "2", "--precision", "half"])]:
        assert main(["derain", str(src / "0.png"), "-o", str(tmp_path / name), "-c", trained_ckpt, "-q", *other]) == 0
        assert not np.array_equal(read(name, 0), read("one", 0)), name
    assert not np.array_equal(read("one", 0), np.asarray(Image.open(src / "0.png")))


def test_derain_never_overwrites_inputs(ckpt, images, capsys):
    data = (images / "a.png").read_bytes()
    assert main(["derain", str(images / "a.png"), "-o", str(images), "-c", ckpt, "-q"]) == 1
    assert (images / "a.png").read_bytes() == data
    assert "overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("argv,match", [
    (["derain", "nope.png", "-o", "x"], "no such file"),
    (["derain", "{img}", "-c", "missing.safetensors", "-o", "{tmp}/o"], "checkpoint not found"),
    (["derain", "{img}", "--format", "gif", "-o", "{tmp}/o"], "--format"),
    (["train", "--config", "nope.yaml"], "config file not found"),
    (["eval", "{tmp}"], "no paired layout"),
])
def test_errors_are_one_line(argv, match, images, tmp_path, capsys, ckpt):
    argv = [a.format(img=images / "a.png", tmp=tmp_path) for a in argv]
    if "-c" not in argv and argv[0] in ("derain", "eval"):
        argv += ["-c", ckpt]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and match in err and "Traceback" not in err  # stopped: exit 2, as argparse's own


def test_bad_flag_values(capsys):
    with pytest.raises(SystemExit):
        main(["derain", "x.png", "--tile", "-5"])
    assert "positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["derain", "x.png", "--ensemble", "8"])
    assert "invalid choice" in capsys.readouterr().err
    for bad, says in [("10", "at least 64 pixels"), ("big", "size in pixels or `full`")]:
        with pytest.raises(SystemExit):
            main(["derain", "x.png", "--work-size", bad])
        assert says in capsys.readouterr().err


def _paired(tmp_path, n=3):
    root = tmp_path / "set"
    (root / "input").mkdir(parents=True)
    (root / "target").mkdir()
    for i in range(n):
        t = rand_image(48, 64, i)
        Image.fromarray(t).save(root / "target" / f"{i}.png")
        noisy = np.clip(t.astype(int) + np.random.default_rng(i).integers(-20, 20, t.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(root / "input" / f"{i}.png")
    return root


def test_eval_writes_table_json_csv(ckpt, tmp_path, capsys):
    root = _paired(tmp_path)
    js, cs, saved = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "saved"
    rc = main(["eval", f"A={root}", f"B={root}", "-c", ckpt, "--json", str(js), "--csv", str(cs),
               "--save-images", str(saved), "-q"])
    out = capsys.readouterr().out
    assert rc == 0 and "| A |" in out and "| Average |" in out
    rep = json.loads(js.read_text())
    assert [r["dataset"] for r in rep["sets"]] == ["A", "B", "Average"] and len(rep["per_image"]["A"]) == 3
    assert cs.read_text().startswith("dataset,images,failed,psnr,ssim")
    assert len(list((saved / "A").glob("*.png"))) == 3
    # the tiny model starts as the identity: eval must equal scoring the inputs directly
    assert main(["metrics", "--pred", str(root / "input"), "--target", str(root / "target"),
                 "--json", str(tmp_path / "m.json"), "-q"]) == 0
    m = json.loads((tmp_path / "m.json").read_text())["sets"][0]
    assert m["psnr"] == pytest.approx(rep["sets"][0]["psnr"], abs=1e-9)


def test_synth_cli(tmp_path, capsys):
    clean = tmp_path / "clean"
    clean.mkdir()
    for i in range(2):
        Image.fromarray(rand_image(40, 50, i)).save(clean / f"{i}.jpg")
    (clean / "bad.png").write_bytes(b"")
    out = tmp_path / "syn"
    rc = main(["synth", "--clean", str(clean), "-o", str(out), "--preset", "heavy", "--copies", "2", "--seed", "1", "-q"])
    assert rc == 1 and "bad.png" in capsys.readouterr().err
    assert len(list((out / "input").glob("*.png"))) == 4 and len(list((out / "target").glob("*.png"))) == 2
    meta = json.loads((out / "synth.json").read_text())
    assert meta["preset"] == "heavy" and meta["copies"] == 2
    first = (out / "input" / "0_0.png").read_bytes()
    main(["synth", "--clean", str(clean), "-o", str(tmp_path / "syn2"), "--preset", "heavy", "--copies", "2",
          "--seed", "1", "-q"])
    assert (tmp_path / "syn2" / "input" / "0_0.png").read_bytes() == first


def test_benchmark_writes_json_and_markdown(ckpt, tmp_path, capsys):
    js, md = tmp_path / "b.json", tmp_path / "b.md"
    assert main(["benchmark", "-c", ckpt, "--sizes", "64x48", "--repeats", "2", "--json", str(js),
                 "--markdown", str(md)]) == 0
    row = json.loads(js.read_text())["rows"][0]
    assert row["size"] == "64x48" and row["flops_total"] > row["flops_encoder"] > 0
    assert row["speedup_vs_plain"] > 0 and row["end_to_end_median_s"] > 0 and row["peak_mem_mb"] > 0
    assert "64x48" in md.read_text()
    assert row["warmup_runs_excluded"] >= 2 and "warm-up runs of each path excluded" in md.read_text()
    assert any("too few" in n for n in row["noise"]) and "NOISY" in md.read_text()  # 2 runs: flagged
    with pytest.raises(SystemExit) as e:  # parsed by argparse, before the checkpoint or torch
        main(["benchmark", "-c", ckpt, "--sizes", "64by48"])
    assert e.value.code == 2 and "--sizes" in capsys.readouterr().err


def test_benchmark_warm_up_runs_until_steady_and_flags_noise(monkeypatch):
    # `benchmark --repeats 3` reported a 2.2 s median against 0.37 s with --repeats 10: the slow
    # first runs were timed. A fake clock: each call costs the next of `costs` seconds.
    import fclip_derain.benchmark as b
    clock = [0.0]
    monkeypatch.setattr(b.time, "perf_counter", lambda: clock[0])
    costs = iter([3.0, 2.0, 1.0, 1.05] + [1.0] * 10)

    def fn():
        clock[0] += next(costs)
    assert b.warm_up({"model": fn}) == 4  # 3.0, 2.0, 1.0 differ; 1.05 agrees with 1.0
    assert b.time_interleaved({"model": fn}, 3)["model"] == pytest.approx([1.0, 1.0, 1.0])
    steady = {"spread": 0.05, "plain_spread": 0.1, "p10_s": 1.0, "end_to_end_median_s": 1.2}
    assert b.noise_reasons(steady, 10) == []
    assert "spread" in b.noise_reasons({**steady, "spread": 0.6}, 10)[0]
    assert "file to file faster" in b.noise_reasons({**steady, "end_to_end_median_s": 0.5}, 10)[0]


# ---------------------------------------------------------------- first-hour defects (issue 19)

def test_grey_stays_grey_and_16_bit_stays_16_bit(ckpt, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    grey = rand_image(30, 40, 5)[..., 0]
    Image.fromarray(grey).save(src / "grey.png")
    deep = (np.random.default_rng(0).random((30, 40)) * 65535).astype(np.uint16)
    Image.fromarray(deep).save(src / "deep.png")
    Image.fromarray(deep).save(src / "deep2.tif")
    out = tmp_path / "out"
    assert main(["derain", str(src), "-o", str(out), "-c", ckpt, "-q", "--compare"]) == 0
    g = Image.open(out / "grey.png")
    assert g.mode == "L" and np.array_equal(np.asarray(g), grey)  # the tiny model is the identity
    for name in ("deep.png", "deep2.tif"):
        d = Image.open(out / name)
        assert d.mode.startswith("I;16"), name
        # 16-bit precision kept: an 8-bit round trip would be off by up to 128 levels
        assert np.abs(np.asarray(d).astype(int) - deep).max() <= 1, name
    assert Image.open(out / "deep_compare.png").mode == "L"  # side by side for viewing: 8-bit


def test_unwritable_output_fails_before_any_work(ckpt, images, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for argv in (["derain", str(images), "-o", str(blocker / "sub"), "-c", ckpt],
                 ["eval", str(images), "--json", str(blocker / "r.json"), "-c", ckpt],
                 ["eval", str(images), "--csv", str(tmp_path), "-c", ckpt],
                 ["metrics", "--pred", str(images), "--target", str(images), "--json", str(blocker / "x.json")],
                 ["synth", "--clean", str(images), "-o", str(blocker / "s")],
                 ["export", "-c", ckpt, "--onnx", str(blocker / "m.onnx")]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and "done:" not in err[0], (argv, err)
    assert not (blocker.parent / "sub").exists()


@pytest.mark.parametrize("tile", ["7", "63"])
def test_tiles_below_the_minimum_are_refused(ckpt, images, tmp_path, capsys, tile):
    assert main(["derain", str(images / "a.png"), "-o", str(tmp_path / "o"), "-c", ckpt, "--tile", tile]) == 2
    assert "--tile" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bare_command_lists_the_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(c in out for c in ("derain", "eval", "train", "serve", "info"))


def test_help_describes_every_option(capsys):
    import re
    from fclip_derain.cli import build_parser
    sub = next(a for a in build_parser()._actions if a.dest == "cmd")
    for cmd, parser in sub.choices.items():
        undocumented = [a.dest for a in parser._actions if not a.help]
        assert undocumented == [], (cmd, undocumented)
    text = sub.choices["derain"].format_help()
    assert re.search(r"--tile-overlap[^-]*default:\s+32", text) and "ICC" in text and "alpha" in text


def test_info_names_the_default_model_and_cached_weights(capsys):
    import re
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "encoder efficientnet-lite0" in out or "encoder resnet50-imagenet" in out
    assert re.search(r"efficientnet-lite0 +here: yes", out)  # installed with the package
    assert re.search(r"precision auto on the cpu: (bf16|fp32)", out)


def test_two_inputs_never_write_one_output(ckpt, tmp_path, capsys):
    """a.gif becomes a.png: with a.png beside it, one output would silently replace the other."""
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(rand_image(20, 24, 1)).save(src / "a.png")
    Image.fromarray(rand_image(20, 24, 2)).convert("P").save(src / "a.gif")
    Image.fromarray(rand_image(20, 24, 3)).save(src / "b.jpg")
    Image.fromarray(rand_image(20, 24, 4)).save(src / "b.png")
    assert main(["derain", str(src), "-o", str(tmp_path / "out"), "-c", ckpt, "-q"]) == 1
    err = capsys.readouterr().err
    assert "done: 3, skipped: 0, failed: 1" in err and "would also be written for" in err
    assert main(["derain", str(src), "-o", str(tmp_path / "cmp"), "-c", ckpt, "-q", "--compare"]) == 1
    assert "done: 2, skipped: 0, failed: 2" in capsys.readouterr().err  # b.jpg, b.png share b_compare.png


def test_derain_dataset_python_api(ckpt, images, tmp_path):
    from fclip_derain import FclipError, derain_dataset
    r = derain_dataset([images], tmp_path / "out", recursive=True, checkpoint=ckpt, progress=False)
    assert (r.found, r.done, r.skipped, len(r.failed)) == (4, 3, 0, 1) and "broken.png" in r.failed[0]
    assert r.summary() == "done: 3, skipped: 0, failed: 1"
    assert (tmp_path / "out" / "sub" / "c.webp").is_file()
    r = derain_dataset([images], tmp_path / "out", recursive=True, checkpoint=ckpt, skip_existing=True, progress=False)
    assert (r.done, r.skipped) == (0, 3)
    with pytest.raises(FclipError, match="--engine spark: choose one of local, ray"):
        derain_dataset([images], tmp_path / "o2", engine="spark")


def test_export_prints_only_its_result(ckpt, tmp_path, capfd):
    # it printed 5 lines of TracerWarning / constant-folding warnings before its success line
    import warnings
    pytest.importorskip("onnxruntime")
    with warnings.catch_warnings(record=True) as caught:  # what a user's terminal would show:
        warnings.simplefilter("always")  # all but deprecations, hidden outside __main__ by Python's defaults
        warnings.simplefilter("ignore", DeprecationWarning)
        assert main(["export", "-c", ckpt, "--onnx", str(tmp_path / "m.onnx"), "--torchscript",
                     str(tmp_path / "m.pt"), "--threads", "1"]) == 0
    out, err = capfd.readouterr()
    assert not caught, [f"{w.category.__name__}: {w.message}" for w in caught]
    assert err == "" and out.count("wrote ") == 2, err
    # the I/O contract travels with each file (issue 48): range, channel order, layout, size multiple
    import onnxruntime as ort
    import torch
    meta = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).get_modelmeta()
    contract = meta.custom_metadata_map
    assert {k: contract.get(k) for k in ("value_range", "channels", "layout", "dtype", "size_multiple")} == {
        "value_range": "0,1", "channels": "RGB", "layout": "NCHW", "dtype": "float32", "size_multiple": "16"}
    assert "multiples of 16" in contract["input"] and contract["checkpoint"] == "tiny.safetensors"
    extra = {"io_contract.json": ""}
    torch.jit.load(str(tmp_path / "m.pt"), _extra_files=extra)
    assert json.loads(extra["io_contract.json"]) == contract


def test_failed_run_leaves_no_empty_output_folder(ckpt, tmp_path, capsys):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not a png")
    assert main(["derain", str(bad), "-o", str(tmp_path / "o1" / "deep"), "-c", ckpt, "-q"]) == 1
    assert not (tmp_path / "o1").exists()  # nothing written: no folder made
    (tmp_path / "mine").mkdir()  # a folder the user made stays, even when nothing is written into it
    assert main(["derain", str(bad), "-o", str(tmp_path / "mine"), "-c", ckpt, "-q"]) == 1
    assert (tmp_path / "mine").is_dir()
    good = tmp_path / "g.png"
    Image.fromarray(rand_image(20, 24)).save(good)
    assert main(["derain", str(bad), str(good), "-o", str(tmp_path / "o2"), "-c", ckpt, "-q"]) == 1
    assert (tmp_path / "o2" / "g.png").is_file()


COMPUTING = ["derain", "eval", "metrics", "train", "synth", "serve", "export", "benchmark"]


@pytest.mark.parametrize("cmd", COMPUTING)
def test_every_computing_command_takes_threads(cmd):
    from fclip_derain.cli import build_parser
    p = build_parser()
    sub = next(a for a in p._actions if a.dest == "cmd").choices[cmd]
    assert any("--threads" in a.option_strings for a in sub._actions), cmd
    assert "--threads" in sub.format_help()


def test_threads_flag_sets_torch_threads_and_checks_its_value(ckpt, tmp_path, capsys):
    import torch
    before = torch.get_num_threads()
    try:
        Image.fromarray(rand_image(20, 24)).save(tmp_path / "a.png")
        assert main(["derain", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-c", ckpt, "-q",
                     "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit):
        main(["derain", str(tmp_path / "a.png"), "--threads", "0"])
    assert "positive integer" in capsys.readouterr().err


def test_auto_threads_leaves_busy_cores_alone(monkeypatch):
    # with another program busy on one of two cores, two threads ran 4-6x slower than one
    import fclip_derain.devices as dv
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(dv, "usable_cores", lambda: 4)
    monkeypatch.setattr(dv.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(dv, "busy_cores", lambda: 0.1)
    assert dv.auto_threads() == 4
    monkeypatch.setattr(dv, "busy_cores", lambda: 1.8)
    assert dv.auto_threads() == 2
    monkeypatch.setattr(dv, "busy_cores", lambda: 7.0)
    assert dv.auto_threads() == 1  # never fewer than one
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's explicit choice wins
    assert dv.auto_threads() == 3


def test_busy_cores_sees_a_spinning_process():
    import subprocess
    import sys
    from fclip_derain.devices import busy_cores
    if not Path("/proc/stat").exists():
        pytest.skip("Linux only")
    base = busy_cores(0.3)
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time
        time.sleep(0.3)
        loaded = busy_cores(0.3)
    finally:
        spin.kill()
        spin.wait()
    # this machine may be busy already; the spinner adds up to one core (less if it must share)
    assert loaded >= min(base + 0.5, 0.5 * __import__("os").cpu_count()), (base, loaded)


@pytest.mark.parametrize("env,expected", [({}, "PASSIVE"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"),
                                          ({"GOMP_SPINCOUNT": "300000"}, None)])
def test_command_line_sets_openmp_passive_wait_before_torch_loads(env, expected):
    # spinning OpenMP threads made `derain` 3-6x slower beside another busy program
    import os
    import subprocess
    import sys
    code = ("import os, sys; from fclip_derain import cli; loaded = 'torch' in sys.modules; "
            "cli.passive_openmp(); print(loaded, os.environ.get('OMP_WAIT_POLICY'))")
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", str(expected)]  # torch not loaded by the command line's import, policy as expected


# ---------------------------------------------------------------- issue 48, item 8: first-hour rough edges

_ARG_ERRORS = [  # (argv, what the one error line must say); {t}: a temporary folder
    (["derain", "{t}/nope.png", "-o", "{t}/o"], "nope.png: no such file or folder"),
    (["derain", "{t}/empty", "-o", "{t}/o"], "no images or videos found (looked for .bmp, .gif"),
    (["derain", "{t}/deep", "-o", "{t}/o"], "--recursive looks into them"),
    (["derain", "{t}/*.tif", "-o", "{t}/o"], "no file matches"),
    (["derain", "{t}/good.png", "-o", "{t}/afile"], "-o {t}/afile: exists and is not a folder"),
    (["derain", "{t}/good.png", "-o", "{t}/o", "-c", "{t}/missing.safetensors"], "checkpoint not found"),
    (["derain", "{t}/empty", "--sequence", "-o", "{t}/o"], "no images found (looked for .bmp"),
    (["derain", "{t}/good.png", "--sequence", "-o", "{t}/o"], "--sequence takes folders of frames"),
    (["eval", "{t}/nope"], "dataset folder not found"),
    (["eval", "{t}/set", "--json", "{t}/afile/r.json"], "--json"),
    (["eval", "{t}/set", "-c", "{t}/missing.safetensors"], "checkpoint not found"),
    (["eval", "{t}/noinputs"], "no images found (looked for .bmp"),
    (["metrics", "--pred", "{t}/nope", "--target", "{t}/set/target"], "--pred {t}/nope: no such folder"),
    (["metrics", "--pred", "{t}/empty", "--target", "{t}/set/target"], "no images found (looked for"),
    (["serve", "--port", "{port}"], "cannot listen there"),
    (["serve", "-c", "{t}/missing.safetensors"], "checkpoint not found"),
    (["export", "--onnx", "{t}/afile/m.onnx"], "--onnx"),
    (["export"], "give --onnx FILE and/or --torchscript FILE"),
    (["benchmark", "--markdown", "{t}/afile/b.md"], "--markdown"),
    (["benchmark", "-c", "{t}/missing.safetensors"], "checkpoint not found"),
    (["synth", "--clean", "{t}/empty", "-o", "{t}/s"], "no images found (looked for .bmp"),
]


def test_argument_errors_exit_2_before_torch_loads(tmp_path):
    """Argument errors took ~4.5 s because torch and the model loaded first, and exited 1 or 2 by no
    rule: each is now one `error:` line, exit 2, from a process that never imported torch."""
    import socket
    import subprocess
    import sys
    t = tmp_path
    Image.fromarray(rand_image(20, 24)).save(t / "good.png")
    (t / "afile").write_text("x")
    (t / "empty").mkdir()
    (t / "deep" / "sub").mkdir(parents=True)
    Image.fromarray(rand_image(20, 24)).save(t / "deep" / "sub" / "a.png")
    (t / "noinputs" / "input").mkdir(parents=True)
    (t / "noinputs" / "target").mkdir()
    _paired(t)  # t/set: input/ + target/
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cases = [([a.format(t=t, port=busy.getsockname()[1]) for a in argv], says.format(t=t))
                 for argv, says in _ARG_ERRORS]
        code = ("import contextlib, io, json, sys\nfrom fclip_derain.cli import main\nout = []\n"
                "for argv in json.loads(sys.argv[1]):\n    err = io.StringIO()\n"
                "    with contextlib.redirect_stderr(err):\n        rc = main(argv)\n"
                "    out.append([rc, err.getvalue(), 'torch' in sys.modules])\nprint(json.dumps(out))")
        p = subprocess.run([sys.executable, "-c", code, json.dumps([a for a, _ in cases])],
                           capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    for (argv, says), (rc, err, torch_loaded) in zip(cases, json.loads(p.stdout)):
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], (argv, rc, err)
        assert not torch_loaded, argv
    assert not (t / "o").exists() and not (t / "s").exists()  # refused before any folder was made


def test_exit_status_rule_is_in_help_and_docs(capsys):
    from fclip_derain.cli import EXIT_STATUS, build_parser
    text = build_parser().format_help()
    assert EXIT_STATUS in text  # verbatim: its lines are not rewrapped
    codes = [line.split()[0] for line in EXIT_STATUS.splitlines()[1:] if line[:4].strip().isdigit()]
    assert codes == ["0", "1", "2", "130"]
    doc = (Path(__file__).resolve().parents[1] / "docs" / "reliability.md").read_text()
    section = next(part for part in doc.split("\n## ") if part.split("\n", 1)[0].find("Exit status") >= 0)
    assert all(f"| {c} |" in section for c in codes), section


def test_model_that_fails_to_load_leaves_no_output_folder(tmp_path, capsys):
    Image.fromarray(rand_image(20, 24)).save(tmp_path / "a.png")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    assert main(["derain", str(tmp_path / "a.png"), "-o", str(tmp_path / "new" / "out"), "-c", str(bad), "-q"]) == 2
    assert "not a valid safetensors checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_sequence_checks_every_clip_before_the_model_loads(ckpt, tmp_path, monkeypatch, capsys):
    """A second clip of mixed frame sizes was found only after the first clip was derained."""
    from fclip_derain.inference import jobs, sequence
    events = []
    sizes, build = sequence._frame_sizes, jobs.ModelSpec.build
    monkeypatch.setattr(sequence, "_frame_sizes", lambda frames: events.append("check") or sizes(frames))
    monkeypatch.setattr(jobs.ModelSpec, "build", lambda self: events.append("model") or build(self))
    for clip, sides in (("a", [(32, 48)] * 2), ("b", [(32, 48), (30, 48)])):
        (tmp_path / clip).mkdir()
        for i, (h, w) in enumerate(sides):
            Image.fromarray(rand_image(h, w, i)).save(tmp_path / clip / f"f{i}.png")
    assert main(["derain", str(tmp_path / "a"), str(tmp_path / "b"), "--sequence", "-o", str(tmp_path / "out"),
                 "-c", ckpt, "-q", "--precision", "fp32"]) == 1
    assert "done: 2, skipped: 0, failed: 1" in capsys.readouterr().err
    assert events == ["check", "check", "model"]


def test_help_shows_defaults(capsys):
    import argparse
    from fclip_derain.cli import PRESET_HELP, build_parser
    from fclip_derain.data.synth import PRESET_NAMES
    sub = next(a for a in build_parser()._actions if a.dest == "cmd").choices
    # every option with a value of its own says what it is when left out
    for cmd, parser in sub.items():
        for a in parser._actions:
            if (a.option_strings and a.default not in (None, False, "", [], argparse.SUPPRESS) and a.nargs != 0):
                assert "default" in a.help, (cmd, a.dest)
    assert sub["benchmark"].get_default("device") == "auto" == sub["derain"].get_default("device")
    text = " ".join(sub["serve"].format_help().split())
    assert "limit in MB (default: 20)" in text and "(default: 24)" in text
    assert "(default: 480x320,1920x1080)" in " ".join(sub["benchmark"].format_help().split())
    synth = sub["synth"].format_help()
    assert list(PRESET_HELP) == list(PRESET_NAMES)
    for name in PRESET_NAMES:  # one line each, under the options
        assert any(line.split()[:1] == [name] and len(line.split()) > 3 for line in synth.splitlines()), name


def test_derain_says_how_many_threads_it_chose(ckpt, tmp_path, capsys, monkeypatch):
    import torch
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    Image.fromarray(rand_image(20, 24)).save(tmp_path / "a.png")
    try:
        assert main(["derain", str(tmp_path / "a.png"), "-o", str(tmp_path / "o1"), "-c", ckpt]) == 0
        err = capsys.readouterr().err
        said = [line for line in err.splitlines() if line.startswith("threads: ")]
        assert said == [f"threads: {torch.get_num_threads()} (automatic: the cores no other program is busy on; "
                        "--threads N to choose)"], err
        for flags in (["-q"], ["--threads", "1"]):  # quiet, or the user chose: nothing to say
            assert main(["derain", str(tmp_path / "a.png"), "-o", str(tmp_path / "o2"), "-c", ckpt, *flags]) == 0
            assert "threads:" not in capsys.readouterr().err, flags
    finally:
        torch.set_num_threads(before)


def test_a_missing_input_beside_others_fails_alone(ckpt, tmp_path, capsys):
    """A typo in one of several inputs is reported; the others are still derained (exit 1)."""
    Image.fromarray(rand_image(20, 24, 1)).save(tmp_path / "good.png")
    rc = main(["derain", str(tmp_path / "good.png"), str(tmp_path / "nope.png"), "-o", str(tmp_path / "o"),
               "-c", str(ckpt), "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and (tmp_path / "o" / "good.png").is_file()
    assert "done: 1" in err and "nope.png: no such file or folder" in err
