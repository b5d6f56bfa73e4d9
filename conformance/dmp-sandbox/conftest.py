"""Keeps hypothesis's files out of the work tree, wherever pytest is started from."""

import tempfile
from pathlib import Path

from hypothesis import configuration

configuration.set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "dmp-sandbox-hypothesis"))
