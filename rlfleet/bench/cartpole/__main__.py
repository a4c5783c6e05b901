"""``python -m rlfleet.bench.cartpole``: the same as ``rlfleet bench cartpole``; the benchmark
starts its SB3 ``--child`` processes this way."""

import sys

from rlfleet.bench.cartpole.cli import main

if __name__ == "__main__":
    sys.exit(main())
