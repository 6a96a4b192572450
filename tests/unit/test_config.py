"""The configuration file: what operators write, and the one line per problem they get back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from broker.config import SAMLConnection, load_settings, parse_settings
from broker.errors import ConfigError

GOOD = """
[broker]
base_url = "https://sso.example.com"
secret_key = "env:BROKER_SECRET_KEY"

[stores.acme]
store_hash = "abc123"
access_token = "env:ACME_ACCESS_TOKEN"
client_id = "env:ACME_CLIENT_ID"
client_secret = "env:ACME_CLIENT_SECRET"
storefront_url = "https://shop.acme.com"
channel_id = 1

[stores.acme.connections.okta]
type = "oidc"
issuer = "https://acme.okta.com"
client_id = "0oa1"
client_secret = "env:OKTA_CLIENT_SECRET"
scopes = ["openid", "email", "profile"]
groups_claim = "groups"
jit = true
link = "auto"
allowed_domains = ["acme.com"]

[stores.beta]
store_hash = "def456"
access_token = "t"
client_id = "c"
client_secret = "s"
storefront_url = "https://beta.example"

[stores.beta.connections.google]
type = "oidc"
issuer = "https://accounts.google.com"
client_id = "web-client"
"""

ENV = {
    "BROKER_SECRET_KEY": "x" * 40,
    "ACME_ACCESS_TOKEN": "acme-api-token-value",
    "ACME_CLIENT_ID": "acme-client-id",
    "ACME_CLIENT_SECRET": "acme-client-secret-value",
    "OKTA_CLIENT_SECRET": "okta-client-secret-value",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broker.toml"
    path.write_text(text)
    return path


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    import tomllib

    with pytest.raises(ConfigError) as caught:
        parse_settings(tomllib.loads(text), ENV if env is None else env)
    return caught.value.problems


def test_a_good_file_with_two_stores(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), ENV)
    acme = settings.stores["acme"]
    assert acme.client_secret == "acme-client-secret-value"
    assert acme.api_url == "https://api.bigcommerce.com"
    okta = acme.connections["okta"]
    assert okta.client_secret == "okta-client-secret-value"
    assert okta.token_endpoint_auth_method == "client_secret_basic"
    assert okta.algorithms == ("RS256", "PS256", "ES256")
    assert okta.allowed_domains == ("acme.com",)
    google = settings.stores["beta"].connections["google"]
    assert google.client_secret is None
    assert google.token_endpoint_auth_method == "none"  # a public client
    for name in (
        "BROKER_SECRET_KEY",
        "ACME_ACCESS_TOKEN",
        "ACME_CLIENT_SECRET",
        "OKTA_CLIENT_SECRET",
    ):
        assert ENV[name] not in repr(settings)


def test_every_problem_is_reported_once_naming_its_key() -> None:
    text = GOOD.replace('base_url = "https://sso.example.com"', 'base_url = "ftp://x"')
    text = text.replace("channel_id = 1", 'channel_id = "one"')
    text = text.replace('link = "auto"', 'link = "sometimes"')
    text = text.replace('groups_claim = "groups"', 'group_claim = "groups"')
    env = {k: v for k, v in ENV.items() if k != "OKTA_CLIENT_SECRET"}
    assert problems(text, env) == [
        "broker.base_url: 'ftp://x' is not an http(s) URL",
        "stores.acme.channel_id: must be an integer",
        "stores.acme.connections.okta.group_claim: unknown key (check the spelling), "
        "did you mean 'groups_claim'?",
        "stores.acme.connections.okta.client_secret: environment variable OKTA_CLIENT_SECRET "
        "is not set",
        "stores.acme.connections.okta.link: must be one of auto, confirm, deny, not 'sometimes'",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('secret_key = "env:BROKER_SECRET_KEY"', 'secret_key = "short"'), "broker.secret_key"),
        (('store_hash = "abc123"', ""), "stores.acme.store_hash: is required"),
        (('issuer = "https://acme.okta.com"', 'issuer = "http://acme.okta.com"'), "https"),
        (('scopes = ["openid", "email", "profile"]', 'scopes = ["email"]'), "'openid'"),
        (("jit = true", 'jit = "yes"'), "stores.acme.connections.okta.jit: must be true or false"),
        (('type = "oidc"\nissuer = "https://acme', 'type = "cas"\nissuer = "https://acme'), "type"),
        (("[stores.acme.connections.okta]", "[stores.acme.connections.Okta]"), "connection keys"),
        (("channel_id = 1", 'channel_id = 1\nwebhook_secret = "short"'), "webhook_secret"),
        (("channel_id = 1", "channel_id = 1\nverify_link_after_hours = -1"), "verify_link"),
        (
            ('type = "oidc"\nissuer = "https://acme', 'type = "saml"\nissuer = "https://acme'),
            "SAML",
        ),
    ],
)
def test_single_problems(change: tuple[str, str], expected: str) -> None:
    found = problems(GOOD.replace(*change))
    assert any(expected in line for line in found), found


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_symmetric_and_none_algorithms_cannot_be_configured(algorithm: str) -> None:
    text = GOOD.replace('groups_claim = "groups"', f'algorithms = ["RS256", "{algorithm}"]')
    assert any("algorithms" in line for line in problems(text))


def test_public_client_cannot_claim_a_secret_method() -> None:
    text = GOOD + 'token_endpoint_auth_method = "client_secret_post"\n'
    assert any("client_secret: required" in line for line in problems(text))


def test_broker_check_prints_one_line_per_problem_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("jit = true", "jit = 3"))
    result = subprocess.run(
        [sys.executable, "-m", "broker.cli", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env={"PATH": "", **ENV},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "config: stores.acme.connections.okta.jit: must be true or false"
    ]


def test_broker_check_reports_unreachable_store_and_idp(tmp_path: Path) -> None:
    text = GOOD.replace('issuer = "https://acme.okta.com"', 'issuer = "http://127.0.0.1:9"')
    text = text.replace("channel_id = 1", 'channel_id = 1\napi_url = "http://127.0.0.1:9"')
    path = write(tmp_path, text.split("[stores.beta]")[0])
    result = subprocess.run(
        [sys.executable, "-m", "broker.cli", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env={"PATH": "", **ENV},
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("stores.acme: store API: The store could not be reached")
    assert lines[1].startswith("stores.acme.connections.okta: identity provider:")
    for value in ENV.values():
        assert value not in result.stderr


SAML = """
[broker]
base_url = "https://sso.example.com"
secret_key = "{secret}"
saml_key_file = "{key}"
saml_cert_file = "{cert}"

