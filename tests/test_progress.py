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
    assert lines[-1].startswith("derain: 5/5 (100%)") and len(lines) == 6  # one per update, one at the end


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
