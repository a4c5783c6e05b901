"""``python -m benchmarks.pendulum``: the same as ``rlfleet bench pendulum``; the benchmark
starts its SB3 ``--child`` processes this way."""

import sys

from benchmarks.pendulum.cli import main

if __name__ == "__main__":
    sys.exit(main())
