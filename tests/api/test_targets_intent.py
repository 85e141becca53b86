"""Config-file targets: `prometheus` and `intent_tag` (issue 18), checked like every other key."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestctl.api.targets import TargetConfigError, load_targets


def test_prometheus_and_intent_tag_are_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[targets.lab]\nurl = "https://192.0.2.10:8006"\n'
        'prometheus = "http://127.0.0.1:9090"\nintent_tag = "Lab"\n'
    )
    lab = load_targets(path)["lab"]
    assert (lab.prometheus, lab.intent_tag) == ("http://127.0.0.1:9090", "Lab")


def test_bad_values_are_listed_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[targets.lab]\nurl = "https://192.0.2.10:8006"\n'
        'prometheus = "prom:9090"\nintent_tag = "no spaces"\n'
    )
    with pytest.raises(TargetConfigError) as err:
        load_targets(path)
    assert err.value.problems == [
        f"{path}:4: 'no spaces' is not a Proxmox tag name",
        f"{path}:3: 'prometheus' must be an http(s) URL",
    ]
