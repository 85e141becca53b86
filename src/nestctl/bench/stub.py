"""A few bytes of x86-64 machine code in executable memory, called through ctypes.

Python cannot execute `cpuid` or `rdtsc` itself, and the benchmarks need neither root nor a
compiler, so the loops are hand-assembled here (System V calling convention, 64-bit):

* ``cpuid_loop(n)``: n times ``cpuid`` leaf 0 (a VM exit at every level of virtualization);
* ``rdtsc_loop(n)``: n times ``rdtsc`` (no exit: the control for the loop above);
* ``rdtsc()``: the time-stamp counter, to learn the TSC frequency;
* ``cpuid(leaf, out)``: eax, ebx, ecx, edx of one leaf (0x40000000 names the hypervisor).

Executable memory is refused where SELinux ``deny_execmem``, PaX or the kernel's
memory-deny-write-execute forbid it; `load_stub` then returns the reason instead of a stub.
"""

from __future__ import annotations

import ctypes
import mmap
import platform
from collections.abc import Callable
from dataclasses import dataclass

# fmt: off
_CPUID_LOOP = bytes([
    0x53,                    # push rbx          (cpuid clobbers it; callee-saved)
    0x31, 0xC0,              # loop: xor eax, eax
    0x31, 0xC9,              # xor ecx, ecx
    0x0F, 0xA2,              # cpuid
    0x48, 0xFF, 0xCF,        # dec rdi
    0x75, 0xF5,              # jnz loop
    0x5B,                    # pop rbx
    0xC3,                    # ret
])
_RDTSC_LOOP = bytes([
    0x0F, 0x31,              # loop: rdtsc
    0x48, 0xFF, 0xCF,        # dec rdi
    0x75, 0xF9,              # jnz loop
    0xC3,                    # ret
])
_RDTSC = bytes([
    0x0F, 0x31,              # rdtsc
    0x48, 0xC1, 0xE2, 0x20,  # shl rdx, 32
    0x48, 0x09, 0xD0,        # or rax, rdx
    0xC3,                    # ret
])
_CPUID_REGS = bytes([
    0x53,                    # push rbx
    0x89, 0xF8,              # mov eax, edi      (leaf)
    0x31, 0xC9,              # xor ecx, ecx      (sub-leaf 0)
    0x0F, 0xA2,              # cpuid
    0x89, 0x06,              # mov [rsi], eax
    0x89, 0x5E, 0x04,        # mov [rsi+4], ebx
    0x89, 0x4E, 0x08,        # mov [rsi+8], ecx
    0x89, 0x56, 0x0C,        # mov [rsi+12], edx
    0x5B,                    # pop rbx
    0xC3,                    # ret
])
# fmt: on
_SLOT = 64  # each function starts on its own 64-byte boundary

Allocator = Callable[[int], mmap.mmap]


def exec_mmap(size: int) -> mmap.mmap:
    """Anonymous read-write-execute memory (raises OSError where that is refused)."""
    return mmap.mmap(-1, size, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)


@dataclass(frozen=True)
class Stub:
    cpuid_loop: Callable[[int], int]
    rdtsc_loop: Callable[[int], int]
    rdtsc: Callable[[], int]
    _cpuid_regs: Callable[[int, ctypes.Array[ctypes.c_uint32]], None]
    _keep: object  # the mapping must outlive the function pointers into it

    def cpuid(self, leaf: int) -> tuple[int, int, int, int]:
        regs = (ctypes.c_uint32 * 4)()
        self._cpuid_regs(leaf, regs)
        return regs[0], regs[1], regs[2], regs[3]

    def hypervisor_signature(self) -> str | None:
        """The 12-byte vendor of CPUID leaf 0x40000000 ("KVMKVMKVM", "TCGTCGTCGTCG", ...).

        Only meaningful when /proc/cpuinfo shows the hypervisor flag (callers check).
        """
        _eax, ebx, ecx, edx = self.cpuid(0x40000000)
        raw = b"".join(r.to_bytes(4, "little") for r in (ebx, ecx, edx))
        text = raw.rstrip(b"\x00").decode("ascii", errors="replace")
        return text if text.isprintable() and text else None


def load_stub(allocate: Allocator = exec_mmap) -> Stub | str:
    """The stub, or why it cannot exist here (not x86-64, executable memory refused)."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return f"cpuid and rdtsc need an x86-64 CPU (this is {machine or 'unknown'})"
    try:
        mem = allocate(4 * _SLOT)
    except (OSError, ValueError) as exc:
        return (
            "executable memory refused "
            f"({exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}): "
            "SELinux deny_execmem, PaX or memory-deny-write-execute forbid it"
        )
    for i, code in enumerate((_CPUID_LOOP, _RDTSC_LOOP, _RDTSC, _CPUID_REGS)):
        mem[i * _SLOT : i * _SLOT + len(code)] = code
    base = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    loop_type = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)
    regs_type = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32))
    return Stub(
        cpuid_loop=loop_type(base),
        rdtsc_loop=loop_type(base + _SLOT),
        rdtsc=ctypes.CFUNCTYPE(ctypes.c_uint64)(base + 2 * _SLOT),
        _cpuid_regs=regs_type(base + 3 * _SLOT),
        _keep=mem,
    )
