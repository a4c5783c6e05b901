"""IMPALA losses and kickstarting distillation against naive per-step loops (numpy, float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlfleet.errors import ConfigError
from rlfleet.math.policy_losses import (
    KICKSTART_SCHEDULES,
    action_log_probs,
    baseline_loss,
    distillation_loss,
    entropy_loss,
    kickstart_weight,
    policy_gradient_loss,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


T, B, A = 7, 5, 4


def naive_probs(row: np.ndarray) -> list[float]:
    m = max(row)
    exps = [math.exp(v - m) for v in row]
    z = sum(exps)
    return [e / z for e in exps]


def steps():
    return [(t, b) for t in range(T) for b in range(B)]


def reduce_naive(per_step: list[float], reduction: str) -> float:
    return sum(per_step) if reduction == "sum" else sum(per_step) / len(per_step)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return dict(
        logits=rng.normal(scale=2.0, size=(T, B, A)),
        actions=rng.integers(0, A, size=(T, B)),
        advantages=rng.normal(size=(T, B)),
        vs=rng.normal(size=(T, B)),
        values=rng.normal(size=(T, B)),
        teacher=rng.normal(scale=2.0, size=(T, B, A)),
    )


def test_action_log_probs_against_naive(batch):
    got = action_log_probs(torch.tensor(batch["logits"]), torch.tensor(batch["actions"]))
    for t, b in steps():
        p = naive_probs(batch["logits"][t, b])
        assert got[t, b].item() == pytest.approx(math.log(p[batch["actions"][t, b]]), abs=1e-12)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_policy_gradient_loss_against_naive_and_advantage_detached(batch, reduction):
    logits = torch.tensor(batch["logits"], requires_grad=True)
    advantages = torch.tensor(batch["advantages"], requires_grad=True)
    loss = policy_gradient_loss(logits, torch.tensor(batch["actions"]), advantages, reduction)
    per_step, grad = [], np.zeros((T, B, A))
    for t, b in steps():
        p = naive_probs(batch["logits"][t, b])
        a, adv = batch["actions"][t, b], batch["advantages"][t, b]
        per_step.append(-math.log(p[a]) * adv)
        # d/dlogit_j of -log p_a * adv = (p_j - [j == a]) * adv
        grad[t, b] = [(p[j] - (j == a)) * adv for j in range(A)]
    assert loss.item() == pytest.approx(reduce_naive(per_step, reduction), rel=1e-12)
    loss.backward()
    scale = 1.0 if reduction == "sum" else 1.0 / (T * B)
    np.testing.assert_allclose(logits.grad.numpy(), grad * scale, atol=1e-12)
    assert advantages.grad is None


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_baseline_loss_is_half_squared_error_with_target_detached(batch, reduction):
    vs = torch.tensor(batch["vs"], requires_grad=True)
    values = torch.tensor(batch["values"], requires_grad=True)
    loss = baseline_loss(vs, values, reduction)
    per_step = [0.5 * (batch["vs"][t, b] - batch["values"][t, b]) ** 2 for t, b in steps()]
    assert loss.item() == pytest.approx(reduce_naive(per_step, reduction), rel=1e-12)
    loss.backward()
    scale = 1.0 if reduction == "sum" else 1.0 / (T * B)
    np.testing.assert_allclose(
        values.grad.numpy(), (batch["values"] - batch["vs"]) * scale, atol=1e-12
    )
    assert vs.grad is None


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_entropy_loss_is_negative_entropy(batch, reduction):
    loss = entropy_loss(torch.tensor(batch["logits"]), reduction)
    per_step = []
    for t, b in steps():
        p = naive_probs(batch["logits"][t, b])
        per_step.append(sum(pj * math.log(pj) for pj in p))
    assert loss.item() == pytest.approx(reduce_naive(per_step, reduction), rel=1e-12)
    # Uniform policy: entropy log A per step, the most negative loss possible.
    uniform = entropy_loss(torch.zeros(T, B, A, dtype=torch.float64), "mean")
    assert uniform.item() == pytest.approx(-math.log(A), rel=1e-12)
    assert loss.item() / (1.0 if reduction == "mean" else T * B) > uniform.item()


def test_entropy_loss_stays_finite_for_a_near_deterministic_policy():
    logits = torch.tensor([[0.0, -1e4, -1e4]], requires_grad=True)
    loss = entropy_loss(logits)
    loss.backward()
    assert torch.isfinite(loss) and abs(loss.item()) < 1e-10
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_distillation_is_cross_entropy_equal_to_kl_plus_teacher_entropy(batch, reduction):
    teacher = torch.tensor(batch["teacher"], requires_grad=True)
    student = torch.tensor(batch["logits"], requires_grad=True)
    loss = distillation_loss(teacher, student, reduction)
    cross, kl_plus_h = [], []
    for t, b in steps():
        p_t = naive_probs(batch["teacher"][t, b])
        p_s = naive_probs(batch["logits"][t, b])
        cross.append(-sum(p_t[a] * math.log(p_s[a]) for a in range(A)))
        kl = sum(p_t[a] * math.log(p_t[a] / p_s[a]) for a in range(A))
        h = -sum(p_t[a] * math.log(p_t[a]) for a in range(A))
        kl_plus_h.append(kl + h)
    assert loss.item() == pytest.approx(reduce_naive(cross, reduction), rel=1e-12)
    assert loss.item() == pytest.approx(reduce_naive(kl_plus_h, reduction), rel=1e-10)
    loss.backward()
    assert teacher.grad is None
    # d/dstudent_logit_j of the cross-entropy = p_S(j) - p_T(j)
    want = np.array(
        [
            [
                np.subtract(naive_probs(batch["logits"][t, b]), naive_probs(batch["teacher"][t, b]))
                for b in range(B)
            ]
            for t in range(T)
        ]
    )
    scale = 1.0 if reduction == "sum" else 1.0 / (T * B)
    np.testing.assert_allclose(student.grad.numpy(), want * scale, atol=1e-12)


def test_distillation_is_minimal_when_student_equals_teacher(batch):
    teacher = torch.tensor(batch["teacher"])
    at_teacher = teacher.clone().requires_grad_()
    best = distillation_loss(teacher, at_teacher)
    best.backward()
    # The minimum is the teacher's own entropy, with zero gradient there...
    teacher_entropy = -entropy_loss(teacher).item()
    assert best.item() == pytest.approx(teacher_entropy, rel=1e-12)
    assert at_teacher.grad.abs().max().item() < 1e-12
    # ...and every other student is strictly worse (shifting all logits equally changes nothing).
    rng = np.random.default_rng(1)
    for _ in range(5):
        other = teacher + torch.tensor(rng.normal(scale=0.3, size=(T, B, A)))
        assert distillation_loss(teacher, other).item() > best.item()
    shifted = distillation_loss(teacher, teacher + 3.0)
    assert shifted.item() == pytest.approx(best.item(), rel=1e-12)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (
            lambda: entropy_loss(torch.zeros(2, 3), "avg"),
            "unknown reduction 'avg'; valid: sum, mean",
        ),
        (lambda: baseline_loss(torch.zeros(3), torch.zeros(4)), "vs has shape (3,)"),
        (
            lambda: policy_gradient_loss(
                torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), torch.zeros(3)
            ),
            "advantages has shape (3,)",
        ),
        (
            lambda: distillation_loss(torch.zeros(2, 4), torch.zeros(2, 3)),
            "teacher_logits has shape (2, 4)",
        ),
        (lambda: entropy_loss(torch.zeros(2, 0)), "non-empty last (action) dimension"),
        (
            lambda: action_log_probs(torch.zeros(2, 3), torch.tensor([0, 3])),
            "action 3 is out of range; valid actions are 0..2",
        ),
    ],
)
def test_loss_argument_errors(call, needle):
    with pytest.raises(ConfigError) as err:
        call()
    assert needle in str(err.value)


# --- kickstarting weight schedules -----------------------------------------------------------


def test_constant_schedule():
    for step in (0, 1, 10_000, 10**9):
        assert kickstart_weight(step, "constant", 2.5) == 2.5


def test_linear_schedule_decays_to_zero_and_stays_there():
    got = [kickstart_weight(s, "linear", 2.0, decay_steps=1000) for s in (0, 250, 500, 999)]
    assert got == pytest.approx([2.0, 1.5, 1.0, 2.0 * 1 / 1000])
    assert kickstart_weight(1000, "linear", 2.0, decay_steps=1000) == 0.0
    assert kickstart_weight(5000, "linear", 2.0, decay_steps=1000) == 0.0


def test_step_schedule_drops_at_each_boundary_inclusive():
    kw = dict(boundaries=[100, 300], values=[0.5, 0.0])
    want = {0: 1.0, 99: 1.0, 100: 0.5, 299: 0.5, 300: 0.0, 10_000: 0.0}
    for step, value in want.items():
        assert kickstart_weight(step, "step", 1.0, **kw) == value, step


def test_unknown_schedule_lists_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        kickstart_weight(0, "cosine", 1.0)
    msg = str(err.value)
    assert "'cosine'" in msg
    for name in KICKSTART_SCHEDULES:
        assert name in msg
    assert set(KICKSTART_SCHEDULES) == {"constant", "linear", "step"}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(step=-1, schedule="constant", lambda0=1.0), "step must be an integer >= 0, got -1"),
        (dict(step=0.5, schedule="constant", lambda0=1.0), "got 0.5"),
        (dict(step=0, schedule="constant", lambda0=-0.1), "lambda0 must be a finite number >= 0"),
        (dict(step=0, schedule="constant", lambda0=float("inf")), "got inf"),
        (dict(step=0, schedule="linear", lambda0=1.0), "needs decay_steps"),
        (dict(step=0, schedule="linear", lambda0=1.0, decay_steps=0), "got 0"),
        (dict(step=0, schedule="step", lambda0=1.0), "at least one boundary"),
        (
            dict(step=0, schedule="step", lambda0=1.0, boundaries=[10, 20], values=[0.5]),
            "one value per boundary",
        ),
        (
            dict(step=0, schedule="step", lambda0=1.0, boundaries=[20, 10], values=[0.5, 0.1]),
            "strictly increasing",
        ),
        (
            dict(step=0, schedule="step", lambda0=1.0, boundaries=[0], values=[0.5]),
            "boundaries[0] must be an integer > 0",
        ),
        (
            dict(step=0, schedule="step", lambda0=1.0, boundaries=[10, 20], values=[0.5, 0.8]),
            "values[1] = 0.8 exceeds the level before it (0.5)",
        ),
    ],
)
def test_schedule_argument_errors(kwargs, needle):
    with pytest.raises(ConfigError) as err:
        kickstart_weight(**kwargs)
    assert needle in str(err.value)
