"""The microbenchmarks: each isolates one cost of virtualization (see docs/bench.md).

A workload's `prepare` returns an `Op` (run n iterations, return the nanoseconds they took; setup
stays outside the timing) or the reason it is not measurable here. Only the standard library:
this module also runs inside guests that have nothing but Python.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from nestctl.bench.stub import Stub
from nestctl.machine import Host

PAGE = 4096
CHUNK_PAGES = 256  # 1 MiB per mapping: never 2 MiB aligned, so no transparent huge page
SLEEP_NS = 50_000  # the short sleep the reference names (50 us)
PR_SET_TIMERSLACK, PR_GET_TIMERSLACK = 29, 30


class Op(Protocol):
    unit: str
    note: str | None
    clock: str  # "cpu" (this thread's CPU time) or "wall"

    def __call__(self, n: int) -> float: ...

    def close(self) -> None: ...


@dataclass
class SimpleOp:
    """An op from a plain function (and an optional clean-up)."""

    run: Callable[[int], float]
    unit: str = "ns/op"
    note: str | None = None
    clock: str = "cpu"
    cleanup: Callable[[], None] | None = None

    def __call__(self, n: int) -> float:
        return self.run(n)

    def close(self) -> None:
        if self.cleanup is not None:
            self.cleanup()


@dataclass(frozen=True)
class Context:
    """What workloads share: the executable-memory stub (or why there is none), a scratch dir."""

    stub: Stub | str
    scratch: str | None  # a writable directory on a real file system, for fsync
    clocksource: str | None = None
    cpus: tuple[int, ...] = field(default_factory=tuple)  # CPUs this process may run on


Prepare = Callable[[Context], "Op | str"]


@dataclass(frozen=True)
class Workload:
    name: str
    group: str  # "no_exit", "exit_heavy", "kernel", "io", "config"
    what: str
    prepare: Prepare


#: Work that never waits is timed in this thread's CPU time: on a busy machine, time spent
#: descheduled for other processes is noise, not a cost of the level. VM exits and page faults
#: taken by the thread still count (the guest's clock runs on while the hypervisor works).
CPU_TIME = time.thread_time_ns
#: Work that waits (sleeps, another process, the disk) needs the wall clock.
WALL = time.perf_counter_ns


def _timed(
    body: Callable[[int], None], clock: Callable[[], int] = CPU_TIME
) -> Callable[[int], float]:
    def run(n: int) -> float:
        start = clock()
        body(n)
        return float(clock() - start)

    return run


# -- no exits ----------------------------------------------------------------------------------


def _cpu(_ctx: Context) -> Op | str:
    def body(n: int) -> None:
        x = 1
        for _ in range(n):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF

    return SimpleOp(_timed(body), note="interpreter arithmetic loop")


def _syscall(_ctx: Context) -> Op | str:
    getppid = os.getppid

    def body(n: int) -> None:
        for _ in range(n):
            getppid()

    return SimpleOp(_timed(body), note="getppid() from Python (includes ~50 ns of call overhead)")


def _stub_loop(ctx: Context, which: str) -> Op | str:
    if isinstance(ctx.stub, str):
        return ctx.stub
    loop = ctx.stub.cpuid_loop if which == "cpuid" else ctx.stub.rdtsc_loop

    def body(n: int) -> None:
        loop(max(n, 1))  # the loop counts down: 0 would run 2**64 times

    return SimpleOp(_timed(body), note=f"{which} in executable memory (ctypes)")


def _cpuid(ctx: Context) -> Op | str:
    return _stub_loop(ctx, "cpuid")


def _rdtsc(ctx: Context) -> Op | str:
    return _stub_loop(ctx, "rdtsc")


# -- memory ------------------------------------------------------------------------------------

_ONES = b"\x01" * CHUNK_PAGES


def _chunk() -> mmap.mmap:
    mem = mmap.mmap(-1, CHUNK_PAGES * PAGE)
    with contextlib.suppress(AttributeError, OSError):
        mem.madvise(mmap.MADV_NOHUGEPAGE)  # one fault per 4 KiB page, not per 2 MiB
    return mem


def _chunks(n: int) -> int:
    return max(1, -(-n // CHUNK_PAGES))


def _page_touch_cold(_ctx: Context) -> Op | str:
    def run(n: int) -> float:
        chunks = _chunks(n)
        start = CPU_TIME()
        for _ in range(chunks):
            mem = _chunk()
            mem[::PAGE] = _ONES  # one write per page: one page fault each
            mem.close()
        # Normalised to the pages asked: the chunked count is what was really touched.
        return (CPU_TIME() - start) * n / (chunks * CHUNK_PAGES)

    return SimpleOp(run, unit="ns/page", note="fresh anonymous memory, 1 MiB mappings")


def _page_touch_warm(_ctx: Context) -> Op | str:
    mem = _chunk()
    mem[::PAGE] = _ONES

    def run(n: int) -> float:
        chunks = _chunks(n)
        start = CPU_TIME()
        for _ in range(chunks):
            mem[::PAGE] = _ONES
        return (CPU_TIME() - start) * n / (chunks * CHUNK_PAGES)

    return SimpleOp(run, unit="ns/page", note="the same pages again", cleanup=mem.close)


# -- processes, vCPUs, timers ------------------------------------------------------------------


def _fork_exec(_ctx: Context) -> Op | str:
    # A guest's runner may start with no PATH that names /bin: look there too.
    true = Host().find_program("true") or ("/bin/true" if os.access("/bin/true", os.X_OK) else None)
    if true is None:
        return "no `true` program to spawn"
    argv, env = [true], {"PATH": "/usr/bin:/bin"}

    def body(n: int) -> None:
        for _ in range(n):
            pid = os.posix_spawn(true, argv, env)
            os.waitpid(pid, 0)

    return SimpleOp(_timed(body, WALL), clock="wall", note=f"posix_spawn {true} + wait")


def _pingpong(ctx: Context) -> Op | str:
    """A 1-byte round trip between two processes on two vCPUs: wake-up IPIs and halts."""
    cpus = ctx.cpus
    p2c_r, p2c_w = os.pipe()
    c2p_r, c2p_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: echo every byte until the parent closes its end
        try:
            os.close(p2c_w)
            os.close(c2p_r)
            if len(cpus) >= 2:
                os.sched_setaffinity(0, {cpus[1]})
            while os.read(p2c_r, 1):
                os.write(c2p_w, b"x")
        finally:
            os._exit(0)
    os.close(p2c_r)
    os.close(c2p_w)
    before = os.sched_getaffinity(0) if cpus else None
    if len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[0]})

    def body(n: int) -> None:
        for _ in range(n):
            os.write(p2c_w, b"x")
            os.read(c2p_r, 1)

    def cleanup() -> None:
        os.close(p2c_w)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        os.close(c2p_r)
        if before is not None:
            os.sched_setaffinity(0, before)

    note = (
        f"pipe round trip between vCPUs {cpus[0]} and {cpus[1]}"
        if len(cpus) >= 2
        else "one vCPU only: both processes share it (no cross-vCPU IPI)"
    )
    return SimpleOp(
        _timed(body, WALL), unit="ns/round-trip", clock="wall", note=note, cleanup=cleanup
    )


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _sleep(_ctx: Context) -> Op | str:
    libc = _libc()
    old_slack: int | None = None
    if libc is not None:
        old_slack = int(libc.prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0))
        if old_slack < 0 or libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0) != 0:
            old_slack = None
    seconds = SLEEP_NS / 1e9

    def run(n: int) -> float:
        start = WALL()
        for _ in range(n):
            time.sleep(seconds)
        # The cost is what a sleep takes beyond the time asked: timer and halt exits.
        return max(float(WALL() - start) - n * SLEEP_NS, 0.0)

    def cleanup() -> None:
        if libc is not None and old_slack is not None:
            libc.prctl(PR_SET_TIMERSLACK, old_slack, 0, 0, 0)

    slack = "timer slack 1 ns" if old_slack is not None else "default timer slack (prctl failed)"
    note = f"overshoot of a 50 us sleep, {slack}"
    return SimpleOp(run, unit="ns/op", clock="wall", note=note, cleanup=cleanup)


def _clock(ctx: Context) -> Op | str:
    read = time.clock_gettime_ns
    mono = time.CLOCK_MONOTONIC

    def body(n: int) -> None:
        for _ in range(n):
            read(mono)

    return SimpleOp(_timed(body), note=f"clock_gettime(CLOCK_MONOTONIC), {ctx.clocksource}")


# -- I/O ---------------------------------------------------------------------------------------


def mount_of(path: str, mounts: str) -> tuple[str, str, str] | None:
    """(mount point, file system type, device) of the mount holding `path`, from /proc/mounts."""
    best: tuple[str, str, str] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, fields[2], fields[0])
    return best


#: File systems where fsync reaches no device: the number says nothing about I/O.
NO_DEVICE_FS = frozenset({"tmpfs", "ramfs", "rootfs", "devtmpfs", "overlay"})


def _fsync(ctx: Context) -> Op | str:
    if ctx.scratch is None:
        return "no writable directory for a scratch file"
    host = Host()
    try:
        # O_EXCL with a random name: safe in a world-writable directory.
        scratch = host.scratch_file(ctx.scratch, prefix=".nestctl-bench-")
    except OSError as exc:
        return f"cannot create a scratch file in {ctx.scratch}: {exc.strerror}"
    mounts = host.read("/proc/mounts").text
    mount = mount_of(os.path.realpath(ctx.scratch), mounts) if mounts is not None else None
    where = f"{ctx.scratch} on {mount[1]} ({mount[2]})" if mount else ctx.scratch
    if mount and mount[1] in NO_DEVICE_FS:
        where += ": no block device, fsync reaches no disk"
    fd = scratch.fileno()

    def body(n: int) -> None:
        for _ in range(n):
            os.pwrite(fd, b"x", 0)
            os.fsync(fd)

    def cleanup() -> None:
        with contextlib.suppress(OSError):
            scratch.close()  # removes it

    note = f"1-byte write + fsync, {where}"
    return SimpleOp(_timed(body, WALL), clock="wall", note=note, cleanup=cleanup)


WORKLOADS: tuple[Workload, ...] = (
    Workload("cpu", "no_exit", "pure CPU loop: no exits", _cpu),
    Workload("syscall", "no_exit", "system call (getppid): no exit", _syscall),
    Workload("rdtsc", "no_exit", "rdtsc loop: the no-exit control for cpuid", _rdtsc),
    Workload("page_touch_warm", "no_exit", "touch already mapped pages", _page_touch_warm),
    Workload("cpuid", "exit_heavy", "cpuid loop: a forced VM exit per instruction", _cpuid),
    Workload("pingpong", "exit_heavy", "cross-vCPU pipe ping-pong: IPIs, halts", _pingpong),
    Workload("sleep", "exit_heavy", "50 us sleeps: timer and halt exits", _sleep),
    Workload("page_touch_cold", "kernel", "fresh-page touch: page faults", _page_touch_cold),
    Workload("fork_exec", "kernel", "posix_spawn + wait: page tables, TLB shootdowns", _fork_exec),
    Workload("clock", "config", "clock reads: exit only with hpet/acpi_pm", _clock),
    Workload("fsync", "io", "1-byte write + fsync: device emulation", _fsync),
)

GROUPS: dict[str, str] = {w.name: w.group for w in WORKLOADS}
