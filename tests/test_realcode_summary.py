"""``benchmarks/realcode.py``: what it counts in a `convert --report` JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks import realcode

REPO = Path(__file__).resolve().parent.parent

TRAIN = """\
import torch


def fit(model, data, epochs):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)
    for epoch in range(epochs):
        for x, y in data:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
        sched.step()
"""


def _record(api: str, kind: str) -> dict[str, str]:
    return {"api": api, "kind": kind, "reason": "" if kind == "converted" else "why"}


def test_scheduler_classes_and_library_factories_are_scheduler_constructions() -> None:
    assert realcode.is_scheduler_construction("torch.optim.lr_scheduler.StepLR")
    assert realcode.is_scheduler_construction("transformers.get_cosine_schedule_with_warmup")


def test_scheduler_methods_and_optimizers_are_not_scheduler_constructions() -> None:
    assert not realcode.is_scheduler_construction("torch.optim.lr_scheduler.LRScheduler.state_dict")
    assert not realcode.is_scheduler_construction("torch.optim.SGD")


def test_counts_group_converted_over_total() -> None:
    records = [
        _record("torch.optim.SGD", "converted"),
        _record("torch.optim.lr_scheduler.StepLR", "escaped"),
        _record("torch.optim.Optimizer.step", "converted"),
    ]
    assert realcode.counts(records) == {
        "constructs": (2, 3),
        "schedulers": (0, 1),
        "steps": (1, 1),
    }


def test_summary_of_a_real_report_counts_its_records(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(TRAIN)
    report = tmp_path / "r.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ml_switcheroo.cli",
            "convert",
            "--check",
            "--target",
            "nnx",
            "--report",
            str(report),
            str(tmp_path / "src"),
        ],
        cwd=REPO,
        capture_output=True,
    )
    data = json.loads(report.read_text())
    found = realcode.counts(data["records"])
    assert found["steps"][1] == 1
    assert found["schedulers"][1] == 1
    assert found["constructs"][1] == len(data["records"])
    assert "nnx" in realcode.summary(data).splitlines()[0]
