"""The answer cache: per QEMU build, atomic, and never fatal when the file is damaged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nestctl.qemu.cache import CpuAnswerCache, default_cache_path
from nestctl.qemu.cpuprobe import CpuAnswer

ID_A = "/usr/bin/qemu-system-x86_64|100|1|7"
ID_B = "/usr/bin/qemu-system-x86_64|200|2|8"
ANSWER = CpuAnswer("kvm64,+svm", vmx=False, svm=True, hypervisor=True, source="qemu 7.2.22 tcg")


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "qemu-cpu.json"
    cache = CpuAnswerCache(path)
    assert cache.get(ID_A, "tcg", "kvm64,+svm") is None
    cache.put(ID_A, "tcg", "kvm64,+svm", ANSWER)
    assert cache.save() is None
    fresh = CpuAnswerCache(path)
    assert fresh.get(ID_A, "tcg", "kvm64,+svm") == ANSWER
    assert fresh.get(ID_A, "kvm", "kvm64,+svm") is None  # another accelerator is another answer
    assert fresh.get(ID_B, "tcg", "kvm64,+svm") is None  # another build is another answer
    assert [p.name for p in path.parent.iterdir()] == ["qemu-cpu.json"]  # no temp file left


def test_a_new_build_of_the_same_binary_replaces_the_old_answers(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    cache = CpuAnswerCache(path)
    cache.put(ID_A, "tcg", "kvm64", ANSWER)
    cache.put(ID_B, "tcg", "kvm64", ANSWER)
    cache.save()
    builds = json.loads(path.read_text())["builds"]
    assert list(builds) == [ID_B]


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"format": 99, "builds": {}}',
        '{"format": 1, "builds": []}',
        '{"format": 1}',
        '{"format": 1, "builds": {"x": {"tcg\\nkvm64": {"cpu_arg": 3}}}}',
    ],
)
def test_corrupt_file_is_ignored_and_rewritten(tmp_path: Path, content: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    cache = CpuAnswerCache(path)
    assert cache.get("x", "tcg", "kvm64") is None
    cache.put(ID_A, "tcg", "kvm64", ANSWER)
    assert cache.save() is None
    assert CpuAnswerCache(path).get(ID_A, "tcg", "kvm64") == ANSWER


def test_binary_garbage_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    cache = CpuAnswerCache(path)
    assert cache.get(ID_A, "tcg", "kvm64") is None
    assert cache.problem is not None


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_cache_costs_speed_not_the_answer(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    cache = CpuAnswerCache(ro / "c.json")
    cache.put(ID_A, "tcg", "kvm64", ANSWER)
    assert "cannot write" in (cache.save() or "")
    assert cache.get(ID_A, "tcg", "kvm64") == ANSWER


def test_cache_in_a_file_path_that_is_a_directory_reports_not_raises(tmp_path: Path) -> None:
    (tmp_path / "c.json").mkdir()
    cache = CpuAnswerCache(tmp_path / "c.json")
    assert cache.get(ID_A, "tcg", "kvm64") is None
    cache.put(ID_A, "tcg", "kvm64", ANSWER)
    assert cache.save() is not None


def test_default_location_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "nestctl" / "qemu-cpu.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / ".cache" / "nestctl" / "qemu-cpu.json"
