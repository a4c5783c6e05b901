"""``python -m benchmarks.cartpole``: the same as ``rlfleet bench cartpole``; the benchmark
starts its SB3 ``--child`` processes this way."""

import sys

from benchmarks.cartpole.cli import main

if __name__ == "__main__":
    sys.exit(main())
