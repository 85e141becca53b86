"""The engine behind the pages: `nestctl tree`'s view of a target (from the same API collector and
analysis as `nestctl doctor --api`), plus each VM's findings and chain for its page.

The overview ties targets and builds the tree with `nestctl.tree.build.build_tree`, so the page
shows the verdicts and first broken links `nestctl tree` prints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from nestctl.api.actions import Api
from nestctl.parse import is_ascii_digits
from nestctl.web.settings import TargetSpec
from nestctl.web.snapshot import TargetSnapshot, TreeBuilder


@dataclass
class EngineView:
    """One scan of one target, as the pages need it."""

    view: Any  # nestctl.tree.views.TargetView
    vms: dict[int, dict[str, Any]] = field(default_factory=dict)  # vmid -> findings, chain, why
    findings: list[dict[str, Any]] = field(default_factory=list)  # about the scan as a whole
    cts: dict[int, dict[str, Any]] = field(default_factory=dict)  # vmid -> the ct engine's verdict
    #: What it was judged from, to judge the same scan again for a visitor who asks to judge
    #: every VM as if it wanted nesting (`judged`); None for views built otherwise.
    scan: Any = None
    target: TargetSpec | None = None
    all_vms: bool = False
    _every_vm: EngineView | None = field(default=None, repr=False, compare=False)


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


def _judge(
    target: TargetSpec, scan: Any, *, all_vms: bool = False, cts: dict[int, dict[str, Any]]
) -> EngineView:
    """One scan judged: the tree's view and each VM's findings, chain and first broken link."""
    from nestctl.tree.collect import view_from_scan  # noqa: PLC0415 - heavy, when serving
    from nestctl.vm.facts import VmOptions  # noqa: PLC0415
    from nestctl.vm.remote import analyse_remote  # noqa: PLC0415

    opts = VmOptions(all_nodes=True, sections=False, all_vms=all_vms)
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
    findings = [f.to_json() for f in scan.findings]
    return EngineView(view, vms, findings, cts, scan, target, all_vms=all_vms)


def judged(engine: EngineView, *, all_vms: bool) -> EngineView:
    """`engine`, or with `all_vms` the same scan judged as if every VM wanted nesting (the
    dashboard's `--all-vms`), computed once per scan and only when a visitor asks for it."""
    if not all_vms or engine.all_vms or engine.scan is None or engine.target is None:
        return engine
    if engine._every_vm is None:
        engine._every_vm = _judge(engine.target, engine.scan, all_vms=True, cts=engine.cts)
    return engine._every_vm


def snapshot_judged(snap: TargetSnapshot | None, *, all_vms: bool) -> TargetSnapshot | None:
    """A `TargetSnapshot` whose engine is `judged(..., all_vms=...)` (the cached one is kept)."""
    if not all_vms or snap is None or not isinstance(snap.engine, EngineView):
        return snap
    return dataclasses.replace(snap, engine=judged(snap.engine, all_vms=True))


def tree_builder(concurrency: int = 16, nested_reader: Any = None) -> TreeBuilder:
    def build(api: Api, target: TargetSpec) -> EngineView:
        from nestctl.vm.collect.api import collect_api  # noqa: PLC0415 - heavy, when serving
        from nestctl.vm.facts import VmOptions  # noqa: PLC0415

        opts = VmOptions(all_nodes=True, sections=False)
        scan = collect_api(
            api,  # type: ignore[arg-type]
            opts,
            concurrency=concurrency,
            nested_reader=nested_reader,
        )
        return _judge(target, scan, cts=containers(api))

    return build
