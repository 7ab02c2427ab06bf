"""The sound of a derained video: the input's first audio stream goes into the output.

Its packets are copied as they are (no re-encoding: nothing is lost) when the output container
takes the codec. When it does not (say, mu-law PCM from a camera's .mov named .mp4), the sound is
decoded and re-encoded as AAC, or as the container's own default audio codec where it takes no
AAC, and one line on stderr says so. When neither can be written, or the audio turns out
unreadable partway through, the video is written without (the rest of) its sound, again with one
line on stderr: the sound never costs the video.

Sync: the derained frames are numbered from time 0 at the input's frame rate, so every audio
timestamp is moved by the time of the input's first video frame; sound that started 0.25 s after
the picture still does, and sound that started before it still does.
"""
from __future__ import annotations

import sys
from fractions import Fraction

COPY, ENCODE = "copy", "encode"


class AudioTrack:
    """Carries one input audio stream `ain` into an output container. Use: `modes()` lists the
    ways to try, best first; `add_to(out, mode)` before the output's header is written;
    `start(t0)` once the first video frame's time is known; `feed(packet)` for each demuxed
    audio packet; `finish()` at the end."""

    def __init__(self, ain, name: str):
        self.ain, self.name = ain, name
        self.mode = None
        self.aout = self.out = None
        # timestamps are moved in ticks of one sample (or finer): some containers count audio in
        # blocks (AVI: 2041 samples), too coarse to move by a video frame's time
        self.tb = min(_q(ain.time_base), Fraction(1, ain.codec_context.sample_rate or 48000))
        self.shift = None       # ticks of self.tb to subtract: the first video frame's time
        self.waiting = []       # packets demuxed before the first video frame was decoded
        self.notes = []         # what stderr will be told, once the output is open

    @staticmethod
    def modes() -> list[str]:
        return [COPY, ENCODE]

    def codec(self) -> str:
        return self.ain.codec_context.name

    def describe(self) -> str:
        cc = self.ain.codec_context
        return f"{cc.name}, {cc.sample_rate} Hz, {_named_layout(cc.layout)}"

    def add_to(self, out, mode: str):
        """Add the output audio stream for `mode` (raises where the container or encoder refuses)."""
        if mode == COPY:
            if self.codec() not in out.supported_codecs:
                raise ValueError(f"{out.format.name} does not take {self.codec()}")
            self.aout = out.add_stream_from_template(self.ain)
        else:
            cc = self.ain.codec_context
            name = "aac" if "aac" in out.supported_codecs else out.default_audio_codec
            self.aout = out.add_stream(name, rate=cc.sample_rate)
            self.aout.layout = _named_layout(cc.layout)
        self.out, self.mode = out, mode

    def refused(self, mode: str, error: Exception):
        """`mode` could not be set up on the output (the next one is tried)."""
        self.out = self.aout = self.mode = None
        if mode == ENCODE:  # the last way: what stderr is told if the video goes without sound
            self.notes = [f"{self.name}: audio ({self.describe()}) could be neither copied nor re-encoded "
                          f"({_first_line(error)}); the video is written without sound"]

    def opened(self):
        """The output's header is written: say how the sound went in, where not by copy."""
        if self.mode == ENCODE:
            self.notes = [f"{self.name}: audio ({self.codec()}) cannot be copied into the {self.out.format.name} "
                          f"container; re-encoded as {self.aout.codec_context.name}"]
        for note in self.notes:
            print(note, file=sys.stderr, flush=True)

    def start(self, t0: Fraction):
        """The first video frame of the input is at `t0` seconds: it is at 0 in the output."""
        if self.shift is None:
            self.shift = round(t0 / self.tb)
            waiting, self.waiting = self.waiting, []
            for packet in waiting:
                self.feed(packet)

    def feed(self, packet):
        if self.out is None:
            return
        if self.shift is None:
            self.waiting.append(packet)
            return
        try:
            if self.mode == COPY:
                if packet.size == 0:
                    return  # the demuxer's end-of-stream marker
                tb = _q(packet.time_base)
                packet.pts, packet.dts, packet.duration = (
                    self._moved(packet.pts, tb), self._moved(packet.dts, tb),
                    None if packet.duration is None else round(packet.duration * tb / self.tb))
                packet.time_base = self.tb
                packet.stream = self.aout
                self.out.mux(packet)
            else:
                for frame in packet.decode():  # an empty packet flushes the decoder
                    frame.pts, frame.time_base = self._moved(frame.pts, _q(frame.time_base)), self.tb
                    self.out.mux(self.aout.encode(frame))
        except Exception as e:  # noqa: BLE001  a broken audio packet must not cost the video
            self.stop(e)

    def _moved(self, ts, tb):
        """A timestamp in ticks of `tb` -> in ticks of self.tb, less the shift."""
        return None if ts is None else round(ts * tb / self.tb) - self.shift

    def finish(self):
        if self.out is None:
            return
        if self.shift is None:
            # no video frame was decoded: keep the audio's own times
            self.start(Fraction(0))
        try:
            if self.mode == ENCODE:
                self.out.mux(self.aout.encode(None))
        except Exception as e:  # noqa: BLE001
            self.stop(e)

    def stop(self, error: Exception):
        print(f"{self.name}: audio stopped partway ({_first_line(error)}); the rest of the video is written "
              f"without it", file=sys.stderr, flush=True)
        self.out = None


# FFmpeg's default layout for a channel count: some files (AVI, WAV) give only the count, which
# no encoder takes as a layout ("1 channels")
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def _named_layout(layout) -> str:
    if layout.name.endswith(" channels"):
        return DEFAULT_LAYOUTS.get(layout.nb_channels, layout.name)
    return layout.name


def _q(rational) -> Fraction:
    """A time base as a Fraction (PyAV 19 gives its own rational type)."""
    return Fraction(rational.numerator, rational.denominator)


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error).strip() else type(error).__name__
