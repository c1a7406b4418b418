"""`python -m bot`: see `bot.cli`."""

from __future__ import annotations

import sys

from bot.cli import main

# Only when run: the spawned engine process may import the main module again.
if __name__ == "__main__":
    sys.exit(main())
