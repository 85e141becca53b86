"""The engine behind the pages: `nestctl tree`'s view of a target (from the same API collector and
analysis as `nestctl doctor --api`), plus each VM's findings and chain for its page.

The overview ties targets and builds the tree with `nestctl.tree.build.build_tree`, so the page
shows the verdicts and first broken links `nestctl tree` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nestctl.api.actions import Api
from nestctl.parse import is_ascii_digits
from nestctl.web.settings import TargetSpec
from nestctl.web.snapshot import TreeBuilder


@dataclass
class EngineView:
    """One scan of one target, as the pages need it."""

    view: Any  # nestctl.tree.views.TargetView
    vms: dict[int, dict[str, Any]] = field(default_factory=dict)  # vmid -> findings, chain, why
    findings: list[dict[str, Any]] = field(default_factory=list)  # about the scan as a whole
    cts: dict[int, dict[str, Any]] = field(default_factory=dict)  # vmid -> the ct engine's verdict


def explain(result: Any) -> dict[str, Any] | None:
    """The first broken link and the finding that explains it, with its fix: the one verdict's
    (`nestctl.vm.verdict.judge_vm`, kept on the result and on the tree's `VmView`)."""
    v = getattr(result, "verdict", None)
    if not hasattr(v, "broken_link"):  # a tree `VmView` carries the judgement's fields itself
        v = result
    if v is None or getattr(v, "broken_link", None) is None:
        return None
    return {"link": v.broken_link, "message": v.message, "fix": v.fix}


def parent_of(spec: TargetSpec) -> tuple[str, int] | None:
    outer, _, vmid = (spec.parent or "").partition("/")
    return (outer, int(vmid)) if outer and is_ascii_digits(vmid) else None


def containers(api: Api) -> dict[int, dict[str, Any]]:
    """Every container's verdict and intent from the `nestctl ct` engine (one config and one
    pending read per container); empty when they cannot be read (the pages say unknown)."""
    from nestctl.ct.collect import CtOptions, analyse, scan_api  # noqa: PLC0415 - lazily

    try:
        results, _ = analyse(scan_api(api, CtOptions()), CtOptions())  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - containers are extra: the VM view stands without them
        return {}
    return {
        r.facts.vmid: {"verdict": r.verdict.verdict, "wants_nested": r.intent.wants_nested}
        for r in results
    }


def tree_builder(concurrency: int = 16, nested_reader: Any = None) -> TreeBuilder:
    def build(api: Api, target: TargetSpec) -> EngineView:
        from nestctl.tree.collect import view_from_scan  # noqa: PLC0415 - heavy, when serving
        from nestctl.vm.collect.api import collect_api  # noqa: PLC0415
        from nestctl.vm.facts import VmOptions  # noqa: PLC0415
        from nestctl.vm.remote import analyse_remote  # noqa: PLC0415

        opts = VmOptions(all_nodes=True, sections=False)
        scan = collect_api(
            api,  # type: ignore[arg-type]
            opts,
            concurrency=concurrency,
            nested_reader=nested_reader,
        )
        view = view_from_scan(target.name, parent_of(target), scan, opts)
        results, _ = analyse_remote(scan, opts)
        vms = {
            r.vmid: {
                "findings": [f.to_json() for f in r.findings],
                "chain": dict(r.chain),
                "broken": explain(r),
            }
            for r in results
        }
        return EngineView(view, vms, [f.to_json() for f in scan.findings], containers(api))

    return build
