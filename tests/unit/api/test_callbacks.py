"""Callbacks: events built from the fleet's info, stop reasons, exceptions kept for train()."""

from __future__ import annotations

import pytest

from rlfleet.api.callbacks import Callback, EarlyStopping, Evaluation, EventDispatcher

pytestmark = pytest.mark.unit


def _eval(ret: float, version: int = 1) -> dict:
    return {
        "wall_s": 1.0,
        "env_steps": 100 * version,
        "updates": 10 * version,
        "version": version,
        "return_mean": ret,
        "return_std": 0.5,
        "solved": False,
    }


def _ev(ret: float) -> Evaluation:
    return Evaluation(1.0, 100, 10, 1, ret, 0.0, False)


def test_dispatcher_builds_events_and_collects_the_first_stop_reason():
    seen = []

    class Log(Callback):
        def on_evaluation(self, ev):
            seen.append(ev)

    class StopAt3(Callback):
        def on_evaluation(self, ev):
            return ev.return_mean >= 3

    class Ckpt:  # duck-typed: only on_checkpoint
        def on_checkpoint(self, ck):
            seen.append(ck)
            return "saved enough" if ck.final else None

    d = EventDispatcher([Log(), StopAt3(), Ckpt()])
    assert d("evaluation", _eval(1.0)) is None
    assert d("evaluation", _eval(3.0, 2)) == "stopped by StopAt3.on_evaluation"
    assert seen[1].version == 2 and seen[1].return_mean == 3.0 and seen[1].env_steps == 200
    info = {"path": "/x", "updates": 5, "env_steps": 50, "wall_s": 2.0, "final": False}
    assert d("checkpoint", info) is None
    assert d("checkpoint", {**info, "final": True}) == "saved enough"
    assert d("something else", {}) is None
    assert [type(e).__name__ for e in seen] == ["Evaluation"] * 2 + ["Checkpoint"] * 2


def test_a_raising_callback_stops_the_run_and_its_error_is_kept():
    class Boom(Callback):
        def on_evaluation(self, ev):
            raise KeyError("boom")

    d = EventDispatcher([Boom()])
    assert d("evaluation", _eval(1.0)) == "callback error"
    assert isinstance(d.error, KeyError)
    assert d("evaluation", _eval(2.0)) == "callback error"  # not called again


def test_bad_callbacks_and_return_values_are_refused():
    with pytest.raises(TypeError, match="neither on_evaluation nor on_checkpoint"):
        EventDispatcher([object()])

    class Odd(Callback):
        def on_evaluation(self, ev):
            return 42

    d = EventDispatcher([Odd()])
    assert d("evaluation", _eval(1.0)) == "callback error"
    assert isinstance(d.error, TypeError) and "returned 42" in str(d.error)


def test_early_stopping_patience_delta_and_target():
    es = EarlyStopping(patience=2, min_delta=0.5)
    assert es.on_evaluation(_ev(1.0)) is None  # best 1.0
    assert es.on_evaluation(_ev(1.4)) is None  # +0.4 <= delta: one without improvement
    assert es.on_evaluation(_ev(2.0)) is None  # improved
    assert es.on_evaluation(_ev(2.1)) is None
    assert "no improvement in 2" in es.on_evaluation(_ev(1.0))
    assert "target" in EarlyStopping(target=5.0).on_evaluation(_ev(5.0))
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="min_delta"):
        EarlyStopping(min_delta=-1.0)
