"""Observation normalisation: the statistics equal a naive computation over everything seen,
travel in the published parameter vector, are checkpointed, and are never trained."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.models import build_actor_critic, build_q_network
from rlfleet.models.heads import GaussianHead
from rlfleet.models.normalize import ObsNormalizer, find_obs_normalizer, update_obs_stats
from rlfleet.models.params import flatten_into, load_flat, param_count

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_statistics_equal_the_naive_mean_and_std_of_all_batches():
    rng = np.random.default_rng(0)
    norm = ObsNormalizer((3,))
    x0 = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.equal(norm(x0), x0), "identity before the first update"
    batches = [rng.normal([5, -3, 100], [1, 0.1, 30], size=(n, 3)) for n in (10, 1, 300)]
    for b in batches:
        norm.update(b)
    data = np.concatenate(batches)
    mean = [sum(data[:, j]) / len(data) for j in range(3)]
    var = [sum((v - mean[j]) ** 2 for v in data[:, j]) / len(data) for j in range(3)]
    np.testing.assert_allclose(norm.shift.numpy(), mean, rtol=1e-6)
    np.testing.assert_allclose(norm.scale.numpy(), np.sqrt(np.array(var) + 1e-8), rtol=1e-6)
    out = norm(torch.tensor(data[:5], dtype=torch.float32))
    want = (data[:5] - mean) / np.sqrt(np.array(var) + 1e-8)
    np.testing.assert_allclose(out.numpy(), np.clip(want, -10, 10), rtol=1e-5, atol=1e-5)
    assert norm(torch.tensor([[1e6, 0.0, 0.0]]))[0, 0].item() == 10.0, "clipped"


def test_statistics_travel_in_the_flat_vector_and_the_checkpoint_not_the_optimizer():
    make = lambda: build_q_network((2,), 3, hidden=(8,), normalize_obs=True)  # noqa: E731
    learner, actor = make(), make()
    update_obs_stats(learner, np.array([[1.0, 10.0], [3.0, 30.0]]))
    flat = np.empty(param_count(learner), np.float32)
    load_flat(actor, flatten_into(learner, flat))
    obs = torch.tensor([[2.0, 20.0]])
    assert torch.equal(actor(obs), learner(obs))
    state = learner.state_dict()
    assert state["torso.normalizer.count"].item() == 2.0
    restored = make()
    restored.load_state_dict(state)
    assert find_obs_normalizer(restored).mean.tolist() == [2.0, 20.0]
    # an optimizer step changes weights, never the statistics
    opt = torch.optim.Adam(learner.parameters(), lr=0.1)
    learner(obs).sum().backward()
    opt.step()
    assert find_obs_normalizer(learner).shift.tolist() == [2.0, 20.0]


def test_actor_critic_normalises_once_for_both_torsos():
    net = build_actor_critic(
        (2,), lambda w: GaussianHead(w, [-1.0], [1.0]), hidden=(8,), normalize_obs=True
    )
    assert sum(isinstance(m, ObsNormalizer) for m in net.modules()) == 1
    params, value = net(torch.zeros(4, 2))
    assert params.shape == (4, 2) and value.shape == (4,)
    assert torch.equal(net.policy_params(torch.zeros(4, 2)), params)
    assert update_obs_stats(build_q_network((2,), 2, hidden=(4,)), np.zeros((1, 2))) is None
