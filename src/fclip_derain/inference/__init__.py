# Loaded on first use, as in the package's own __init__: `inference.jobs` checks a job's
# arguments before torch loads, and importing it must not import Derainer (and torch) first.
_LAZY = {"Derainer": ".derainer", "tiled_forward": ".tiling"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Derainer", "tiled_forward"]
