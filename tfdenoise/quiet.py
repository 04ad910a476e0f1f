"""Muting what TensorFlow's and LiteRT's native code writes straight to stderr.

Their C++ start-up and conversion chatter ("Created TensorFlow Lite XNNPACK delegate",
"fully_quantize: 0, inference_type: 6, ...", CUDA probing on CPU machines) bypasses Python
logging, so it can only be dropped at the file-descriptor level.  Python exceptions still
propagate with their messages.  Set ``TFDENOISE_TF_LOGS=1`` to see everything.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


@contextlib.contextmanager
def native_stderr_muted() -> Iterator[None]:
    """Redirect file descriptor 2 to /dev/null for the duration of the block."""
    if os.environ.get("TFDENOISE_TF_LOGS"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
