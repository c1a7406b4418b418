"""`python -m engine FD`: the engine process (see engine/worker.py)."""

import sys

from engine.worker import main

main(int(sys.argv[1]))
