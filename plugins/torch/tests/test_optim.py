"""The dynamo-free Adam: the same updates as torch.optim.Adam, and checkpoints that move between the two."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from agentlightning_torch.optim import Adam


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))


def _train(model: torch.nn.Module, optimizer: object, steps: int, seed: int) -> None:
    data = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, 5, generator=data)
        loss = (model(x) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)  # type: ignore[attr-defined]
        loss.backward()
        optimizer.step()  # type: ignore[attr-defined]


@pytest.mark.parametrize("lr", [1e-3, 3e-2])
def test_updates_match_torch_adam(lr: float) -> None:
    ours, theirs = _model(0), _model(0)
    _train(ours, Adam(ours.parameters(), lr=lr), 25, seed=1)
    _train(theirs, torch.optim.Adam(theirs.parameters(), lr=lr), 25, seed=1)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), (a - b).abs().max()


def test_state_moves_between_torch_adam_and_ours() -> None:
    reference, model = _model(0), _model(0)
    torch_opt = torch.optim.Adam(reference.parameters(), lr=1e-2)
    _train(reference, torch_opt, 10, seed=2)
    model.load_state_dict(reference.state_dict())
    ours = Adam(model.parameters(), lr=1e-2)
    ours.load_state_dict(torch_opt.state_dict())  # a checkpoint written with torch.optim.Adam resumes here
    _train(reference, torch_opt, 10, seed=3)
    _train(model, ours, 10, seed=3)
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    back = torch.optim.Adam(_model(0).parameters(), lr=1e-2)
    back.load_state_dict(ours.state_dict())  # and the other way round
    assert back.state_dict()["state"][0]["step"].item() == 20


def test_state_for_another_model_is_refused_by_name() -> None:
    small = Adam(torch.nn.Linear(2, 2).parameters())
    with pytest.raises(ValueError, match="parameters"):
        Adam(_model(0).parameters()).load_state_dict(small.state_dict())
    with pytest.raises(ValueError, match="empty parameter list"):
        Adam([])


def test_building_and_stepping_does_not_import_the_compiler() -> None:
    code = (
        "import sys, torch\n"
        "from agentlightning_torch.optim import Adam\n"
        "m = torch.nn.Linear(3, 3); opt = Adam(m.parameters())\n"
        "m(torch.ones(1, 3)).sum().backward(); opt.step()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"
