"""Guest output is hostile: Arabic-Indic digits (U+0660..U+0669 are `isdecimal()`, and `int()`
reads them) are not numbers, and Unicode letters do not hide error codes (patterns are ASCII)."""

from __future__ import annotations

from nestctl.guest.linux import parse_group_file, parse_proc_status
from nestctl.guest.windows import (
    find_wsl_errors,
    parse_event_ids,
    parse_services,
    parse_wsl_list,
    parse_wsl_status,
)


def arabic(digits: str) -> str:
    """The same number in Arabic-Indic digits: "108" -> "\u0661\u0660\u0668"."""
    return "".join(chr(0x660 + int(d)) for d in digits)


def test_linux_ids_are_ascii_digits_only() -> None:
    a1000, a100 = arabic("1000"), arabic("100")
    status = f"Uid:\t{a1000}\t{a1000}\t0\t0\nGid:\t{a100}\t{a100}\nGroups:\t{arabic('3')} 108\n"
    assert parse_proc_status(status) == (None, frozenset({108}))
    groups = parse_group_file(f"kvm:x:{arabic('108')}:alice\nkvm:x:108:bob\n")
    assert groups == {"kvm": (108, ("bob",))}


def test_windows_numbers_are_ascii_digits_only() -> None:
    four = arabic("4")
    assert parse_services(f"vmms {four}\nvmcompute 4\n") == {"vmms": four, "vmcompute": "Running"}
    assert parse_event_ids(f"{arabic('41')}\n41\n") == (41,)
    assert parse_wsl_status(f"Default Version: {arabic('2')}\n") is None
    assert parse_wsl_status("Default Version: 2\n") == 2
    assert parse_wsl_list(f"* Ubuntu Running {arabic('2')}\n") == (("Ubuntu", "Running", None),)


def test_wsl_error_codes_next_to_non_ascii_letters_are_found() -> None:
    # A localized message may glue a code to a letter such as "é"; \b must not see it as a word.
    assert find_wsl_errors("Erreur:é0x80370102") == ("0x80370102", "HCS_E_HYPERV_NOT_INSTALLED")
