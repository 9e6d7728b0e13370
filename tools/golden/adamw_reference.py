#!/usr/bin/env python3
"""Reference values for temper-learner's AdamW (learner/tests/optim.rs).

torch.optim.AdamW itself is the reference: two parameter groups, as Temper configures them
(weight decay on matrices, none on vectors), three steps with changing learning rates and
gradients given as literal numbers. Writes learner/tests/data/adamw.json.

Re-run from the repository root:

    .venv-golden/bin/python tools/golden/adamw_reference.py
"""

import json
from pathlib import Path

import torch

torch.manual_seed(0)
matrix = torch.nn.Parameter(torch.randn(3, 4, dtype=torch.float64))
vector = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
config = {"beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1}
optimizer = torch.optim.AdamW(
    [
        {"params": [matrix], "weight_decay": config["weight_decay"]},
        {"params": [vector], "weight_decay": 0.0},
    ],
    lr=1.0,
    betas=(config["beta1"], config["beta2"]),
    eps=config["eps"],
)
# Round everything to float32 first: the Rust test parses these numbers as f32.
with torch.no_grad():
    matrix.copy_(matrix.float().double())
    vector.copy_(vector.float().double())
initial = {"matrix": matrix.detach().flatten().tolist(), "vector": vector.detach().tolist()}
steps = []
for lr in [1e-2, 5e-3, 2e-2]:
    grads = {
        "matrix": torch.randn(3, 4, dtype=torch.float64).float().double(),
        "vector": torch.randn(4, dtype=torch.float64).float().double(),
    }
    for group in optimizer.param_groups:
        group["lr"] = lr
    matrix.grad = grads["matrix"].clone()
    vector.grad = grads["vector"].clone()
    optimizer.step()
    steps.append(
        {
            "lr": lr,
            "grads": {k: v.flatten().tolist() for k, v in grads.items()},
            "after": {
                "matrix": matrix.detach().flatten().tolist(),
                "vector": vector.detach().tolist(),
            },
        }
    )

out = Path(__file__).resolve().parents[2] / "learner/tests/data/adamw.json"
out.write_text(json.dumps({"config": config, "initial": initial, "steps": steps}, indent=1))
print(f"wrote {out}")
