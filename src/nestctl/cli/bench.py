"""`nestctl bench`: measure what virtualization costs here, in a VM, or at every level; compare.

Exit codes: 0 measured (or compared, all in line), 1 a comparison shows a loss beyond the published
figures or software emulation, 2 nothing could be measured, or bad input.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from nestctl.cli.common import NestctlError, json_option, open_host, root_option


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise NestctlError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _progress(as_json: bool) -> Any:
    if as_json or not sys.stderr.isatty():
        return None
    return lambda step: click.echo(f"  {step} ...", err=True)


def _local(quick: bool, as_json: bool, only: str | None = None) -> dict[str, Any]:
    from nestctl.bench.runner import run, select  # noqa: PLC0415 - lazy: keep start-up fast

    try:
        chosen = select(only)
    except ValueError as exc:
        raise NestctlError(str(exc)) from exc
    return run(quick=quick, progress=_progress(as_json), workloads=chosen)


def _host_where(root: str) -> tuple[Any, dict[str, Any]]:
    from nestctl.bench.stub import load_stub  # noqa: PLC0415
    from nestctl.bench.where import where  # noqa: PLC0415

    host = open_host(root)
    stub = load_stub() if host.live else "not measured: --root"
    return host, where(host, stub, tsc_hz=None)


def _in_vm(root: str, vmid: int, quick: bool, as_json: bool) -> dict[str, Any]:
    from nestctl.bench.remote import RemoteBenchError, bench_vm  # noqa: PLC0415

    host, host_where = _host_where(root)
    try:
        return bench_vm(host, vmid, host_where, quick=quick, progress=_progress(as_json))
    except RemoteBenchError as exc:
        raise NestctlError(str(exc)) from exc


def _save(doc: dict[str, Any], root: str) -> str:
    from nestctl.bench.feed import RESULTS_DIR, result_id  # noqa: PLC0415
    from nestctl.bench.runner import dumps  # noqa: PLC0415

    host = open_host(root)
    stamp = str(doc.get("started", "")).replace(":", "").replace("+0000", "Z")
    name = f"{RESULTS_DIR}/{stamp}-{result_id(doc).replace('/', '-')}.json"
    try:
        host.write_atomic(name, dumps(doc), mode=0o644)
    except OSError as exc:
        raise NestctlError(f"cannot save to {name}: {exc.strerror or exc}") from exc
    return name


def _print_compare(report: dict[str, Any], as_json: bool, plot: str | None) -> int:
    from nestctl.bench.compare import pathological  # noqa: PLC0415

    if plot:
        from nestctl.bench.plot import PlotUnavailableError, plot_file  # noqa: PLC0415

        try:
            plot_file(report, plot)
        except PlotUnavailableError as exc:
            raise NestctlError(str(exc)) from exc
        except (OSError, ValueError) as exc:
            raise NestctlError(f"cannot write the plot {plot}: {exc}") from exc
    if as_json:
        from nestctl.bench.runner import dumps  # noqa: PLC0415

        click.echo(dumps(report), nl=False)
    else:
        from nestctl.bench.view import render_compare  # noqa: PLC0415

        render_compare(report)
    return 1 if pathological(report) else 0


def _levels(root: str, quick: bool, as_json: bool, out_dir: str | None, save: bool) -> int:
    from nestctl.bench.compare import compare  # noqa: PLC0415
    from nestctl.bench.remote import RemoteBenchError, bench_vm, running_vmids  # noqa: PLC0415
    from nestctl.bench.runner import dumps  # noqa: PLC0415

    host, host_where = _host_where(root)
    docs: list[dict[str, Any]] = []
    names: list[str] = []
    if host.live:
        docs.append(_local(quick, as_json))
        names.append("here")
    skipped = []
    vmids, problems = running_vmids(host)
    for problem in problems:  # VMs that may run but could not be found
        click.echo(f"nestctl: warning: {problem}", err=True)
    for vmid in vmids:
        try:
            docs.append(bench_vm(host, vmid, host_where, quick=quick, progress=_progress(as_json)))
            names.append(f"vm-{vmid}")
        except RemoteBenchError as exc:
            skipped.append({"vmid": vmid, "reason": str(exc)})
            click.echo(f"nestctl: skipped: {exc}", err=True)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        for doc, name in zip(docs, names, strict=True):
            _write(os.path.join(out_dir, f"{name}.json"), dumps(doc))
    if save:
        for doc in docs:
            click.echo(f"saved {_save(doc, root)}", err=True)
    if len(docs) < 2:
        raise NestctlError(
            "no running VM could be measured through its guest agent"
            + "".join(f"\n  VM {s['vmid']}: {s['reason']}" for s in skipped)
        )
    report = compare(docs, names)
    report["skipped"] = skipped
    return _print_compare(report, as_json, None)


@click.group("bench", invoke_without_command=True)
@click.option("--quick", is_flag=True, help="Short runs (under 20 s) instead of the full set.")
@json_option
@click.option("-o", "--output", help="Write the result file here (with --levels: a directory).")
@click.option("--vm", "vmid", type=click.IntRange(100, 999_999_999), help="Run inside this VM.")
@click.option("--levels", is_flag=True, help="Here and every running VM, then compare them.")
@click.option("--save", is_flag=True, help="Also keep the result for doctor and the exporter.")
@click.option("--only", metavar="NAMES", help="Only these workloads (comma-separated).")
@root_option
@click.pass_context
def bench(  # noqa: PLR0917 - click passes options positionally
    ctx: click.Context,
    quick: bool,
    as_json: bool,
    output: str | None,
    vmid: int | None,
    levels: bool,
    save: bool,
    only: str | None,
    root: str,
) -> None:
    """Measure what virtualization costs: short microbenchmarks, median and spread of each.

    Runs here, inside a VM through its guest agent (--vm), or here and in every running VM
    (--levels). `nestctl bench compare A.json B.json` explains the ratios.
    """
    if ctx.invoked_subcommand is not None:
        return
    if levels:
        sys.exit(_levels(root, quick, as_json, output, save))
    if vmid is not None:
        doc = _in_vm(root, vmid, quick, as_json)
    else:
        if os.path.realpath(root) != os.path.realpath("/"):
            raise NestctlError("benchmarks measure this machine: --root applies to --vm/--levels")
        doc = _local(quick, as_json, only)
    from nestctl.bench.runner import dumps  # noqa: PLC0415

    if output:
        _write(output, dumps(doc))
    if save:
        click.echo(f"saved {_save(doc, root)}", err=True)
    if as_json:
        click.echo(dumps(doc), nl=False)
    else:
        from nestctl.bench.view import render_run  # noqa: PLC0415

        render_run(doc)
    measured = any(r.get("status") == "ok" for r in doc["results"])
    sys.exit(0 if measured else 2)


@bench.command("compare")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option
@click.option("--plot", type=click.Path(dir_okay=False), help="Also draw the ratios (.png/.svg).")
def compare_cmd(files: tuple[str, ...], as_json: bool, plot: str | None) -> None:
    """Ratios of each result file to the first, against published figures, with causes."""
    from nestctl.bench.compare import compare  # noqa: PLC0415
    from nestctl.bench.results import ResultFileError, load_result  # noqa: PLC0415

    if len(files) < 2:
        raise NestctlError("compare needs at least two result files")
    if plot and not plot.lower().endswith((".png", ".svg")):
        raise NestctlError(f"--plot {plot}: name a .png or .svg file")
    try:
        docs = [load_result(f) for f in files]
    except ResultFileError as exc:
        raise NestctlError(str(exc)) from exc
    sys.exit(_print_compare(compare(docs, list(files)), as_json, plot))
