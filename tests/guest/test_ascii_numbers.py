"""Guest output is hostile: Arabic-Indic digits ("٣" is `isdecimal()`, and `int("٣")` is 3) are
not numbers, and Unicode letters do not hide error codes (patterns are ASCII)."""

from __future__ import annotations

from nestctl.guest.linux import parse_group_file, parse_proc_status
from nestctl.guest.windows import (
    find_wsl_errors,
    parse_event_ids,
    parse_services,
    parse_wsl_list,
    parse_wsl_status,
)


def test_linux_ids_are_ascii_digits_only() -> None:
    status = "Uid:\t١٠٠٠\t١٠٠٠\t0\t0\nGid:\t١٠٠\t١٠٠\nGroups:\t٣ 108 ٤\n"
    assert parse_proc_status(status) == (None, frozenset({108}))
    assert parse_group_file("kvm:x:١٠٨:alice\nkvm:x:108:bob\n") == {"kvm": (108, ("bob",))}


def test_windows_numbers_are_ascii_digits_only() -> None:
    assert parse_services("vmms ٤\nvmcompute 4\n") == {"vmms": "٤", "vmcompute": "Running"}
    assert parse_event_ids("٤١\n41\n") == (41,)
    assert parse_wsl_status("Default Version: ٢\n") is None
    assert parse_wsl_status("Default Version: 2\n") == 2
    assert parse_wsl_list("* Ubuntu Running ٢\n") == (("Ubuntu", "Running", None),)


def test_wsl_error_codes_next_to_non_ascii_letters_are_found() -> None:
    # A localized message may glue a code to a letter such as "é"; \b must not see it as a word.
    assert find_wsl_errors("Erreur:é0x80370102") == ("0x80370102", "HCS_E_HYPERV_NOT_INSTALLED")
