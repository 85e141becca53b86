"""Snapshot and backup pages in-process against the simulator: every change a task to its end."""

from __future__ import annotations

from urllib.parse import unquote

from tests.pvesim.storage import BackupJob, StorageDef
from tests.web.conftest import ALICE, csrf_of, login, token, wait_for


def _post(client, page_url: str, action: str, **data: str):
    page = client.get(page_url)
    assert page.status_code == 200, page.text
    return client.post(action, data={"csrf": csrf_of(page.text), **data}, follow_redirects=False)


def _end(client, response) -> dict:
    assert response.status_code == 303, response.text
    done = client.get(response.headers["location"] + "/wait").json()
    assert done["running"] is False
    return done


def test_take_a_snapshot_and_see_it_in_the_tree(client, sim):
    login(client, *token(sim))
    url = "/t/lab/vm/pve1/101/snapshots"
    r = _post(client, url, url, name="before-upgrade", description="pre 9.2", vmstate="1")
    upid = unquote(r.headers["location"].rsplit("/", 1)[1])
    assert ":qmsnapshot:101:" in upid
    assert _end(client, r)["ok"] is True
    task_page = client.get(r.headers["location"]).text
    assert "Snapshot VM 101" in task_page
    assert 'href="/t/lab/vm/pve1/101/snapshots"' in task_page  # back to the tree
    tree = client.get(url).text
    assert 'id="snap-before-upgrade"' in tree
    assert "with RAM" in tree
    assert "you are here" in tree
    assert "pre 9.2" in tree


def test_a_name_proxmox_refuses_is_one_sentence_and_nothing_is_sent(client, sim):
    login(client, *token(sim))
    url = "/t/lab/vm/pve1/103/snapshots"
    r = _post(client, url, url, name="9lives")
    assert r.status_code == 400
    assert "A snapshot name starts with a letter" in r.text
    assert not any(q.method == "POST" and q.path.endswith("/snapshot") for q in sim.requests)


def test_rollback_needs_the_typed_name(client, sim):
    login(client, *token(sim))
    url = "/t/lab/vm/pve1/103/snapshots"
    assert _end(client, _post(client, url, url, name="base"))["ok"] is True
    sim.cluster.edit_config(103, cores="8")
    confirm = url + "/base/rollback"
    wrong = _post(client, confirm, confirm, confirm_name="bas")
    assert wrong.status_code == 400
    assert "Type the snapshot&#39;s name (base) to confirm." in wrong.text
    assert sim.cluster.vm(103).conf.main["cores"] == "8"
    done = _end(client, _post(client, confirm, confirm, confirm_name="base"))
    assert done["ok"] is True
    assert sim.cluster.vm(103).conf.main.get("cores") != "8"


def test_delete_a_snapshot(client, sim):
    login(client, *token(sim))
    url = "/t/lab/vm/pve1/103/snapshots"
    assert _end(client, _post(client, url, url, name="gone"))["ok"] is True
    confirm = url + "/gone/delete"
    assert _end(client, _post(client, confirm, confirm))["ok"] is True
    assert "gone" not in sim.cluster.vm(103).conf.sections


def test_a_failed_snapshot_task_ends_failed_in_proxmoxs_words(client, sim):
    login(client, *token(sim))
    sim.cluster.storage.define(StorageDef("thick", "lvm", {"images"}))
    sim.cluster.edit_config(103, scsi0="thick:vm-103-disk-0,size=8G")
    url = "/t/lab/vm/pve1/103/snapshots"
    done = _end(client, _post(client, url, url, name="nope"))
    assert done["ok"] is False
    assert done["exitstatus"] == "snapshot feature is not available"


def test_back_up_now_and_the_panel_shows_it(client, sim):
    login(client, *token(sim))
    url = "/t/lab/vm/pve1/103/backup"
    page = client.get(url).text
    assert "No backup found" in page
    assert '<option value="local">' in page
    assert "local-lvm" not in page  # holds no backups: not offered
    r = _post(client, url, url, storage="local", mode="snapshot", compress="zstd")
    assert ":vzdump:103:" in unquote(r.headers["location"])
    assert _end(client, r)["ok"] is True
    page = client.get(url).text
    assert "Last backup task: succeeded" in page
    assert "qmrestore local:backup/vzdump-qemu-103-" in page


