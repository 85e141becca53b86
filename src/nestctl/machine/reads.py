"""What probing one path gave: a read's text, a path's presence, a directory's entries, or why not.

Only OK and MISSING are answers; every other status is "could not check", and the records refuse a
truth value so no caller can turn that into "no".
"""

from __future__ import annotations

import errno
from enum import StrEnum
from typing import NamedTuple

#: Largest file we read: sysfs and config files are small; a huge file is a mistake, not data.
MAX_READ_BYTES = 8 * 1024 * 1024


class ReadStatus(StrEnum):
    """How a probe of one path ended: a fact (OK, MISSING) or unknown with its reason.

    Shared by reads, existence checks and directory listings. Only OK and MISSING are answers;
    every other status means "could not check", which callers must never turn into "no".
    """

    OK = "ok"
    MISSING = "missing"
    UNREADABLE = "unreadable"  # an I/O error or anything else that stopped the read
    NOT_PERMITTED = "not-permitted"  # EACCES/EPERM: another user (root) could check
    TIMED_OUT = "timed-out"
    COULD_NOT_RUN = "could-not-run"  # the tool or agent that would check could not be used
    TRUNCATED = "truncated"  # larger than the read limit: `text` holds only part of it
    NOT_A_FILE = "not-a-file"  # not the kind asked for: a directory, FIFO or device to `read`
    UNTRUSTED = "untrusted"  # a state file of ours that someone else could have written

    @property
    def known(self) -> bool:
        """True for a checked answer (OK or MISSING)."""
        return self is ReadStatus.OK or self is ReadStatus.MISSING


def _no_truth_value(record: object) -> bool:
    # Probe records are never true or false on their own: "if host.exists(p)" would make
    # "could not check" read as "no". Callers say which of `present`/`ok`/`names` they mean.
    raise TypeError(f"{type(record).__name__} has no truth value; use its status")


class FileRead(NamedTuple):
    """What reading one host file gave: text, or why there is none (missing is not unreadable).

    `text` is set for OK and for TRUNCATED (then only the part read: the start for `read`,
    the end for `read_tail`).
    """

    path: str
    status: ReadStatus
    text: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is ReadStatus.OK

    def __bool__(self) -> bool:
        return _no_truth_value(self)

    def describe(self) -> str:
        """`path: status (error)` for messages."""
        return _describe(self.path, self.status, self.error)


class Record:
    """A small immutable record: slots, equality, hash and repr by field.

    Not a NamedTuple: creating a NamedTuple class costs about 0.25 ms at import, and
    `nestctl host --json` must start fast. Subclasses name their fields in `__slots__` and set
    them with `_set` in `__init__`.
    """

    __slots__: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _values(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Record)
            and type(other) is type(self)
            and (self._values() == other._values())
        )

    def __hash__(self) -> int:
        return hash((type(self), tuple(self._values().items())))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._values().items())
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return _rebuild, (type(self), self._values())

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)


def _rebuild(cls: type[Record], values: dict[str, object]) -> Record:
    """Unpickle a `Record` (results cross a fork in the tests)."""
    record = object.__new__(cls)
    record._set(**values)
    return record


class Presence(Record):
    """Whether a path exists: `present` is True/False when checked, None when it could not be."""

    __slots__ = ("error", "path", "status")
    path: str
    status: ReadStatus  # OK: present, MISSING: absent, anything else: unknown and why
    error: str | None

    def __init__(self, path: str, status: ReadStatus, error: str | None = None) -> None:
        self._set(path=path, status=status, error=error)

    @property
    def present(self) -> bool | None:
        if self.status is ReadStatus.OK:
            return True
        if self.status is ReadStatus.MISSING:
            return False
        return None

    @property
    def known(self) -> bool:
        return self.status.known

    def __bool__(self) -> bool:
        return _no_truth_value(self)

    def describe(self) -> str:
        return _describe(self.path, self.status, self.error)


class Listing(Record):
    """The entries of one directory (sorted names), or why there are none.

    `names` is empty unless `status` is OK; a MISSING directory is a checked "no entries",
    any other status is unknown.
    """

    __slots__ = ("error", "names", "path", "status")
    path: str
    status: ReadStatus
    names: tuple[str, ...]
    error: str | None

    def __init__(
        self,
        path: str,
        status: ReadStatus,
        names: tuple[str, ...] = (),
        error: str | None = None,
    ) -> None:
        self._set(path=path, status=status, names=names, error=error)

    @property
    def ok(self) -> bool:
        return self.status is ReadStatus.OK

    def paths(self) -> list[str]:
        """The entries as host-absolute paths."""
        base = self.path.rstrip("/")
        return [f"{base}/{n}" for n in self.names]

    def __bool__(self) -> bool:
        return _no_truth_value(self)

    def describe(self) -> str:
        return _describe(self.path, self.status, self.error)


def _describe(path: str, status: ReadStatus, error: str | None) -> str:
    text = f"{path}: {status.value}"
    return f"{text} ({error})" if error else text


def status_of_oserror(exc: OSError) -> ReadStatus:
    """The status an OSError from a file operation means."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return ReadStatus.MISSING
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ReadStatus.NOT_PERMITTED
    if exc.errno == errno.EISDIR:
        return ReadStatus.NOT_A_FILE
    return ReadStatus.UNREADABLE
