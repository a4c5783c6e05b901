"""``python -m benchmarks.transport``: the same as ``rlfleet bench transport``."""

import sys

from benchmarks.transport.cli import main

if __name__ == "__main__":
    sys.exit(main())
