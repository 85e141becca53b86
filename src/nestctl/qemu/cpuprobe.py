"""Ask a real QEMU which of svm/vmx/hypervisor a ``-cpu`` value yields, without booting a guest.

QEMU is started frozen (``-S``) with no devices and its vCPU's properties are read over QMP
(``query-cpus-fast`` -> ``qom-get``). This applies the accelerator's filtering and fails with the
same error text as a real start, which ``query-cpu-model-expansion`` alone does not
(``../shared/reference/qemu-e2e.md``, "Asking QEMU without booting a guest").

What the answer is not: under TCG (the default here, and the only accelerator the tests use) QEMU
never offers vmx, named models keep their svm bit and the vendor is the model's own. Under KVM,
QEMU turns svm off for built-in models unless ``+svm`` is given, the vendor follows the host CPU,
and the host CPU and kvm_intel/kvm_amd ``nested`` filter further; ``host`` needs KVM at all. The
oracle reports what QEMU said; `nestctl.vm.exposure` combines it with KVM's rules and the host's
``nested``. `table_answer` is the built-in fallback, written with KVM semantics.

Only QEMU's own refusal of the -cpu value (its error texts, `cpu_refusal`) is an answer, and only
that is cached. A QEMU that fails for any other reason (its socket cannot be bound, /tmp is full,
no memory, missing firmware, killed) could not be asked: the answer is the table's, with
``unasked`` saying why, and nothing is cached. Oracle QEMUs run in their own process group with a
parent-death signal and are always reaped, also when nestctl gets SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from types import FrameType
from typing import IO, TYPE_CHECKING

from nestctl.machine import Host
from nestctl.machine.processes import Popen, SubprocessError, TimeoutExpired
from nestctl.qemu.answer import CpuAnswer, is_cpu_refusal
from nestctl.qemu.cpuvalue import feature_name, parse_cpu_arg
from nestctl.qemu.qmp import QmpClient, QmpError

if TYPE_CHECKING:
    from nestctl.qemu.cache import CpuAnswerCache

QEMU_BINARY = "qemu-system-x86_64"

#: Said with every answer QEMU gave under TCG, so no reader takes it for KVM's answer.
TCG_CAVEATS = (
    "answer from QEMU under TCG (software emulation): TCG never offers vmx",
    "under KVM, built-in models lose svm unless +svm is given, and the vendor follows the host CPU",
    "under KVM the host CPU and the kvm_intel/kvm_amd nested parameter filter vmx/svm further",
)

#: Models QEMU defines with VMX (they keep it under KVM when the host offers it).
_VMX_MODELS = frozenset({"coreduo", "core2duo"})
_AMD_MODEL_PREFIXES = ("EPYC", "Opteron", "phenom", "athlon")
_PASSTHROUGH = frozenset({"host", "max"})
_INTEL_IDS = ("intel", "genuineintel")
_AMD_IDS = ("amd", "authenticamd", "hygongenuine")


# -- the -cpu value -------------------------------------------------------------------------


def _item_name(item: str) -> str:
    return feature_name(item.lstrip("+-").partition("=")[0])


def _tcg_cannot_answer(name: str) -> bool:
    """Parts of a Proxmox -cpu value TCG refuses or cannot model (see `tcg_askable`)."""
    return name in ("enforce", "nested-virt") or name.startswith(
        ("hv-", "kvm-", "kvmclock", "vmx-", "cet-")
    )


def tcg_askable(cpu_arg: str) -> str:
    """The part of a -cpu value QEMU can answer for under TCG.

    Dropped, and why:
    * ``hv_*`` / ``hv-*`` Hyper-V enlightenments: need KVM; TCG refuses some outright
      ("kernel doesn't allow setting HyperV VP_INDEX").
    * ``kvm_*`` / ``kvm-*`` paravirt features (kvm_pv_unhalt, kvm_pv_eoi, ...) and ``kvmclock*``:
      KVM's own CPUID leaves, meaningless under TCG. (``kvm=off``, which hides KVM's signature, is a
      plain CPU property and is kept.)
    * ``enforce``: Proxmox strings ask for features TCG lacks (aes, pcid, ...); with ``enforce``
      QEMU would refuse instead of filtering, and we want what the vCPU gets.
    * ``nested-virt``: a Proxmox pseudo-flag ("Property '...nested-virt' not found"); Proxmox
      resolves it into +vmx/+svm before building -cpu.
    * ``vmx-*`` sub-features (e.g. ``-vmx-mbec``): TCG emulates no VMX at all, and the names vary
      between QEMU versions (7.2 does not know vmx-mbec).
    * ``cet-*`` (cet-ss, cet-ibt): TCG emulates no CET, and QEMU before 10 does not know the names.
    None of these bears on svm, vmx or the hypervisor bit as TCG reports them.
    """
    value = parse_cpu_arg(cpu_arg)
    kept = [item for item in value.items if not _tcg_cannot_answer(_item_name(item))]
    return ",".join([value.model, *kept])


def _dropped(cpu_arg: str) -> tuple[str, ...]:
    return tuple(i for i in parse_cpu_arg(cpu_arg).items if _tcg_cannot_answer(_item_name(i)))


# -- the built-in table (KVM semantics) -------------------------------------------------------


def _vendor_kind(vendor: str | None) -> str | None:
    if vendor is None:
        return None
    v = vendor.strip().lower()
    if v in _INTEL_IDS:
        return "intel"
    if v in _AMD_IDS:
        return "amd"
    return None


def table_answer(cpu_arg: str, host_vendor: str | None) -> CpuAnswer:
    """What the guest gets under KVM, by rule, with no QEMU to ask.

    `host`/`max` pass the host's own flag through (vmx on Intel, svm on AMD; None when the vendor
    is unknown); built-in models carry no vmx (except coreduo/core2duo) and, under KVM, no svm
    unless ``+svm``; explicit ``+vmx``/``+svm``/``-vmx``/``-svm`` follow QEMU's precedence; KVM can
    only offer the host's own flag. Whether KVM offers it at all (``nested``) is the host layer's.
    """
    value = parse_cpu_arg(cpu_arg)
    feats = value.features()
    kind = _vendor_kind(host_vendor)
    model = value.model
    if model in _PASSTHROUGH:
        vmx: bool | None = None if kind is None else kind == "intel"
        svm: bool | None = None if kind is None else kind == "amd"
    else:
        vmx = model in _VMX_MODELS
        svm = False  # kvm_default_props: svm off for built-in models under KVM
    if "vmx" in feats:
        vmx = feats["vmx"]
    if "svm" in feats:
        svm = feats["svm"]
    # KVM offers only the host vendor's own extension.
    if kind == "amd" and vmx:
        vmx = False
    if kind == "intel" and svm:
        svm = False
    notes = ["built-in table (KVM semantics); no QEMU answered"]
    if model in _PASSTHROUGH and kind is None:
        notes.append("host CPU vendor unknown: cannot tell which flag host/max passes through")
    return CpuAnswer(
        cpu_arg=cpu_arg,
        vmx=vmx,
        svm=svm,
        hypervisor=feats.get("hypervisor", True),
        vendor=None,
        source="table",
        accel="kvm",
        notes=tuple(notes),
    )


# -- asking QEMU ------------------------------------------------------------------------------

#: "TCG doesn't support requested feature: CPUID.01H:ECX.vmx [bit 5]". Only CPUID words: the
#: dozens of VMX capability bits (MSR(48xH).vmx-*) that follow a filtered vmx add nothing.
_FILTERED_RE = re.compile(r"requested feature: (CPUID\S+) \[bit \d+\]", re.ASCII)
_PROGRAM_PREFIX_RE = re.compile(r"^[\w./-]*qemu-system-\w+: ", re.ASCII)


def binary_identity(binary: str) -> str | None:
    """Path, size, mtime and inode of the QEMU binary: changes whenever the package is upgraded.

    Cheaper than `--version` (no process per run) and as exact: dpkg replaces the file on upgrade.
    """
    try:
        real = os.path.realpath(binary)
        st = os.stat(real)
    except OSError:
        return None
    return f"{real}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"


@dataclass
class _Running:
    asked: str
    proc: Popen[bytes]
    workdir: str
    errfile: IO[bytes]

    @property
    def socket(self) -> str:
        return os.path.join(self.workdir, "qmp.sock")

    def stderr_text(self) -> str:
        self.errfile.flush()
        self.errfile.seek(0)
        return self.errfile.read().decode("utf-8", errors="replace")


def spawn_qemu(argv: list[str], errfile: IO[bytes]) -> Popen[bytes]:
    """Start QEMU through the door (`Host.spawn`): QEMU must stay up, frozen, while we talk to
    it over its socket, so it is spawned, not `run`. Tests spy on this function.

    Its own process group (a Ctrl-C on nestctl's terminal does not reach it half-way; we stop it
    ourselves) and a parent-death signal (it never outlives nestctl). The QEMU asked is this
    machine's, whatever root is inspected: the door is the local one.
    """
    return Host().spawn(argv, stderr=errfile, own_group=True, tied_to_parent=True)


@contextlib.contextmanager
def _reaped_on_sigterm(running: list[_Running], workdirs: list[str]) -> Iterator[None]:
    """While QEMUs run: on SIGTERM stop and reap them, then let SIGTERM do what it did before.

    Python's default SIGTERM ends the process without running `finally`; the parent-death signal
    would still kill QEMU, but its work directory and socket would stay behind.
    """
    import threading  # noqa: PLC0415 - only when QEMU is asked

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; the parent-death signal still holds
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None:  # installed outside Python: the closest we can restore is the default
        previous = signal.SIG_DFL

    def on_term(signum: int, frame: FrameType | None) -> None:
        for r in list(running):
            QemuCpuOracle.stop(r)
        running.clear()
        # A QEMU still being started (SIGTERM during its fork/exec) is not in `running` yet:
        # its work directory is known from before the start, and goes too.
        for workdir in workdirs:
            Host().remove_tree(workdir)
        signal.signal(signal.SIGTERM, previous)
        if callable(previous):
            previous(signum, frame)
        else:
            os.kill(os.getpid(), signal.SIGTERM)  # the default (or ignored) disposition

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _errors(stderr: str) -> list[str]:
    lines = [_PROGRAM_PREFIX_RE.sub("", ln).strip() for ln in stderr.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("warning:")]


def cpu_refusal(returncode: int | None, stderr: str) -> str | None:
    """QEMU's refusal of the -cpu value, or None when it failed for another reason.

    QEMU stops at its first fatal error with exit code 1: that error must be about the CPU.
    A signal (killed, OOM killer), another exit code, or an error about anything else (the QMP
    socket, memory, firmware) says nothing about the -cpu value.
    """
    if returncode != 1:
        return None
    errors = _errors(stderr)
    if not errors or not is_cpu_refusal(errors[0]):
        return None
    return "; ".join(errors)


def _failure(returncode: int | None, stderr: str) -> str:
    """Why a QEMU that was not refusing the -cpu value stopped, in one line."""
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"QEMU was killed by {name}"
    errors = _errors(stderr)
    why = errors[0] if errors else "no message"
    return f"QEMU exited with code {returncode}: {why[:200]}"


class QemuCpuOracle:
    """Asks the installed QEMU; falls back to `table_answer` when there is none or it fails."""

    def __init__(
        self,
        binary: str | None = None,
        *,
        cache: CpuAnswerCache | None = None,
        accel: str = "tcg",
        timeout: float = 5.0,
        parallel: int = 4,
    ) -> None:
        self.binary = binary if binary is not None else Host().find_program(QEMU_BINARY)
        self.cache = cache
        self.accel = accel
        self.timeout = timeout
        self.parallel = max(1, parallel)
        self.started = 0  # QEMU processes started by this oracle (for reports and tests)
        self._version: str | None = None

    @property
    def available(self) -> bool:
        return self.binary is not None and binary_identity(self.binary) is not None

    def ask(self, cpu_arg: str, vendor_hint: str | None = None) -> CpuAnswer:
        """QEMU's answer for one value; `vendor_hint` (host vendor) serves the table fallback."""
        return self.ask_many([cpu_arg], vendor_hint)[cpu_arg]

    def ask_many(
        self, cpu_args: Iterable[str], vendor_hint: str | None = None
    ) -> dict[str, CpuAnswer]:
        """Answers for many values: QEMU starts at most once per distinct askable value, and not
        at all for values the cache holds."""
        wanted = list(dict.fromkeys(cpu_args))
        identity = binary_identity(self.binary) if self.binary else None
        if identity is None:
            why = f"{QEMU_BINARY} not found" if not self.binary else f"{self.binary} is missing"
            return {a: self._fallback(a, vendor_hint, why, unasked=True) for a in wanted}
        answers: dict[str, CpuAnswer] = {}
        pending: dict[str, list[str]] = {}  # askable value -> cpu_args that map to it
        for arg in wanted:
            if self.accel == "tcg" and parse_cpu_arg(arg).model == "host":
                answers[arg] = self._fallback(arg, vendor_hint, "'host' needs KVM; TCG cannot say")
                continue
            asked = tcg_askable(arg) if self.accel == "tcg" else arg
            cached = self.cache.get(identity, self.accel, asked) if self.cache else None
            if cached is not None:
                answers[arg] = self._stamp(cached, arg)
            else:
                pending.setdefault(asked, []).append(arg)
        fresh = self._probe_all(list(pending))
        for asked, result in fresh.items():
            for arg in pending[asked]:
                if isinstance(result, CpuAnswer):
                    answers[arg] = self._stamp(result, arg)
                else:
                    answers[arg] = self._fallback(arg, vendor_hint, result, unasked=True)
            # Only QEMU's answers are kept: a QEMU that could not be asked is asked next time.
            if isinstance(result, CpuAnswer) and self.cache is not None:
                self.cache.put(identity, self.accel, asked, result)
        if self.cache is not None and fresh:
            self.cache.save()
        return {a: answers[a] for a in wanted}

    # -- internals -------------------------------------------------------------------------

    def _stamp(self, answer: CpuAnswer, cpu_arg: str) -> CpuAnswer:
        dropped = _dropped(cpu_arg) if self.accel == "tcg" else ()
        return replace(answer, cpu_arg=cpu_arg, dropped=dropped)

    @staticmethod
    def _fallback(
        cpu_arg: str, vendor_hint: str | None, why: str, *, unasked: bool = False
    ) -> CpuAnswer:
        answer = table_answer(cpu_arg, vendor_hint)
        return replace(answer, notes=(*answer.notes, why), unasked=why if unasked else None)

    def _probe_all(self, values: list[str]) -> dict[str, CpuAnswer | str]:
        """Probe in batches of `parallel` processes: start them all, then ask each."""
        out: dict[str, CpuAnswer | str] = {}
        for start in range(0, len(values), self.parallel):
            batch = values[start : start + self.parallel]
            running: list[_Running] = []
            workdirs: list[str] = []  # every work directory made, recorded before its QEMU starts
            with _reaped_on_sigterm(running, workdirs):
                try:
                    for asked in batch:
                        started = self._start(asked, workdirs)
                        if isinstance(started, str):
                            out[asked] = started
                        else:
                            running.append(started)
                    for r in list(running):
                        out[r.asked] = self._query(r)
                finally:
                    for r in running:
                        self.stop(r)
                    running.clear()
                    for workdir in workdirs:
                        Host().remove_tree(workdir)
        # A refused value gives no QMP greeting: name the version another process reported.
        for asked, result in out.items():
            if isinstance(result, CpuAnswer) and result.qemu_version is None and self._version:
                out[asked] = replace(result, source=self._source(None), qemu_version=self._version)
        return out

    def _start(self, asked: str, workdirs: list[str]) -> _Running | str:
        assert self.binary is not None
        try:
            workdir = Host().make_scratch_dir("nestctl-qmp-")
        except OSError as exc:  # a full or read-only /tmp
            return f"cannot create a work directory for QEMU: {exc.strerror or exc}"
        workdirs.append(workdir)
        try:
            errfile = Host().scratch_file(workdir)
        except OSError as exc:
            Host().remove_tree(workdir)
            return f"cannot create a work file for QEMU: {exc.strerror or exc}"
        sock = os.path.join(workdir, "qmp.sock")
        argv = [
            self.binary,
            "-accel",
            self.accel,
            "-machine",
            "pc",
            "-nodefaults",
            "-display",
            "none",
            "-S",
            "-cpu",
            asked,
            "-qmp",
            f"unix:{sock},server=on,wait=off",
        ]
        try:
            proc = spawn_qemu(argv, errfile)
        except (OSError, SubprocessError) as exc:
            errfile.close()
            Host().remove_tree(workdir)
            return f"cannot start {self.binary}: {getattr(exc, 'strerror', None) or exc}"
        except BaseException:  # SIGTERM's own handler, Ctrl-C: the caller removes the directory
            errfile.close()
            raise
        self.started += 1
        return _Running(asked, proc, workdir, errfile)

    def _query(self, r: _Running) -> CpuAnswer | str:
        try:
            with QmpClient.connect(
                r.socket, timeout=self.timeout, alive=lambda: r.proc.poll() is None
            ) as qmp:
                cpus = qmp.execute("query-cpus-fast")
                path = cpus[0]["qom-path"]
                props = {
                    name: qmp.execute("qom-get", {"path": path, "property": name})
                    for name in ("vmx", "svm", "hypervisor", "vendor")
                }
                version = qmp.version
        except QmpError as exc:
            try:
                rc = r.proc.wait(timeout=2.0)
            except TimeoutExpired:
                return f"QEMU did not answer over QMP: {exc}"
            refusal = cpu_refusal(rc, r.stderr_text())
            if refusal is None:
                return _failure(rc, r.stderr_text())
            # QEMU refused the value: a real answer, with QEMU's own words.
            return CpuAnswer(
                cpu_arg=r.asked,
                vmx=None,
                svm=None,
                hypervisor=None,
                error=refusal,
                source=self._source(None),
                qemu_version=self._version,
                accel=self.accel,
                asked=r.asked,
                notes=TCG_CAVEATS if self.accel == "tcg" else (),
            )
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            return f"unexpected QMP reply: {exc!r}"
        if not all(isinstance(props[k], bool) for k in ("vmx", "svm", "hypervisor")):
            return f"unexpected QMP reply: {props!r:.120}"
        if not isinstance(props["vendor"], str):
            return f"unexpected QMP reply: vendor {props['vendor']!r:.40}"
        filtered = tuple(
            m.group(1).rsplit(".", 1)[-1] for m in _FILTERED_RE.finditer(r.stderr_text())
        )
        return CpuAnswer(
            cpu_arg=r.asked,
            vmx=props["vmx"],
            svm=props["svm"],
            hypervisor=props["hypervisor"],
            vendor=props["vendor"] or None,
            filtered=filtered,
            source=self._source(version),
            qemu_version=version,
            accel=self.accel,
            asked=r.asked,
            notes=TCG_CAVEATS if self.accel == "tcg" else (),
        )

    def _source(self, version: str | None) -> str:
        # A refused value gives no greeting: name the version another probe saw, if any.
        version = version or self._version
        if version:
            self._version = version
            return f"qemu {version.split(' ', 1)[0]} {self.accel}"
        return f"qemu {self.accel}"

    @staticmethod
    def stop(r: _Running) -> None:
        """Kill QEMU's whole process group, reap it, remove its work directory."""
        if r.proc.returncode is None:  # not reaped yet: its pid (= group id) is still ours
            with contextlib.suppress(OSError):
                os.killpg(r.proc.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutExpired):
            r.proc.wait(timeout=5.0)
        with contextlib.suppress(OSError):
            r.errfile.close()
        Host().remove_tree(r.workdir)
