"""Where corpora and caches live."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "AWDLSTM_DATA"
CACHE_ENV = "AWDLSTM_CACHE"


def cache_root() -> Path:
    """``$AWDLSTM_CACHE``, else ``$XDG_CACHE_HOME/awdlstm``, else ``~/.cache/awdlstm``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "awdlstm"
