"""An opt-in for glibc's malloc: keep freed memory for reuse (never called by the library itself)."""
from __future__ import annotations

import ctypes
import ctypes.util


def keep_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Ask glibc's malloc to serve arrays below `mmap_threshold` bytes from its heap and to keep
    up to `trim_threshold` bytes of freed heap for reuse, instead of handing large arrays back to
    the system when they are freed and faulting fresh pages in for the next ones. A training step
    allocates and frees the same few dozen large arrays every time, so this saves the page faults
    of every step, at the price of a process that keeps up to `trim_threshold` bytes more than it
    uses.

    The setting is the whole process's and lasts until it ends: every library in the process
    (PyTorch too) allocates under it. Call it yourself, once, if you want it; the library never
    does. Returns whether the settings took (glibc only: elsewhere it does nothing)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        return bool(libc.mallopt(m_mmap_threshold, mmap_threshold)) and bool(
            libc.mallopt(m_trim_threshold, trim_threshold))
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to tune
        return False
