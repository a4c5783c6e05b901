"""The 18 Pantheon scenarios by name, in reference order: six emulators calibrated to real
paths (1-6) and twelve pathological ones (7-18: policers, ACK aggregation, shallow buffers)."""

from __future__ import annotations

from rlfleet.envs.netsim.scenarios.spec import Scenario, Trace


def _const(r: float) -> Trace:
    return Trace("constant", rate_mbps=r)


def _poisson(r: float, warm_ms: int, seed: int) -> Trace:
    return Trace("poisson", rate_mbps=r, warmup_ms=warm_ms, seed=seed)


def _pantheon() -> dict[str, Scenario]:
    out: list[Scenario] = [
        Scenario(
            "nepal_to_aws_india",
            _poisson(0.57, 1000, 188),
            None,
            28,
            loss_up=0.0477,
            up_queue_packets=14,
            description="Calibrated: Nepal -> AWS India (Pantheon 188)",
            tags=("calibrated",),
        ),
        Scenario(
            "mexico_cellular_to_aws_california",
            _poisson(2.64, 5000, 196),
            None,
            88,
            up_queue_packets=130,
            description="Calibrated: Mexico cellular -> AWS California (196)",
            tags=("calibrated",),
        ),
        Scenario(
            "aws_brazil_to_colombia_cellular",
            _poisson(3.04, 4000, 339),
            None,
            130,
            up_queue_packets=426,
            description="Calibrated: AWS Brazil -> Colombia cellular (339)",
            tags=("calibrated",),
        ),
        Scenario(
            "india_to_aws_india",
            _const(100.42),
            None,
            27,
            up_queue_packets=173,
            description="Calibrated: India -> AWS India (251)",
            tags=("calibrated",),
        ),
        Scenario(
            "aws_korea_to_china",
            _const(77.72),
            None,
            51,
            loss_up=0.0006,
            up_queue_packets=94,
            description="Calibrated: AWS Korea -> China (361)",
            tags=("calibrated",),
        ),
        Scenario(
            "aws_california_to_mexico",
            _const(114.68),
            None,
            45,
            up_queue_packets=450,
            description="Calibrated: AWS California -> Mexico (353)",
            tags=("calibrated",),
        ),
    ]
    for rtt in (20, 100):
        for r in (12, 60, 108):
            out.append(
                Scenario(
                    f"policer_{r}mbps_{rtt}ms",
                    _const(r),
                    None,
                    rtt / 2,
                    up_queue_packets=1,
                    down_queue_packets=1,
                    description=f"Token-bucket policer, {r} Mbps, RTT {rtt} ms",
                    tags=("pathological", "policer"),
                )
            )
    out.append(
        Scenario(
            "ack_aggregation_100ms",
            _const(12),
            Trace("trace", times=(100,)),
            10,
            description="Severe ACK aggregation: 1 ACK opportunity every 100 ms",
            tags=("pathological", "ack_aggregation"),
        )
    )
    out.append(
        Scenario(
            "ack_aggregation_10_every_200ms",
            _const(12),
            Trace("trace", times=(200,) * 10),
            10,
            description="Severe ACK aggregation: 10 ACK opportunities every 200 ms",
            tags=("pathological", "ack_aggregation"),
        )
    )
    for label, qb in (
        ("bdp_div_10", 9000),
        ("bdp_div_3", 30000),
        ("bdp_div_2", 45000),
        ("bdp", 90000),
    ):
        out.append(
            Scenario(
                f"buffer_{label}",
                _const(12),
                None,
                30,
                up_queue_bytes=qb,
                description=f"12 Mbps, RTT 60 ms, bottleneck buffer {qb} bytes",
                tags=("pathological", "buffer"),
            )
        )
    return {s.name: s for s in out}


#: The 18 Pantheon scenarios in reference order (1-6 calibrated, 7-18 pathological).
PANTHEON: dict[str, Scenario] = _pantheon()
CALIBRATED: tuple[str, ...] = tuple(n for n, s in PANTHEON.items() if "calibrated" in s.tags)
