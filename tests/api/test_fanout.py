"""fan_out: the scan's VM phase on a few threads (issue 24)."""

from __future__ import annotations

import threading
import time

import pytest

from nestctl.vm.collect.fanout import fan_out


def test_results_come_back_in_order_with_at_most_n_at_once() -> None:
    lock = threading.Lock()
    now = peak = 0
    done: list[int] = []

    def work(item: int) -> int:
        nonlocal now, peak
        with lock:
            now += 1
            peak = max(peak, now)
        time.sleep(0.002 * (item % 3))  # finish out of order
        with lock:
            now -= 1
        return item * 2

    items = list(range(60))
    assert fan_out(work, items, 4, lambda: done.append(1)) == [i * 2 for i in items]
    assert 1 < peak <= 4
    assert len(done) == 60
    assert fan_out(work, [], 4) == []


def test_an_unexpected_error_reaches_the_caller_and_stops_the_rest() -> None:
    seen: list[int] = []

    def work(item: int) -> int:
        seen.append(item)
        if item == 3:
            raise RuntimeError("a bug, not an API error")
        return item

    with pytest.raises(RuntimeError, match="a bug"):
        fan_out(work, list(range(1000)), 2)
    assert len(seen) < 1000