def test_a_failed_last_backup_shows_the_error_on_the_panel_and_the_backups_page(client, sim):
    login(client, *token(sim))
    sim.cluster.storage.vzdump_errors[103] = "unable to create temporary directory"
    url = "/t/lab/vm/pve1/103/backup"
    done = _end(client, _post(client, url, url, storage="local", mode="stop", compress="lzo"))
    assert done["ok"] is False
    page = client.get(url).text
    assert "failed: unable to create temporary directory" in page
    assert "backup.failed" in page
    jobs = client.get("/t/lab/backups").text
    assert 'id="bk-qemu-103"' in jobs
    assert "last backup failed" in jobs


def test_a_storage_not_offered_is_refused_in_a_sentence(client, sim):
    login(client, *token(sim))
    url = "/t/lab/vm/pve1/103/backup"
    r = _post(client, url, url, storage="local-lvm", mode="snapshot", compress="zstd")
    assert r.status_code == 400
    assert "local-lvm is not a backup storage here." in r.text


def test_backups_page_lists_jobs_and_uncovered_guests(client, sim):
    sim.cluster.storage.jobs.append(BackupJob("nightly", vmid="101,102,103", schedule="21:00"))
    login(client, *token(sim))
    page = client.get("/t/lab/backups").text
    assert "nightly" in page
    assert "21:00 to local" in page
    assert "3 guest(s)" in page
    uncovered = page.split('id="backup-uncovered"')[1].split("</section>")[0]
    assert "VM 104" in uncovered
    assert "VM 101" not in uncovered


def test_an_auditor_may_look_but_not_snapshot(client, sim):
    login(client, *ALICE)
    url = "/t/lab/vm/pve1/103/snapshots"
    r = _post(client, url, url, name="mine")
    assert r.status_code == 403
    assert "VM.Snapshot" in r.text


def test_a_locked_guest_offers_no_snapshot_change(client, sim):
    login(client, *token(sim))
    page = client.get("/t/lab/vm/pve1/104/snapshots").text  # the fixture's 104: lock backup
    assert "is locked (backup)" in page
    assert 'id="take-snapshot"' not in page
    page = client.get("/t/lab/vm/pve1/103/snapshots").text
    assert 'id="take-snapshot"' in page


def test_the_vm_page_says_its_last_backup_failed(client, sim):
    sim.cluster.storage.vzdump_errors[103] = "unable to open the archive"
    upid = sim.request("POST", "/nodes/pve1/vzdump", {"vmid": "103", "storage": "local"}).data
    sim.wait_task("pve1", upid)
    login(client, *token(sim))
    page = wait_for(client, "/t/lab/vm/pve1/103", 'id="vm-backup"')
    line = page.split('id="vm-backup"')[1].split("</p>")[0]
    assert "Last backup failed: unable to open the archive" in line


def test_a_container_snapshot_and_backup_from_the_dashboard(client, sim):
    login(client, *token(sim))
    url = "/t/lab/ct/pve1/151/snapshots"
    page = client.get(url).text
    assert "Snapshots of CT 151" in page
    assert 'name="vmstate"' not in page  # containers have no RAM snapshots
    r = _post(client, url, url, name="ct-base")
    assert ":vzsnapshot:151:" in unquote(r.headers["location"])
    assert _end(client, r)["ok"] is True
    assert 'href="/t/lab/ct/pve1/151/snapshots"' in client.get(r.headers["location"]).text
    assert 'id="snap-ct-base"' in client.get(url).text
    panel = "/t/lab/ct/pve1/151/backup"
    assert _end(client, _post(client, panel, panel, storage="local", mode="suspend", compress="0"))[
        "ok"
    ]
    assert "pct restore 151 local:backup/vzdump-lxc-151-" in client.get(panel).text
