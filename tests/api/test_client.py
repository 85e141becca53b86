"""ApiClient against a real TLS server: auth, pinning under hostile env, errors, secrets."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestctl.api import errors as ae
from nestctl.api.client import ApiClient, base_url, parse_upid
from nestctl.api.credentials import ApiToken, CredentialError, UserPassword, read_secret_file
from nestctl.api.tls import normalize_fingerprint
from tests.api.tls_server import Canned, Reply, make_cert, serve
from tests.pvesim import PveSim, totp_now

pytest_plugins = ["tests.pvesim.fixtures"]

SECRET = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
TOKEN = ApiToken.parse(f"root@pam!nestctl={SECRET}", source="test")
PASSWORD = "s3cr3t-Pa55word"


def data(obj: object) -> Reply:
    return Reply(200, json.dumps({"data": obj}).encode())


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def canned() -> Canned:
    return Canned()


@pytest.fixture
def url(canned: Canned, cert: tuple[Path, Path, str]) -> Iterator[str]:
    with serve(canned, cert[0], cert[1]) as base:
        yield base


@pytest.fixture(params=["env-unset", "env-set"])
def hostile_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, cert: tuple[Path, Path, str]
) -> None:
    """With the env set, requests would trust (or distrust) what the environment says."""
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    if request.param == "env-set":
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert[0]))
        monkeypatch.setenv("CURL_CA_BUNDLE", str(cert[0]))


def client(url: str, **kw: object) -> ApiClient:
    return ApiClient(url, kw.pop("creds", TOKEN), retries=0, timeout=5.0, **kw)  # type: ignore[arg-type]


@pytest.mark.usefixtures("hostile_env")
def test_right_fingerprint_is_accepted_any_form(
    url: str, canned: Canned, cert: tuple[Path, Path, str]
) -> None:
    canned.routes["GET", "/version"] = lambda _: data({"version": "9.0.4"})
    for form in (cert[2], cert[2].lower(), cert[2].replace(":", "")):
        assert client(url, fingerprint=form).get("/version") == {"version": "9.0.4"}


@pytest.mark.usefixtures("hostile_env")
def test_wrong_fingerprint_is_refused(
    url: str, canned: Canned, cert: tuple[Path, Path, str]
) -> None:
    canned.routes["GET", "/version"] = lambda _: data({"version": "9.0.4"})
    wrong = "AB:" * 31 + "CD"
    with pytest.raises(ae.ApiTlsError, match="does not match the pinned"):
        client(url, fingerprint=wrong).get("/version")
    # Refused before any request reached the server, so the token never left.
    assert canned.seen == []


@pytest.mark.usefixtures("hostile_env")
def test_verification_ignores_the_environment(
    url: str, canned: Canned, cert: tuple[Path, Path, str]
) -> None:
    canned.routes["GET", "/version"] = lambda _: data({"version": "9.0.4"})
    with pytest.raises(ae.ApiTlsError, match="not trusted"):
        client(url).get("/version")
    assert canned.seen == []
    assert client(url, ca_file=str(cert[0])).get("/version") == {"version": "9.0.4"}


def test_fingerprint_forms() -> None:
    fp = "aB:" * 31 + "cd"
    assert normalize_fingerprint(fp) == "ab" * 31 + "cd"
    for bad in ("AB:CD", "zz" * 32, "AB" * 20):
        with pytest.raises(ValueError, match="SHA-256"):
            normalize_fingerprint(bad)


def test_token_header_and_no_csrf(url: str, canned: Canned, cert: tuple[Path, Path, str]) -> None:
    canned.routes["PUT", "/nodes/pve1/qemu/100/config"] = lambda _: data(None)
    client(url, fingerprint=cert[2]).put("/nodes/pve1/qemu/100/config", cpu="host", delete=None)
    seen = canned.seen[0]
    assert seen.headers["Authorization"] == f"PVEAPIToken=root@pam!nestctl={SECRET}"
    assert seen.body == b"cpu=host"


def test_ticket_login_cookie_and_csrf(
    url: str, canned: Canned, cert: tuple[Path, Path, str]
) -> None:
    def ticket(seen: object) -> Reply:
        return data({"ticket": "PVE:root@pam:TICKET", "CSRFPreventionToken": "CSRF1",
                     "username": "root@pam"})  # fmt: skip

    canned.routes["POST", "/access/ticket"] = ticket
    canned.routes["GET", "/nodes"] = lambda _: data([{"node": "pve1"}])
    canned.routes["POST", "/nodes/pve1/qemu/100/status/reboot"] = lambda _: data("UPID:x")
    api = client(url, fingerprint=cert[2], creds=UserPassword("root@pam", PASSWORD))
    assert api.get("/nodes") == [{"node": "pve1"}]
    api.post("/nodes/pve1/qemu/100/status/reboot")
    login, get, post = canned.seen
    assert b"username=root%40pam" in login.body
    assert b"password=" in login.body
    assert get.headers["Cookie"] == "PVEAuthCookie=PVE:root@pam:TICKET"
    assert "CSRFPreventionToken" not in get.headers
    assert post.headers["CSRFPreventionToken"] == "CSRF1"
    assert api.is_root_ticket


@pytest.mark.parametrize(
    ("reply", "kind", "text"),
    [
        (Reply(401, b"", "authentication failure"), ae.ApiAuthError, "authentication failure"),
        (
            Reply(403, b'{"data":null,"message":"Permission check failed (/vms/100, '
                  b'VM.GuestAgent.Audit)\\n"}', "Permission check failed"),
            ae.ApiPermissionError,
            "VM.GuestAgent.Audit",
        ),
        (Reply(595, b'{"data":null}', "No route to host"), ae.ApiNodeUnreachableError, "No route"),
        (Reply(200, b'{"data": [1, 2', None), ae.ApiBadReplyError, "not Proxmox API JSON"),
        (Reply(200, b"<html>proxy</html>", None), ae.ApiBadReplyError, "not Proxmox API JSON"),
        (Reply(200, b"[" * 100000 + b"]" * 100000, None), ae.ApiBadReplyError, "not Proxmox"),
        (
            Reply(400, b'{"data":null,"errors":{"foo":"property is not defined in schema and '
                  b'the schema does not allow additional properties"}}',
                  "Parameter verification failed."),
            ae.ApiParameterError,
            "foo: property is not defined",
        ),
    ],
)  # fmt: skip
def test_errors_are_typed(
    url: str, canned: Canned, cert: tuple[Path, Path, str], reply: Reply, kind: type, text: str
) -> None:
    canned.routes["GET", "/x"] = lambda _: reply
    with pytest.raises(kind) as info:
        client(url, fingerprint=cert[2]).get("/x")
    assert text in str(info.value)
    if reply.status >= 400:
        assert info.value.status == reply.status
    if kind is ae.ApiPermissionError:
        assert info.value.privilege == "VM.GuestAgent.Audit"


def test_timeout_is_typed_and_reads_are_retried(
    url: str, canned: Canned, cert: tuple[Path, Path, str]
) -> None:

    calls: list[int] = []

    def slow(_: object) -> Reply:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(1.5)
        return data("late")

    canned.routes["GET", "/slow"] = slow
    api = ApiClient(url, TOKEN, fingerprint=cert[2], timeout=0.5, retries=1)
    assert api.get("/slow") == "late"  # the retry answered
    calls.clear()
    canned.routes["GET", "/slow"] = lambda _: (time.sleep(1.5), data("x"))[1]
    with pytest.raises(ae.ApiTimeoutError, match="no answer within"):
        ApiClient(url, TOKEN, fingerprint=cert[2], timeout=0.3, retries=0).get("/slow")


def test_writes_are_not_retried(url: str, canned: Canned, cert: tuple[Path, Path, str]) -> None:
    canned.routes["POST", "/w"] = lambda _: Reply(503, b"", "busy")
    with pytest.raises(ae.ApiError):
        ApiClient(url, TOKEN, fingerprint=cert[2], retries=3).post("/w")
    assert len(canned.seen) == 1


def test_secrets_never_in_repr_errors_or_logs(
    url: str, canned: Canned, cert: tuple[Path, Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    canned.routes["POST", "/access/ticket"] = lambda _: Reply(401, b"", "authentication failure")
    api = client(url, fingerprint=cert[2], creds=UserPassword("root@pam", PASSWORD))
    with pytest.raises(ae.ApiAuthError) as info:
        api.get("/nodes")
    canned.routes["GET", "/nodes"] = lambda _: Reply(401, b"", "invalid token")
    with pytest.raises(ae.ApiAuthError) as info2:
        client(url, fingerprint=cert[2]).get("/nodes")
    texts = [repr(api), repr(TOKEN), repr(UserPassword("u@pam", PASSWORD)), str(info.value),
             str(info2.value), caplog.text]  # fmt: skip
    for text in texts:
        assert SECRET not in text
        assert PASSWORD not in text


def test_plain_http_is_refused() -> None:
    with pytest.raises(ValueError, match="https"):
        base_url("http://pve:8006")
    assert base_url("pve1") == "https://pve1:8006/api2/json"
    assert base_url("https://[2001:db8::1]:443/") == "https://[2001:db8::1]:443/api2/json"


def test_token_parse_and_files(tmp_path: Path) -> None:
    for bad in ("root@pam=x", "root!id=x", "root@pam!id=", f"root@pam!{SECRET}"):
        with pytest.raises(CredentialError) as info:
            ApiToken.parse(bad, source="T")
        assert SECRET not in str(info.value)
    f = tmp_path / "tok"
    f.write_text(f"root@pam!nestctl={SECRET}\n")
    assert ApiToken.parse(read_secret_file(str(f)), source=str(f)) == TOKEN
    with pytest.raises(CredentialError, match="not a regular file"):
        read_secret_file(str(tmp_path))


def test_upid_node() -> None:
    assert parse_upid("UPID:pve2:0000A1B2:0001C3D4:6650F0A1:qmreboot:101:root@pam!api:") == "pve2"
    with pytest.raises(ae.ApiBadReplyError):
        parse_upid("nonsense")


def test_a_realm_with_totp_logs_in_with_the_code_and_says_when_it_is_missing(
    pve_sim: PveSim,
) -> None:
    secret = "JBSWY3DPEHPK3PXP"
    pve_sim.add_user("bob@pve", "bob-password", privs=["PVEAuditor"], totp_secret=secret)
    without = ApiClient(pve_sim.url, UserPassword("bob@pve", "bob-password"),
                        fingerprint=pve_sim.fingerprint, retries=0)  # fmt: skip
    with pytest.raises(ae.ApiSecondFactorError, match="second factor"):
        without.login()
    with ApiClient(
        pve_sim.url,
        UserPassword("bob@pve", "bob-password", totp_now(secret)),
        fingerprint=pve_sim.fingerprint,
        retries=0,
    ) as api:
        assert api.get("/version")["version"]
        assert api.userid == "bob@pve"
