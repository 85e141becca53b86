"""Property strings parse as pve-common's parse_property_string, with Proxmox's messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nestctl.vm.cpumodels import parse_custom_models
from nestctl.vm.propstring import (
    AGENT_FORMAT,
    CPU_FORMAT,
    HOSTPCI_FORMAT,
    MACHINE_FORMAT,
    META_FORMAT,
    PropertyStringError,
    parse_property_string,
    try_parse,
)


def test_bare_value_goes_to_the_default_key() -> None:
    assert parse_property_string("host,flags=+aes", CPU_FORMAT) == {
        "cputype": "host",
        "flags": "+aes",
    }
    assert parse_property_string("q35,viommu=intel", MACHINE_FORMAT) == {
        "type": "q35",
        "viommu": "intel",
    }


def test_booleans_normalise() -> None:
    assert parse_property_string("1,freeze-fs=Off", AGENT_FORMAT) == {
        "enabled": "1",
        "freeze-fs": "0",
    }
    assert parse_property_string("01:00.0,x-vga=yes", HOSTPCI_FORMAT)["x-vga"] == "1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("host,hidden=1,hidden=0", "duplicate key in comma-separated list property: hidden"),
        ("host,kvm64", "duplicate key in comma-separated list property: cputype"),
        ("host,bogus=1", "invalid key in comma-separated list property: bogus"),
        ("host,flags=", "missing key in comma-separated list property"),
        ("host,hidden=maybe", "format error\nhidden: type check ('boolean') failed"),
        (
            "host,guest-phys-bits=20",
            "format error\nguest-phys-bits: value must have a minimum value of 32",
        ),
        (
            "host,phys-bits=7",
            "format error\nphys-bits: value must be an integer between 8 and 64 or 'host'",
        ),
        (
            "host,hv-vendor-id=toolongvendorid",
            "format error\nhv-vendor-id: value does not match the regex pattern",
        ),
    ],
)
def test_errors_carry_proxmox_messages(text: str, message: str) -> None:
    with pytest.raises(PropertyStringError) as err:
        parse_property_string(text, CPU_FORMAT)
    assert str(err.value) == message


def test_machine_type_pattern_and_enum() -> None:
    assert try_parse("pc-q35-9.2+pve1.pxe", MACHINE_FORMAT)[1] is None
    assert try_parse("pc-q35-foo", MACHINE_FORMAT)[1] == (
        "format error\ntype: value does not match the regex pattern"
    )
    assert try_parse("q35,viommu=amd", MACHINE_FORMAT)[1] == (
        "format error\nviommu: value 'amd' does not have a value in the enumeration 'intel, virtio'"
    )


def test_meta_and_value_without_default_key() -> None:
    assert (
        parse_property_string("creation-qemu=9.2.0,ctime=17", META_FORMAT)["creation-qemu"]
        == "9.2.0"
    )
    assert try_parse("9.2.0", META_FORMAT)[1] == (
        "value without key, but schema does not define a default key"
    )


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab=,+-;10 hostflagsx")), max_size=40))
def test_property_string_parser_only_raises_its_own_error(text: str) -> None:
    for fmt in (CPU_FORMAT, MACHINE_FORMAT, HOSTPCI_FORMAT, AGENT_FORMAT, META_FORMAT):
        values, error = try_parse(text, fmt)
        assert (values is None) != (error is None)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_property_string_parser_never_crashes_on_any_text(text: str) -> None:
    try_parse(text, CPU_FORMAT)


# -- custom models (SectionConfig) ----------------------------------------------------------------


def test_custom_models_file() -> None:
    text = (
        "# comment\ncpu-model: nest\n    flags +vmx;+nested-virt\n\treported-model EPYC-v4\n"
        "    hidden 1\n\ncpu-model: empty\n"
    )
    models, problems = parse_custom_models(text)
    assert models == {
        "nest": {"flags": "+vmx;+nested-virt", "reported-model": "EPYC-v4", "hidden": "1"},
        "empty": {},
    }
    assert problems == []


def test_custom_models_bad_lines_are_dropped_with_problems() -> None:
    text = (
        "cpu-model: mm\n    flags vmx\n    reported-model nosuchcpu\n    phys-bits 40\n"
        "    phys-bits 41\n    cputype x\n\nweird: thing\n    flags +aes\n"
    )
    models, problems = parse_custom_models(text)
    assert models == {"mm": {"phys-bits": "40"}}
    assert len(problems) == 6
    assert parse_custom_models("cpu-model: x\n    flags +aes\n")[0] == {}  # IDs need 2+ chars


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_custom_models_parser_never_raises(text: str) -> None:
    parse_custom_models(text)
