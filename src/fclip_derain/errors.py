"""The project's own error type: everything a user can cause ends in one of these.

The CLI catches `FclipError` and prints its message on one line (no stack trace); anything
else reaching the top is a bug in this package.
"""


class FclipError(Exception):
    """A user-facing error: bad input, missing weights, invalid config."""


class ImageError(FclipError):
    """An image file that cannot be read or written; the message names the file."""


class UnsupportedImageError(ImageError):
    """A file that is not an image in a format this package reads (as opposed to a broken one)."""


class ConfigError(FclipError):
    """An invalid configuration key or value; the message names the key."""


class WeightsError(FclipError):
    """Missing, corrupt, tampered or mismatched weights/checkpoints."""


class MetricError(FclipError, ValueError):
    """An image a metric cannot score (too small, wrong type, sizes differ)."""
