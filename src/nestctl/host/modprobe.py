"""modprobe.d, read the way kmod reads it, and `nested` after the next reboot.

kmod (libkmod-config.c) collects ``*.conf`` files from the directories below, in this order; a file
name already seen in an earlier directory hides the same name in a later one. All files are then
parsed in lexical order of their *names* (not of their directories). A logical line may continue
over physical lines with a trailing backslash; a line starting with ``#`` is a comment. Module names
are normalised (``kvm-intel`` == ``kvm_intel``). Options for one module are concatenated in that
order and the kernel command line's ``module.param=`` words are appended last, so a later value of
the same parameter wins and the command line wins over every file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from nestctl.host.kcmdline import CmdlineParam
from nestctl.machine import ReadStatus

if TYPE_CHECKING:
    from nestctl.machine import Host

MODPROBE_DIRS: tuple[str, ...] = (
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/lib/modprobe.d",
    "/usr/lib/modprobe.d",
)

#: Keywords kmod understands; anything else is a line it ignores with an error.
KEYWORDS = frozenset({"alias", "blacklist", "options", "install", "remove", "softdep"})


def module_name(name: str) -> str:
    return name.replace("-", "_")


class Directive(NamedTuple):
    """One logical line of a modprobe.d file."""

    path: str
    lineno: int  # first physical line (1-based)
    last_lineno: int  # last physical line (differs when continued with backslashes)
    keyword: str  # "options", "install", ... or the bad word kmod ignores
    module: str | None  # normalised module name, if the line names one
    args: tuple[str, ...]  # the words after the module name
    valid: bool  # kmod accepts the line

    @property
    def where(self) -> str:
        return f"{self.path}:{self.lineno}"

    def option_values(self, param: str) -> list[str | None]:
        """Values this `options` line gives `param`, in order (None: bare word, no "=")."""
        if self.keyword != "options" or not self.valid:
            return []
        values: list[str | None] = []
        for word in self.args:
            key, eq, value = word.partition("=")
            if key.replace("-", "_") == param:
                values.append(value if eq else None)
        return values


def logical_lines(text: str) -> list[tuple[int, int, str]]:
    """(first line, last line, text) of each logical line, joining backslash continuations."""
    out: list[tuple[int, int, str]] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not buf:
            start = number
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        out.append((start, number, "".join(buf)))
        buf = []
    if buf:
        out.append((start, start + len(buf) - 1, "".join(buf)))
    return out


def parse_modprobe(text: str, path: str) -> list[Directive]:
    """Every non-comment logical line of one file (bad lines included, marked invalid)."""
    directives: list[Directive] = []
    for first, last, line in logical_lines(text):
        if not line.strip() or line.lstrip().startswith("#"):
            continue  # kmod ignores an indented "#" line as a bad line: a comment all the same
        words = line.replace("\t", " ").split(" ")
        words = [w for w in words if w]
        if not words:
            continue
        keyword, rest = words[0], words[1:]
        module = module_name(rest[0]) if rest else None
        args = tuple(rest[1:])
        if keyword == "blacklist":
            valid = module is not None
        elif keyword in KEYWORDS:
            valid = module is not None and bool(args)
        else:
            valid, module = False, None
        directives.append(Directive(path, first, last, keyword, module, args, valid))
    return directives


class ConfigFile(NamedTuple):
    path: str  # host path of the file modprobe reads
    hides: tuple[str, ...] = ()  # same-named files in later directories it hides


class ModprobeConfig(NamedTuple):
    """The effective modprobe.d configuration: files in the order kmod applies them."""

    files: tuple[ConfigFile, ...]
    directives: tuple[Directive, ...]
    unreadable: tuple[str, ...] = ()  # files (or directories) modprobe would read but we could not
    masked: tuple[str, ...] = ()  # symlinks to /dev/null: an admin's mask, read as empty

    def for_module(self, module: str) -> list[Directive]:
        mod = module_name(module)
        return [d for d in self.directives if d.module == mod]

    def path_of(self, name: str) -> str | None:
        """The effective file of that name (the one modprobe reads), if any."""
        for f in self.files:
            if f.path.rsplit("/", 1)[-1] == name:
                return f.path
        return None


def collect_config_files(host: Host, unlisted: list[str] | None = None) -> list[ConfigFile]:
    """The ``*.conf`` files kmod would read, sorted by name, earlier directories hiding later.

    Directories that exist but cannot be listed are appended to `unlisted`.
    """
    chosen: dict[str, str] = {}
    hidden: dict[str, list[str]] = {}
    for directory in MODPROBE_DIRS:
        listing = host.glob(directory, "*.conf")
        if not listing.ok and listing.status is not ReadStatus.MISSING and unlisted is not None:
            unlisted.append(directory)
        for path in listing.paths():
            name = path.rsplit("/", 1)[-1]
            if name.startswith(".") or host.is_dir(path):
                continue
            if name in chosen:
                hidden.setdefault(name, []).append(path)
            else:
                chosen[name] = path
    return [ConfigFile(chosen[n], tuple(hidden.get(n, ()))) for n in sorted(chosen)]


def is_masked(host: Host, path: str) -> bool:
    """A symlink to /dev/null: the admin's way to switch a file off (modprobe reads it as empty)."""
    target = host.readlink(path)
    if target is None:
        return False
    import posixpath  # noqa: PLC0415 - only for the rare symlinked file

    return posixpath.normpath(posixpath.join(posixpath.dirname(path), target)) == "/dev/null"


def read_config(host: Host) -> ModprobeConfig:
    unreadable: list[str] = []
    files = collect_config_files(host, unreadable)
    directives: list[Directive] = []
    masked: list[str] = []
    for f in files:
        read = host.read(f.path)
        if read.ok and read.text is not None:
            directives.extend(parse_modprobe(read.text, f.path))
        elif read.status is ReadStatus.NOT_A_FILE and is_masked(host, f.path):
            masked.append(f.path)
        elif read.status is not ReadStatus.MISSING:
            unreadable.append(f.path)
    return ModprobeConfig(tuple(files), tuple(directives), tuple(unreadable), tuple(masked))


class Setting(NamedTuple):
    """One place that sets a parameter: a modprobe.d line or the kernel command line."""

    value: str | None  # raw value (None: bare word)
    where: str  # "/etc/modprobe.d/x.conf:3" or "kernel command line"
    directive: Directive | None = None


class Resolution(NamedTuple):
    """What a module parameter will be at the next load, and who decides it."""

    raw: str | None  # the winning raw value (None when nothing sets it or a bare word)
    decided_by: str | None  # file:line, "kernel command line", or None when nothing sets it
    settings: tuple[Setting, ...] = ()  # every setting, in the order applied
    from_cmdline: bool = False

    @property
    def set_explicitly(self) -> bool:
        return bool(self.settings)


def resolve_param(
    config: ModprobeConfig, cmdline: list[CmdlineParam], module: str, param: str
) -> Resolution:
    """The winning setting of `module.param`: the last modprobe.d value, then the command line."""
    mod = module_name(module)
    settings: list[Setting] = []
    for d in config.for_module(mod):
        for value in d.option_values(param):
            settings.append(Setting(value, d.where, d))
    for p in cmdline:
        if p.module == mod and p.param == param:
            settings.append(Setting(p.value, "kernel command line"))
    if not settings:
        return Resolution(None, None)
    last = settings[-1]
    return Resolution(last.value, last.where, tuple(settings), last.directive is None)
