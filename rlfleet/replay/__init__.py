"""rlfleet.replay: prioritized and uniform replay, sum tree, frame-deduplicated image storage,
snapshots, the n-step accumulator and the samples-per-insert limiter. See docs/replay.md."""

from rlfleet.replay.demos.files import load_demos, write_demos
from rlfleet.replay.demos.format import (
    DEMO_FORMAT,
    DEMO_FORMAT_VERSION,
    Demonstrations,
    make_demonstrations,
    space_summary,
)
from rlfleet.replay.demos.transitions import demo_fields
from rlfleet.replay.fields import FieldSpec, FrameStackSpec
from rlfleet.replay.frames import FrameStore
from rlfleet.replay.nstep import NStepAccumulator
from rlfleet.replay.prioritized import PrioritizedReplay
from rlfleet.replay.rate_limiter import SamplesPerInsertLimiter
from rlfleet.replay.storage import Sample
from rlfleet.replay.sumtree import SumTree
from rlfleet.replay.uniform import UniformReplay
from rlfleet.replay.warmup import load_kernels

__all__ = [
    "DEMO_FORMAT",
    "DEMO_FORMAT_VERSION",
    "Demonstrations",
    "demo_fields",
    "load_demos",
    "make_demonstrations",
    "space_summary",
    "write_demos",
    "FieldSpec",
    "FrameStackSpec",
    "FrameStore",
    "NStepAccumulator",
    "PrioritizedReplay",
    "SamplesPerInsertLimiter",
    "Sample",
    "SumTree",
    "UniformReplay",
    "load_kernels",
]
