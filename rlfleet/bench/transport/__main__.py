"""``python -m rlfleet.bench.transport``: the same as ``rlfleet bench transport``."""

import sys

from rlfleet.bench.transport.cli import main

if __name__ == "__main__":
    sys.exit(main())
