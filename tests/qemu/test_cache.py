"""The answer cache: per QEMU build, atomic, and never fatal when the file is damaged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nestctl.qemu.cache import CpuAnswerCache, default_cache_path
from nestctl.qemu.cpuprobe import CpuAnswer
from tests.privileges import as_unprivileged

ID_A = "/usr/bin/qemu-system-x86_64|100|1|7"
ID_B = "/usr/bin/qemu-system-x86_64|200|2|8"
ANSWER = CpuAnswer(
    "kvm64,+svm", vmx=False, svm=True, hypervisor=True, source="qemu 7.2.22 tcg", accel="tcg"
)


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


def test_unwritable_cache_costs_speed_not_the_answer(open_tmp_path: Path) -> None:
    # Root writes anywhere: run as an unprivileged user (forked and dropped under root, as in CI).
    ro = open_tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)

    def check() -> tuple[str | None, bool]:
        cache = CpuAnswerCache(ro / "c.json")
        cache.put(ID_A, "tcg", "kvm64", ANSWER)
        return cache.save(), cache.get(ID_A, "tcg", "kvm64") == ANSWER

    problem, kept = as_unprivileged(check)
    assert "cannot write" in (problem or "")
    assert kept


def test_cache_in_a_file_path_that_is_a_directory_reports_not_raises(tmp_path: Path) -> None:
    (tmp_path / "c.json").mkdir()
    cache = CpuAnswerCache(tmp_path / "c.json")
    assert cache.get(ID_A, "tcg", "kvm64") is None
    cache.put(ID_A, "tcg", "kvm64", ANSWER)
    assert cache.save() is not None


def test_default_location_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_path(euid=1000) == tmp_path / "nestctl" / "qemu-cpu.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_path(euid=1000) == tmp_path / ".cache" / "nestctl" / "qemu-cpu.json"


def test_root_ignores_a_users_xdg_cache_home_kept_by_sudo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_path(euid=0) == Path("/var/cache/nestctl/qemu-cpu.json")
    assert CpuAnswerCache(euid=0).path == Path("/var/cache/nestctl/qemu-cpu.json")


def _poisoned(path: Path, answer: CpuAnswer) -> None:
    record = answer.to_json()
    path.write_text(json.dumps({"format": 1, "builds": {ID_A: {"tcg\nkvm64": record}}}))


def test_a_file_others_may_write_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    _poisoned(path, ANSWER)
    path.chmod(0o666)
    cache = CpuAnswerCache(path)
    assert cache.get(ID_A, "tcg", "kvm64") is None
    assert "may be written by other users" in (cache.problem or "")


def test_a_directory_others_may_write_is_not_trusted_nor_written(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    path = shared / "c.json"
    _poisoned(path, ANSWER)
    cache = CpuAnswerCache(path)
    assert cache.get(ID_A, "tcg", "kvm64") is None
    cache.put(ID_A, "tcg", "kvm64", ANSWER)
    assert cache.save() is not None
    assert json.loads(path.read_text())["builds"][ID_A]["tcg\nkvm64"] == ANSWER.to_json()


def test_a_file_of_another_user_is_not_trusted(open_tmp_path: Path) -> None:
    # Another user's file: chowned under root (CI), or claimed by another euid when run as a user.
    path = open_tmp_path / "c.json"
    _poisoned(path, ANSWER)
    path.chmod(0o644)
    if os.geteuid() == 0:
        os.chown(path, 4242, 4242)

    def check() -> tuple[bool, str | None]:
        me = os.geteuid()
        cache = CpuAnswerCache(path, euid=me if me != os.stat(path).st_uid else me + 1)
        return cache.get(ID_A, "tcg", "kvm64") is None, cache.problem

    not_trusted, problem = as_unprivileged(check)
    assert not_trusted
    assert "belongs to uid" in (problem or "")


def test_a_symlinked_cache_file_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    _poisoned(target, ANSWER)
    link = tmp_path / "c.json"
    link.symlink_to(target)
    cache = CpuAnswerCache(link)
    assert cache.get(ID_A, "tcg", "kvm64") is None
    assert cache.problem is not None


@pytest.mark.parametrize(
    "forged",
    [
        {"vmx": True, "error": "refused"},  # a refusal with flags
        {"vmx": None},  # an answer missing a flag
        {"source": "table"},  # the table's answer is never cached
        {"unasked": "QEMU was killed by SIGKILL"},  # "could not ask" is never cached
        {"accel": "kvm"},  # filed under tcg
        {"notes": [1, 2]},
        {"vendor": "x" * 10000},
        # What older nestctl cached when QEMU could not bind its socket: not about the CPU.
        {
            "vmx": None,
            "svm": None,
            "hypervisor": None,
            "error": "-qmp unix:/tmp/nestctl-qmp-x/qmp.sock,server=on,wait=off: Failed to bind "
            "socket to /tmp/nestctl-qmp-x/qmp.sock: No space left on device",
        },
    ],
)
def test_forged_or_damaged_records_are_asked_again(
    tmp_path: Path, forged: dict[str, object]
) -> None:
    path = tmp_path / "c.json"
    record = ANSWER.to_json() | forged
    path.write_text(json.dumps({"format": 1, "builds": {ID_A: {"tcg\nkvm64": record}}}))
    path.chmod(0o600)
    assert CpuAnswerCache(path).get(ID_A, "tcg", "kvm64") is None


def test_an_unasked_answer_is_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    cache = CpuAnswerCache(path)
    failed = CpuAnswer("kvm64", vmx=False, svm=False, hypervisor=True, unasked="QEMU was killed")
    cache.put(ID_A, "tcg", "kvm64", failed)
    assert cache.save() is None
    assert not path.exists()


def test_a_real_refusal_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    refused = CpuAnswer(
        "qemu64,+nosuch",
        vmx=None,
        svm=None,
        hypervisor=None,
        error="Property 'qemu64-x86_64-cpu.nosuch' not found",
        source="qemu 7.2.22 tcg",
        accel="tcg",
    )
    cache = CpuAnswerCache(path)
    cache.put(ID_A, "tcg", "qemu64,+nosuch", refused)
    assert cache.save() is None
    assert CpuAnswerCache(path).get(ID_A, "tcg", "qemu64,+nosuch") == refused
