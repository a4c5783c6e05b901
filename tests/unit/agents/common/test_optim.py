"""The agents' optimizers against torch.optim: the same parameters after every step, state
dicts that load into each other, and no torch._dynamo import."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from rlfleet.agents.common.optim import Adam, RMSprop


def net_and_batches(seed: int = 0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    batches = [(torch.randn(8, 5), torch.randn(8, 3)) for _ in range(6)]
    return net, batches


def train(net, opt, batches, lrs=None) -> None:
    for i, (x, y) in enumerate(batches):
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[i]
        opt.zero_grad(set_to_none=True)
        ((net(x) - y) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            lambda p: Adam(p, lr=0.01, eps=1e-6),
            lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-6, fused=True),
        ),
        (
            lambda p: RMSprop(p, lr=0.01, alpha=0.9, eps=0.01, momentum=0.0),
            lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=0.01, foreach=True),
        ),
        (
            lambda p: RMSprop(p, lr=0.01, alpha=0.99, eps=0.1, momentum=0.5),
            lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=0.1, momentum=0.5),
        ),
    ],
)
def test_steps_match_torch_optim_exactly_and_state_dicts_cross_over(ours, theirs):
    a, batches = net_and_batches()
    b, _ = net_and_batches()
    opt_a, opt_b = ours(a.parameters()), theirs(b.parameters())
    lrs = [0.01, 0.01, 0.005, 0.005, 0.002, 0.002]  # a schedule changes param_groups[0]["lr"]
    train(a, opt_a, batches[:3], lrs[:3])
    train(b, opt_b, batches[:3], lrs[:3])
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    # swap states: ours continues from torch.optim's and the other way round
    c, _ = net_and_batches()
    c.load_state_dict(b.state_dict())
    opt_c = ours(c.parameters())
    opt_c.load_state_dict(opt_b.state_dict())
    opt_b2 = theirs(a.parameters())
    opt_b2.load_state_dict(opt_a.state_dict())
    train(c, opt_c, batches[3:], lrs[3:])
    train(a, opt_b2, batches[3:], lrs[3:])
    train(b, opt_b, batches[3:], lrs[3:])
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        torch.testing.assert_close(pc, pb, rtol=0, atol=0)
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_a_state_dict_for_other_parameters_is_refused():
    a, _ = net_and_batches()
    other = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="state for 2 parameters, this one has 4"):
        Adam(a.parameters(), lr=0.1).load_state_dict(Adam(other.parameters(), lr=0.1).state_dict())


def test_creating_and_stepping_imports_no_dynamo():
    code = (
        "import sys, torch\n"
        "from rlfleet.agents.common.optim import Adam, RMSprop\n"
        "net = torch.nn.Linear(3, 2)\n"
        "for opt in (Adam(net.parameters(), lr=0.1), RMSprop(net.parameters(), lr=0.1)):\n"
        "    net(torch.ones(4, 3)).sum().backward()\n"
        "    opt.step()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
