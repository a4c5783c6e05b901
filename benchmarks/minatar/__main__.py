"""``python -m benchmarks.minatar``: the same as ``rlfleet bench minatar``; the benchmark
starts its SB3 ``--child`` processes this way."""

import sys

from benchmarks.minatar.cli import main

if __name__ == "__main__":
    sys.exit(main())
