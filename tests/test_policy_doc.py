"""The policy file shown in docs/configuration.md is one the service loads as written."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from app.policy_file import load_policy

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_the_documented_policy_file_loads_with_its_values(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## The policy file") :]
    example = section.split("```toml", 1)[1].split("```", 1)[0]
    path = tmp_path / "policy.toml"
    path.write_text(example, encoding="utf-8")
    policy = load_policy(path)
    assert policy.safety_buffer == 2
    assert policy.confidence_threshold == 0.9
    assert policy.arrival_horizon == timedelta(hours=2)
    assert policy.max_data_age == timedelta(hours=6)
    assert len(policy.buffers) == 3