[stores.acme]
store_hash = "abc123"
access_token = "t"
client_id = "c"
client_secret = "s"
storefront_url = "https://shop.acme.com"

[stores.acme.connections.adfs]
type = "saml"
idp_metadata_url = "https://adfs.acme.com/FederationMetadata/2007-06/FederationMetadata.xml"
"""


@pytest.fixture(scope="module")
def sp_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    # Made once for the module (`broker keys` takes a second): no test changes the files.
    out = tmp_path_factory.mktemp("sp-keys") / "keys"
    result = subprocess.run(
        [sys.executable, "-m", "broker.cli", "keys", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out / "saml-sp.key", out / "saml-sp.crt"


def saml_text(keys: tuple[Path, Path], extra: str = "") -> str:
    return SAML.format(secret="x" * 40, key=keys[0], cert=keys[1]) + extra


def test_broker_keys_makes_a_private_key_and_refuses_to_overwrite(
    sp_keys: tuple[Path, Path],
) -> None:
    key, cert = sp_keys
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    again = subprocess.run(
        [sys.executable, "-m", "broker.cli", "keys", "--out", str(key.parent)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 1
    assert "exists" in again.stderr


def test_a_saml_connection_with_broker_wide_keys(sp_keys: tuple[Path, Path]) -> None:
    import tomllib

    settings = parse_settings(tomllib.loads(saml_text(sp_keys)), {})
    adfs = settings.stores["acme"].connections["adfs"]
    assert adfs.type == "saml"
    assert adfs.sp_key_file == str(sp_keys[0])
    assert (adfs.allow_idp_initiated, adfs.require_signed_assertion, adfs.allow_sha1) == (
        False,
        True,
        False,
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('idp_metadata_xml = "<EntityDescriptor/>"\n', "exactly one of idp_metadata_url"),
        ('idp_metadata_file = "/nonexistent.xml"\n', "no such file: /nonexistent.xml"),
        ('sp_key_file = "/nonexistent.key"\n', "sp_key_file: no such file"),
        ('name_id_format = "x509"\n', "name_id_format: must be one of"),
        ("allow_idp_initiated = 1\n", "allow_idp_initiated: must be true or false"),
    ],
)
def test_saml_connection_problems(sp_keys: tuple[Path, Path], extra: str, expected: str) -> None:
    found = problems(saml_text(sp_keys, extra), {})
    assert any(expected in line for line in found), found


def test_saml_without_any_key_pair_uses_the_brokers_own(sp_keys: tuple[Path, Path]) -> None:
    text = saml_text(sp_keys)
    text = text.replace(f'saml_key_file = "{sp_keys[0]}"\n', "")
    text = text.replace(f'saml_cert_file = "{sp_keys[1]}"\n', "")
    import tomllib

    adfs = parse_settings(tomllib.loads(text), {}).stores["acme"].connections["adfs"]
    assert isinstance(adfs, SAMLConnection)
    assert (adfs.sp_key_file, adfs.sp_cert_file) == (None, None)


def test_saml_with_half_a_key_pair(sp_keys: tuple[Path, Path]) -> None:
    text = saml_text(sp_keys).replace(f'saml_cert_file = "{sp_keys[1]}"\n', "")
    found = problems(text, {})
    assert any(
        "stores.acme.connections.adfs.sp_cert_file: sp_key_file and sp_cert_file go together"
        in line
        for line in found
    ), found


B2B_TABLE = """
[stores.acme.b2b]
access_token = "env:ACME_B2B_TOKEN"
companies_by_domain = { "Buyer.com" = 123 }
companies_by_group = { "buyer-staff" = 124 }
roles_by_group = { "buyer-admins" = 0, "approvers" = 1 }
company_roles_by_group = { "controllers" = 77 }
"""


def test_b2b_settings() -> None:
    import tomllib

    env = {**ENV, "ACME_B2B_TOKEN": "b2b-token"}
    text = GOOD.replace("[stores.beta]", B2B_TABLE + "\n[stores.beta]")
    b2b = parse_settings(tomllib.loads(text), env).stores["acme"].b2b
    assert b2b is not None
    assert b2b.api_url == "https://api-b2b.bigcommerce.com"
    assert dict(b2b.companies_by_domain) == {"buyer.com": 123}
    assert (b2b.no_company, b2b.default_role, b2b.sync_role) == ("refuse", 2, True)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('"approvers" = 1', '"approvers" = 5'), "roles are 0 (admin)"),
        (('companies_by_domain = { "Buyer.com" = 123 }\n', ""), None),
        (('access_token = "env:ACME_B2B_TOKEN"', 'accesstoken = "x"'), "access_token: is required"),
        (
            ("company_roles_by_group", 'no_company = "maybe"\ncompany_roles_by_group'),
            "no_company: must be one of",
        ),
    ],
)
def test_b2b_problems(change: tuple[str, str], expected: str | None) -> None:
    env = {**ENV, "ACME_B2B_TOKEN": "b2b-token"}
    table = B2B_TABLE.replace(*change)
    if expected is None:  # no company source left at all
        table = table.replace('companies_by_group = { "buyer-staff" = 124 }\n', "")
        expected = "say how the company is found"
    found = problems(GOOD.replace("[stores.beta]", table + "\n[stores.beta]"), env)
    assert any(expected in line for line in found), found


def test_broker_gc_deletes_only_what_expired(tmp_path: Path) -> None:
    from broker.storage import open_storage

    database = tmp_path / "broker.db"
    text = GOOD.replace(
        'secret_key = "env:BROKER_SECRET_KEY"',
        f'secret_key = "env:BROKER_SECRET_KEY"\ndatabase_url = "sqlite:///{database}"',
    )
    storage = open_storage(f"sqlite:///{database}")
    storage.save_pending("old", {}, expires_at=1)
    storage.save_pending("fresh", {}, expires_at=2**40)
    storage.close()
    result = subprocess.run(
        [sys.executable, "-m", "broker.cli", "gc", "--config", str(write(tmp_path, text))],
        capture_output=True,
        text=True,
        env={"PATH": "", **ENV},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok: 1 expired row(s) deleted"
    storage = open_storage(f"sqlite:///{database}")
    assert storage.take_pending("fresh", now=2) == {}
    storage.close()


def test_the_link_policy_defaults_to_confirm(sp_keys: tuple[Path, Path]) -> None:
    import tomllib

    text = GOOD.replace('link = "auto"\n', "")
    settings = parse_settings(tomllib.loads(text), ENV)
    assert settings.stores["acme"].connections["okta"].link == "confirm"
    saml = parse_settings(tomllib.loads(saml_text(sp_keys)), {})
    assert saml.stores["acme"].connections["adfs"].link == "confirm"


def test_saml_auto_linking_must_say_the_email_is_trusted(sp_keys: tuple[Path, Path]) -> None:
    import tomllib

    found = problems(saml_text(sp_keys, 'link = "auto"\n'), {})
    assert any("adfs.link: 'auto' links existing accounts" in line for line in found), found
    ok = parse_settings(
        tomllib.loads(saml_text(sp_keys, 'link = "auto"\ntrust_email = true\n')), {}
    )
    assert ok.stores["acme"].connections["adfs"].link == "auto"


CONNECTION_B2B = """
[stores.acme.b2b]
access_token = "env:ACME_B2B_TOKEN"

