"""One check run: the report built under a timeout, and the run's own families.

A run that fails or times out yields `nestctl_run_success 0` and no per-target series at all, so
a failure never looks like the last success. `nestctl_last_success_timestamp_seconds` carries the
time of the last good run (the stale-metrics alert reads it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from nestctl import __version__
from nestctl.metrics.bench import BenchSample, bench_families
from nestctl.metrics.family import Families
from nestctl.metrics.report import report_families

#: Builds one report body (`doctor --json`'s object) and says which node it ran on.
Check = Callable[[], "Checked"]


class Checked(NamedTuple):
    body: dict[str, Any]
    local_node: str | None = None
    bench: list[BenchSample] = []  # noqa: RUF012 - a NamedTuple default, never mutated


class RunResult(NamedTuple):
    families: Families
    ok: bool
    finished: float  # time.time() when the run ended (or gave up)
    error: str | None = None


class CheckRunner:
    """Runs `check` in a daemon thread, waiting at most `timeout` seconds per call.

    One check at a time: when a call times out, the check stays in flight and the next call
    waits for that same check (and uses its answer) instead of piling up another. The thread is
    a daemon, so a probe that hangs cannot keep the process alive.
    """

    def __init__(self, check: Check, *, guests: bool) -> None:
        self.check = check
        self.guests = guests
        self._thread: threading.Thread | None = None
        self._box: dict[str, Any] = {}

    def _work(self, box: dict[str, Any]) -> None:
        try:
            got = self.check()
            fam = report_families(got.body, local_node=got.local_node, guests=self.guests)
            bench_families(fam, got.bench)
            box["fam"] = fam
        except Exception as exc:  # noqa: BLE001 - any failure of the check is a failed run
            box["error"] = _describe(exc)
        except SystemExit as exc:  # a check that exits (a usage error deep inside)
            box["error"] = f"the check exited ({exc.code})"
        except KeyboardInterrupt:  # a Ctrl-C held back and re-raised here (host reload)
            box["interrupted"] = True
        finally:
            box["end"] = time.monotonic()

    def run(self, timeout: float, last_success: float | None) -> RunResult:
        if self._thread is None:
            self._box = {"start": time.monotonic()}
            self._thread = threading.Thread(
                target=self._work, args=(self._box,), name="nestctl-check", daemon=True
            )
            self._thread.start()
        self._thread.join(timeout)
        box = self._box
        if self._thread.is_alive():
            fam = Families()
            duration = time.monotonic() - box["start"]
            run_families(fam, ok=False, duration=duration, last_success=last_success)
            return RunResult(
                fam, False, time.time(), f"the check did not finish within {timeout:g} s"
            )
        self._thread = None
        if box.get("interrupted"):
            raise KeyboardInterrupt  # the user's Ctrl-C: exit 130 in the main thread
        finished = time.time()
        error = box.get("error")
        got = box.get("fam")
        ok = error is None and isinstance(got, Families)
        # A failed run exports no target series at all: never a stale success.
        fam = got if ok and isinstance(got, Families) else Families()
        run_families(
            fam,
            ok=ok,
            duration=box["end"] - box["start"],
            last_success=finished if ok else last_success,
        )
        return RunResult(fam, ok, finished, error)


def run_families(fam: Families, *, ok: bool, duration: float, last_success: float | None) -> None:
    fam.add("nestctl_build_info", 1.0, version=__version__)
    fam.add("nestctl_run_success", 1.0 if ok else 0.0)
    fam.add("nestctl_run_duration_seconds", round(duration, 6))
    if last_success is not None:
        fam.add("nestctl_last_success_timestamp_seconds", round(last_success, 3))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
