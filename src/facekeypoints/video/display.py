"""Windows for --show: a clear message when OpenCV has no GUI or there is no display."""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

from ..errors import FkpError

GUI_HINT = ("the installed OpenCV has no window support (opencv-python-headless); for --show install a GUI build: "
            "pip uninstall -y opencv-python-headless && pip install 'opencv-python>=4.8,<5'")


def has_gui() -> bool:
    info = cv2.getBuildInformation()
    gui = next((ln for ln in info.splitlines() if ln.strip().startswith("GUI:")), "")
    return bool(gui) and "NONE" not in gui.upper()


def require_display() -> None:
    """Raise a one-line FkpError unless windows can be opened."""
    if not has_gui():
        raise FkpError(GUI_HINT)
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise FkpError("--show needs a display, and none is set (DISPLAY/WAYLAND_DISPLAY); write files with -o instead")


def show(title: str, image: np.ndarray, wait_ms: int = 0) -> bool:
    """Show an image; returns False when the user pressed q or Esc."""
    cv2.imshow(title, image)
    key = cv2.waitKey(wait_ms) & 0xFF
    return key not in (ord("q"), 27)
