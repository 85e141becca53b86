"""A fake `modprobe` acting on a fake host tree, as the real one acts on /sys.

It is written independently of nestctl's own modprobe.d resolver (a plain last-match over the
/etc/modprobe.d files), so a test does not check the resolver against itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from nestctl.machine import CommandResult, CommandStatus


@dataclass
class FakeModprobe:
    root: Path
    module: str = "kvm_intel"
    in_use: bool = False  # `modprobe -r` fails like a module held by VMs
    ignore_options: bool = False  # load "succeeds" but the value does not change
    fail_load: int = 0  # how many loads fail before one succeeds
    loaded: bool = True
    log: list[tuple[str, ...]] = field(default_factory=list)
    before: str | None = None  # the value shown before the last unload

    @property
    def nested_file(self) -> Path:
        return self.root / f"sys/module/{self.module}/parameters/nested"

    def configured(self) -> str:
        pattern = re.compile(rf"^options\s+{self.module.replace('_', '[-_]')}\s+(.*)$")
        value = "Y"
        for conf in sorted((self.root / "etc/modprobe.d").glob("*.conf")):
            for line in conf.read_text().splitlines():
                match = pattern.match(line.strip())
                if match:
                    for word in match.group(1).split():
                        if word.startswith("nested="):
                            value = word.split("=", 1)[1]
        on = value[:1] in ("Y", "y", "1") or value.lower() == "on"
        if self.module == "kvm_amd":
            return "1" if on else "0"
        return "Y" if on else "N"

    def __call__(self, argv: tuple[str, ...]) -> CommandResult | None:
        self.log.append(argv)
        if argv[:2] == ("modprobe", "-r"):
            if self.in_use:
                return CommandResult(
                    argv,
                    CommandStatus.FAILED,
                    1,
                    "",
                    f"modprobe: FATAL: Module {self.module} is in use.\n",
                )
            self.loaded = False
            self.before = self.nested_file.read_text()
            self.nested_file.unlink()
            return CommandResult(argv, CommandStatus.OK, 0)
        if argv[:1] == ("modprobe",):
            if self.fail_load:
                self.fail_load -= 1
                return CommandResult(
                    argv,
                    CommandStatus.FAILED,
                    1,
                    "",
                    f"modprobe: ERROR: could not insert '{self.module}'\n",
                )
            self.loaded = True
            self.nested_file.parent.mkdir(parents=True, exist_ok=True)
            if self.ignore_options and self.before is not None:
                self.nested_file.write_text(self.before)
            else:
                self.nested_file.write_text(self.configured() + "\n")
            return CommandResult(argv, CommandStatus.OK, 0)
        return None
