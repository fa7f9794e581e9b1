"""What the console shows: the project's lines, Keras's epoch lines and DVC's own, not library chatter.

TensorFlow's C++ start-up notes are written straight to the process's stderr (file descriptor 2)
while it is imported, before its log level applies: a notice that logging is not set up, a note
that oneDNN is on "(you may see slightly different numerical results)", which worries anyone who
came for reproducibility, and the CPU instructions it was not compiled for. They are captured
during that import only, and every other line is passed on, so a real warning still shows.
"""

import os
import sys
import tempfile
from contextlib import contextmanager

TENSORFLOW_NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "rebuild TensorFlow with the appropriate compiler flags",
)


@contextmanager
def native_stderr_without(noise: tuple[str, ...]):
    """Run a block with file descriptor 2 captured; afterwards write out each line but the `noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not any(pattern in line for pattern in noise):
                    sys.stderr.write(line)
