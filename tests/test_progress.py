"""Progress output: a bar on a terminal, plain lines in logs."""
import io

from fclip_derain.progress import LogProgress, progress_bar


def test_not_a_terminal_gives_whole_lines():
    buf = io.StringIO()
    for _ in progress_bar(range(5), desc="derain", unit="img", file=buf, interval=0):
        pass
    text = buf.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.strip().splitlines()
    assert lines[-1].startswith("derain: 5/5 (100%)") and len(lines) == 5  # one per update, the last not twice


def test_quiet_prints_nothing_and_long_jobs_print_periodically():
    buf = io.StringIO()
    bar = progress_bar(total=100, desc="train", file=buf, enabled=False)
    bar.update(100)
    bar.close()
    assert buf.getvalue() == ""
    bar = LogProgress(total=1000, desc="train", file=buf, interval=3600)
    for _ in range(1000):
        bar.update()
    bar.set_postfix(loss="0.01")
    assert buf.getvalue() == ""  # within the interval: silent
    bar.close()
    assert buf.getvalue().count("\n") == 1 and "loss=0.01" in buf.getvalue()


def test_last_line_is_not_printed_twice():
    # `train` printed "20/20 (100%)" twice (with different learning rates), video its last frame twice
    buf = io.StringIO()
    bar = LogProgress(total=20, desc="train", file=buf, interval=0)
    for i in range(20):
        bar.update(1)
        bar.set_postfix(lr=f"{i:.2e}")
    bar.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 20 and sum("20/20 (100%)" in ln for ln in lines) == 1


def test_rate_keeps_one_unit_through_a_run(monkeypatch):
    # video progress switched from "1.05 frame/s" to "1.02 s/frame" mid-run
    import fclip_derain.progress as progress
    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    buf = io.StringIO()
    bar = LogProgress(total=10, desc="clip.mp4", unit="frame", file=buf, interval=0)
    for dt in (0.95, 0.95, 1.2, 1.2, 1.2, 1.2):  # the rate falls below 1 frame/s after two frames
        clock[0] += dt
        bar.update(1)
    bar.close()
    lines = buf.getvalue().splitlines()
    assert all("frame/s" in ln for ln in lines) and not any("s/frame" in ln for ln in lines), lines


def test_a_single_large_image_shows_progress_through_its_tiles(tiny_model, tmp_path, capsys, monkeypatch):
    # `derain big.jpg --work-size full` printed nothing for 35 s
    import numpy as np
    from PIL import Image

    import fclip_derain.inference.files as files
    from fclip_derain.inference import Derainer
    monkeypatch.setattr(files, "LARGE_PIXELS", 10_000)  # a small image stands in for a large one
    img = np.random.default_rng(0).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "big.png")
    d = Derainer(model=tiny_model, device="cpu", tile=64, tile_overlap=8, work_size=None, ensemble=2)
    pixels, passes = files.model_passes(d, 1, 150, 200)
    assert passes == 3 * 4 * 2  # 3 x 4 tiles, 2 mirrored copies
    done, failed = files.derain_files(d, [(tmp_path / "big.png", tmp_path / "out.png")], progress=True)
    assert (done, failed) == (1, [])
    lines = capsys.readouterr().err.splitlines()
    last = [ln for ln in lines if ln.startswith("big.png (200x150)")][-1]
    n, total = last.split(": ")[1].split(" ")[0].split("/")
    assert n == total and int(total) % passes == 0  # every pass counted, the estimate exact
    small = tmp_path / "small.png"
    Image.fromarray(img[:20, :20]).save(small)
    files.derain_files(d, [(small, tmp_path / "s.png")], progress=True)
    assert "small.png" not in capsys.readouterr().err  # quick images stay quiet