[stores.acme.connections.okta.b2b]
company_claim = "b2b_company_id"
companies = [101]
companies_by_domain = { "Acme.com" = 102 }
roles_by_group = { "Purchasing Managers" = 1 }

[stores.acme.connections.globex]
type = "oidc"
issuer = "https://globex.example"
client_id = "g"

[stores.acme.connections.globex.b2b]
companies_by_group = { "Globex Buyers" = 201 }
"""


def test_b2b_companies_bound_per_connection() -> None:
    import tomllib

    env = {**ENV, "ACME_B2B_TOKEN": "b2b-token"}
    text = GOOD.replace("[stores.beta]", CONNECTION_B2B + "\n[stores.beta]")
    acme = parse_settings(tomllib.loads(text), env).stores["acme"]
    okta = acme.connections["okta"].b2b
    assert okta is not None
    assert okta.allowed_companies == {101, 102}
    assert dict(okta.companies_by_domain) == {"acme.com": 102}
    globex = acme.connections["globex"].b2b
    assert globex is not None
    assert globex.allowed_companies == {201}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            (
                'access_token = "env:ACME_B2B_TOKEN"',
                'access_token = "env:ACME_B2B_TOKEN"\ncompanies_by_group = { "staff" = 9 }',
            ),
            "stores.acme.b2b.companies_by_group: with several connections",
        ),
        (
            (
                'access_token = "env:ACME_B2B_TOKEN"',
                'access_token = "env:ACME_B2B_TOKEN"\ncompany_claim = "company"',
            ),
            "stores.acme.b2b.company_claim: with several connections",
        ),
        (
            ('companies = [101]\ncompanies_by_domain = { "Acme.com" = 102 }\n', ""),
            "okta.b2b.companies: list the companies company_claim",
        ),
        (("companies = [101]", 'companies = ["x"]'), "okta.b2b.companies: must be a list of ids"),
        (("roles_by_group = {", "role_by_group = {"), "okta.b2b.role_by_group: unknown key"),
    ],
)
def test_b2b_binding_problems(change: tuple[str, str], expected: str) -> None:
    env = {**ENV, "ACME_B2B_TOKEN": "b2b-token"}
    table = CONNECTION_B2B.replace(*change)
    if "several connections" in expected:  # globex without a table of its own
        table = table.replace(
            "[stores.acme.connections.globex.b2b]\n"
            'companies_by_group = { "Globex Buyers" = 201 }\n',
            "",
        )
    found = problems(GOOD.replace("[stores.beta]", table + "\n[stores.beta]"), env)
    assert any(expected in line for line in found), found


def test_a_connection_b2b_table_needs_the_stores() -> None:
    table = '[stores.acme.connections.okta.b2b]\ncompanies_by_domain = { "acme.com" = 1 }\n'
    found = problems(GOOD.replace("[stores.beta]", table + "\n[stores.beta]"))
    assert any("okta.b2b: needs the store's [b2b] table" in line for line in found), found


def test_broker_audit_escapes_what_it_prints(tmp_path: Path) -> None:
    from broker.storage import AuditEntry, open_storage

    database = tmp_path / "broker.db"
    text = GOOD.replace(
        'secret_key = "env:BROKER_SECRET_KEY"',
        f'secret_key = "env:BROKER_SECRET_KEY"\ndatabase_url = "sqlite:///{database}"',
    )
    storage = open_storage(f"sqlite:///{database}")
    forged = "x\n2030-01-01T00:00:00Z signin ok customer=1\x1b[2J"
    storage.record_audit(
        AuditEntry(at=1, store="acme", event="refused", outcome="x", subject=forged)
    )
    storage.close()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "broker.cli",
            "audit",
            "--config",
            str(write(tmp_path, text)),
            "--store",
            "acme",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "", **ENV},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1  # one entry, one line
    assert "\x1b" not in result.stdout
    assert 'subject="x\\n2030-01-01T00:00:00Z signin ok customer=1\\u001b[2J"' in result.stdout


def test_broker_gc_keeps_the_audit_log_for_its_retention(tmp_path: Path) -> None:
    import time

    from broker.storage import AuditEntry, open_storage

    database = tmp_path / "broker.db"
    text = GOOD.replace(
        'secret_key = "env:BROKER_SECRET_KEY"',
        f'secret_key = "env:BROKER_SECRET_KEY"\ndatabase_url = "sqlite:///{database}"\n'
        "audit_retention_days = 30",
    )
    storage = open_storage(f"sqlite:///{database}")
    now = int(time.time())
    for age_days in (31, 29):
        storage.record_audit(
            AuditEntry(at=now - age_days * 86400, store="acme", event="signin", outcome="ok")
        )
    storage.close()
    result = subprocess.run(
        [sys.executable, "-m", "broker.cli", "gc", "--config", str(write(tmp_path, text))],
        capture_output=True,
        text=True,
        env={"PATH": "", **ENV},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    storage = open_storage(f"sqlite:///{database}")
    assert [e.at for e in storage.recent_audit("acme")] == [now - 29 * 86400]
    storage.close()
