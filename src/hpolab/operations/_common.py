"""What every study operation shares."""

from __future__ import annotations

import os

# The workspace root: a path, or None for ``$HPOLAB_ROOT`` / the current directory.
Root = str | os.PathLike[str] | None
