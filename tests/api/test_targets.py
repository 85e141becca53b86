"""The config file: named targets, every problem at once with file:line; secrets never in argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestctl.api.connect import ConnectOptions, credentials_for
from nestctl.api.credentials import ApiToken, CredentialError, UserPassword
from nestctl.api.targets import Target, TargetConfigError, config_path, load_targets
from tests.api.clirun import nestctl

SECRET = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
FP = ":".join(["AB"] * 32)


def test_targets_as_in_the_issue(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[targets.outer]\nurl = "https://192.0.2.10:8006"\n'
        f'token_file = "/root/.config/nestctl/outer.token"   # or: user + password_file\n'
        f'fingerprint = "{FP}"\n'
        f'[targets.inner]\nurl = "https://192.0.2.50:8006"\nuser = "root@pam"\n'
        f'password_file = "/root/pw"\nparent = "outer/101"\n'
    )
    targets = load_targets(config)
    assert targets["outer"].fingerprint == FP
    assert targets["inner"].parent == ("outer", 101)
    assert targets["inner"].user == "root@pam"


def test_every_problem_is_listed_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[targets.a]\nurl = "http://x:8006"\n'  # line 2: not https
        'fingerprint = "AB:CD"\n'  # line 3
        'tokenfile = "/t"\n'  # line 4: a typo
        "[targets.b]\n"  # line 5: no url
        'parent = "nowhere/101"\n'  # line 6
    )
    with pytest.raises(TargetConfigError) as info:
        load_targets(config)
    problems = info.value.problems
    assert any(p.startswith(f"{config}:2:") and "https" in p for p in problems)
    assert any(p.startswith(f"{config}:3:") and "SHA-256" in p for p in problems)
    assert any(p.startswith(f"{config}:4:") and "'tokenfile'" in p for p in problems)
    assert any(p.startswith(f"{config}:5:") and "no 'url'" in p for p in problems)
    assert len(problems) == 4  # b's parent is checked only once b itself is valid


def test_syntax_error_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[targets.a]\nurl = "https://x\n')
    code, out, err = nestctl(capsys, "tree", "--config", str(config))
    assert code == 2
    assert out == ""
    assert str(config) in err
    assert "line 2" in err


def test_xdg_config_home_and_override(tmp_path: Path) -> None:
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "nestctl/config.toml"
    assert config_path({"HOME": "/home/u"}) == Path("/home/u/.config/nestctl/config.toml")
    assert config_path({}, "/etc/x.toml") == Path("/etc/x.toml")


def test_credential_order(tmp_path: Path) -> None:
    token_file = tmp_path / "t"
    token_file.write_text(f"root@pam!file={SECRET}\n")
    env = {"NESTCTL_API_TOKEN": f"root@pam!env={SECRET}"}
    target = Target("t", "https://x", token_file=str(token_file))
    # An explicit flag wins; then the environment; then the config file.
    flag = credentials_for(target, env, None, flags_named=True)
    assert isinstance(flag, ApiToken)
    assert flag.token_id == "file"
    from_env = credentials_for(target, env, None, flags_named=False)
    assert isinstance(from_env, ApiToken)
    assert from_env.token_id == "env"
    from_file = credentials_for(target, {}, None, flags_named=False)
    assert isinstance(from_file, ApiToken)
    assert from_file.token_id == "file"
    asked = credentials_for(Target("t", "https://x", user="root@pam"), {}, lambda _: "pw",
                            flags_named=False)  # fmt: skip
    assert asked == UserPassword("root@pam", "pw")
    with pytest.raises(CredentialError, match="--token-file"):
        credentials_for(Target("t", "https://x"), {}, None, flags_named=False)
    assert ConnectOptions().timeout == 10.0


def test_no_option_takes_a_secret(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = nestctl(capsys, "doctor", "--help")
    assert code == 0
    assert "--token-file" in out
    assert "--token " not in out
    assert "--password " not in out
