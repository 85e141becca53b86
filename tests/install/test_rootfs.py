"""The test roots themselves: a failing test still unmounts and removes its root."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.install.rootfs import BINDS, PYTHON_ONLY, mount_points, pristine_root

pytestmark = pytest.mark.install


def fail_inside_a_root(seen: list[Path]) -> None:
    with pristine_root(PYTHON_ONLY) as root:
        seen.append(root.path)
        mounted = set(mount_points(root.path))
        assert {str(root.path / name) for name in BINDS} <= mounted
        assert root.check("cat /proc/self/comm").strip() == "cat"
        raise AssertionError("a failing check")


def test_root_is_unmounted_and_removed_when_a_test_fails() -> None:
    seen: list[Path] = []
    with pytest.raises(AssertionError, match="a failing check"):
        fail_inside_a_root(seen)
    (path,) = seen
    assert mount_points(path) == []
    assert not path.exists()
