"""The cloud credentials file: every way it can be right or wrong, as a user writes it."""

from __future__ import annotations

import logging
import textwrap
import time
from pathlib import Path

import pytest

from micado.config import paths
from micado.config.credentials import (
    ApplicationCredentialAuth,
    EC2Auth,
    PasswordAuth,
    credentials_template,
    load_credentials,
    write_credentials_template,
)
from micado.exceptions import CredentialsError, MicadoException

SECRET = "s3cr3t-Pa55-word"


@pytest.fixture()
def micado_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private MiCADO dir for the test (never the real ~/.micado-cli)."""
    directory = tmp_path / "micado-cli"
    monkeypatch.setenv(paths.ENV_DIR, str(directory))
    return directory


def write(micado_dir: Path, text: str) -> Path:
    micado_dir.mkdir(mode=0o700, exist_ok=True)
    file = paths.credentials_file()
    file.write_text(textwrap.dedent(text), encoding="utf-8")
    file.chmod(0o600)
    return file


def nova(auth_data: str, before: str = "") -> str:
    """A credentials file with one nova entry (after ``before`` entries)."""
    body = textwrap.indent(textwrap.dedent(auth_data), " " * 4)
    return f"resource:\n{before}- type: nova\n  auth_data:\n{body}"


def fails(file: Path, key: str | None, *fragments: str, kind: str = "nova") -> CredentialsError:
    with pytest.raises(CredentialsError) as info:
        load_credentials(kind)
    error = info.value
    message = str(error)
    assert error.path == file
    assert error.key == key
    assert str(file) in message
    for fragment in fragments:
        assert fragment in message, message
    assert SECRET not in message
    assert SECRET not in repr(error)
    return error


# --- valid files -------------------------------------------------------------------------


def test_password_method_with_optional_domain_and_project(micado_dir: Path) -> None:
    write(micado_dir, nova(f"""\
        username: alice
        password: {SECRET}
        domain_name: Default
        project_id: 0123abcd
        application_credential_id:
        application_credential_secret:
        """))
    creds = load_credentials()
    assert creds == PasswordAuth("alice", SECRET, user_domain_name="Default", project_id="0123abcd")
    assert SECRET not in repr(creds)
    assert SECRET not in str(creds)


def test_application_credential_method(micado_dir: Path) -> None:
    write(micado_dir, nova(f"""\
        username:
        password:
        application_credential_id: appcred-1
        application_credential_secret: {SECRET}
        """))
    creds = load_credentials()
    assert creds == ApplicationCredentialAuth("appcred-1", SECRET)
    assert SECRET not in repr(creds)


def test_micado_sample_file_with_other_clouds_and_an_openid_anchor(micado_dir: Path) -> None:
    # The shape of ansible-micado's sample-credentials-cloud-api.yml, nova filled in.
    write(micado_dir, f"""\
        pre_authentication:
        - type: openid
          auth_data: &OPENID
            url:
            refresh_token:
        resource:
        - type: ec2
          auth_data:
            accesskey:
            secretkey:
        - type: nova
          auth_data:
            username: alice
            password: "{SECRET}"
            user_domain_name: mydomain
            application_credential_id:
            application_credential_secret:
            identity_provider:
            access_token: *OPENID
        - type: azure
          auth_data:
            subscription_id:
        """)
    assert load_credentials() == PasswordAuth("alice", SECRET, user_domain_name="mydomain")


def test_explicit_path_argument(tmp_path: Path, micado_dir: Path) -> None:
    file = tmp_path / "elsewhere.yml"
    file.write_text(nova(f"username: bob\npassword: {SECRET}\n"))
    assert load_credentials(path=file) == PasswordAuth("bob", SECRET)
    assert load_credentials("nova", str(file)) == PasswordAuth("bob", SECRET)


def test_file_readable_by_others_is_loaded_with_a_warning(
    micado_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = write(micado_dir, nova(f"username: bob\npassword: {SECRET}\n"))
    file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="micado.config.credentials"):
        assert load_credentials() == PasswordAuth("bob", SECRET)
    assert "chmod 600" in caplog.text
    assert SECRET not in caplog.text


# --- the file itself ------------------------------------------------------------------------


def test_missing_file_gives_a_template_and_creates_nothing(micado_dir: Path) -> None:
    file = paths.credentials_file()
    error = fails(file, None, "does not exist", "type: nova", "username:", "application_credential_id")
    assert "resource:" in str(error)
    assert not micado_dir.exists()


def test_unreadable_file(micado_dir: Path) -> None:
    paths.credentials_file().mkdir(parents=True)  # a folder where the file should be
    fails(paths.credentials_file(), None, "cannot read the cloud credentials file", "Is a directory")


def test_not_yaml_names_the_line_and_hides_the_secret(micado_dir: Path) -> None:
    file = write(micado_dir, nova(f"username: alice\npassword: {SECRET}: [oops\n"))
    fails(file, None, "not valid YAML", "line 5")


def test_duplicate_key_does_not_quote_either_value(micado_dir: Path) -> None:
    file = write(micado_dir, nova(f"username: alice\npassword: {SECRET}\npassword: {SECRET}2\n"))
    fails(file, None, "not valid YAML", "line 6", "twice")


# --- hostile files: refused at once, with one line naming the file ------------------------


def laughs(levels: int) -> str:
    """YAML anchors of nine aliases of the one before: a few hundred bytes, 9**levels blank values."""
    lines = ["l0: &l0 {url: , refresh_token: }"]
    lines += [f"l{i}: &l{i} {{{', '.join(f'k{k}: *l{i - 1}' for k in range(9))}}}" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def refused(file: Path, *fragments: str) -> None:
    started = time.monotonic()
    error = fails(file, None, f"the cloud credentials file {file} is refused", *fragments)
    assert time.monotonic() - started < 2
    assert "\n" not in str(error)


def test_aliases_that_expand_are_refused(micado_dir: Path) -> None:
    # 1 KB; the 0.9-era check of the values took over 20 s, nine times more per level.
    file = write(micado_dir, laughs(9) + nova(f"username: alice\npassword: {SECRET}\naccess_token: *l8\n"))
    assert file.stat().st_size < 1024
    refused(file, "line 3", "aliases expand to more than 100 nodes")


def test_an_alias_inside_its_own_anchor_is_refused(micado_dir: Path) -> None:
    file = write(micado_dir, nova("username: alice\npassword: &loop [*loop]\n"))
    refused(file, "line 5", "alias *loop refers to no complete node")


def test_deep_nesting_is_refused(micado_dir: Path) -> None:
    file = write(micado_dir, nova(f"username: alice\npassword: {SECRET}\nproject_id: {'[' * 5000}{']' * 5000}\n"))
    refused(file, "line 6", "nested more than 64 levels deep")


def test_a_huge_file_is_refused_without_reading_it(micado_dir: Path) -> None:
    file = write(micado_dir, nova(f"username: alice\npassword: {SECRET}\n"))
    with open(file, "r+b") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: 200 MB, mostly NUL
    refused(file, "larger than 262144 bytes")


def test_a_file_of_too_many_values_is_refused_before_it_is_all_parsed(micado_dir: Path) -> None:
    # 200 KB; ruamel.yaml in pure Python takes 7 s to load it.
    file = write(micado_dir, nova(f"username: alice\npassword: {SECRET}\nproject_id: [{'1,' * 100_000}1]\n"))
    refused(file, "line 6", "holds more than 10000 values")


def test_a_number_of_thousands_of_digits_is_an_error(micado_dir: Path) -> None:
    file = write(micado_dir, nova(f"username: alice\npassword: {'7' * 5000}\n"))
    fails(file, None, "not valid YAML", "cannot be converted")


@pytest.mark.parametrize(
    "text, found",
    [
        ("", "the file is empty"),
        ("resources:\n- type: nova\n", "top-level keys: resources"),
        ("- type: nova\n", "not a mapping"),
        ("resource:\n  type: nova\n", "no 'resource' list"),
    ],
)
def test_no_resource_list(micado_dir: Path, text: str, found: str) -> None:
    file = write(micado_dir, text)
    fails(file, "resource", "no 'resource' list", found, "type: nova")


def test_no_entry_of_the_type_lists_the_types_present(micado_dir: Path) -> None:
    file = write(micado_dir, """\
        resource:
        - type: ec2
          auth_data: {accesskey: a, secretkey: b}
        - type: azure
          auth_data: {}
        """)
    fails(file, "resource", "no resource entry of type 'nova'", "types present: azure, ec2")


def test_empty_resource_list(micado_dir: Path) -> None:
    file = write(micado_dir, "resource: []\n")
    fails(file, "resource", "types present: none")


def test_two_entries_of_the_type(micado_dir: Path) -> None:
    file = write(micado_dir, nova(f"username: a\npassword: {SECRET}\n") + "- type: nova\n  auth_data: {}\n")
    fails(file, "resource[1]", "2 resource entries of type 'nova'", "resource[0], resource[1]")


def test_entry_without_type(micado_dir: Path) -> None:
    file = write(micado_dir, "resource:\n- auth_data: {}\n")
    fails(file, "resource[0].type", "resource[0] must be a mapping with a 'type'")


@pytest.mark.parametrize("auth_data", ["", " [a, b]"])
def test_auth_data_missing_or_not_a_mapping(micado_dir: Path, auth_data: str) -> None:
    file = write(micado_dir, f"resource:\n- type: ec2\n- type: nova\n  auth_data:{auth_data}\n")
    fails(file, "resource[1].auth_data", "resource[1].auth_data")


# --- auth_data -----------------------------------------------------------------------------


def test_half_a_password_pair(micado_dir: Path) -> None:
    file = write(micado_dir, nova("username: alice\npassword:\n"))
    fails(
        file, "resource[0].auth_data.password",
        "resource[0].auth_data.password is missing", "username is given", "username and password",
    )


def test_half_an_application_credential_pair(micado_dir: Path) -> None:
    file = write(micado_dir, nova(f"application_credential_secret: {SECRET}\n"))
    fails(
        file, "resource[0].auth_data.application_credential_id",
        "application_credential_id is missing", "application credential method",
    )


def test_both_methods(micado_dir: Path) -> None:
    file = write(micado_dir, nova(f"""\
        username: alice
        password: {SECRET}
        application_credential_id: appcred-1
        application_credential_secret: {SECRET}
        """))
    fails(
        file, "resource[0].auth_data",
        "more than one authentication method", "password (username + password)",
        "application credential (application_credential_id + application_credential_secret)",
    )


def test_neither_method(micado_dir: Path) -> None:
    file = write(micado_dir, nova("username:\npassword:\ndomain_name: Default\n"))
    fails(
        file, "resource[0].auth_data", "no authentication method",
        "username + password or application_credential_id + application_credential_secret",
    )


def test_empty_values(micado_dir: Path) -> None:
    file = write(micado_dir, nova('username: ""\npassword: "  "\n'))
    fails(file, "resource[0].auth_data.password", "empty values for password, username")


def test_one_empty_value_of_a_pair(micado_dir: Path) -> None:
    file = write(micado_dir, nova('username: alice\npassword: ""\n'))
    fails(file, "resource[0].auth_data.password", "password is empty", "both username and password")


def test_value_that_is_not_text(micado_dir: Path) -> None:
    file = write(micado_dir, nova("username: alice\npassword: 123456\n"))
    error = fails(file, "resource[0].auth_data.password", "must be text", "quotes")
    assert "123456" not in str(error)
    assert "int" not in str(error)


def test_template_placeholder_left_in(micado_dir: Path) -> None:
    file = write(micado_dir, credentials_template())
    fails(file, "resource[0].auth_data.username", "placeholder")


def test_unknown_key_lists_the_valid_ones(micado_dir: Path) -> None:
    file = write(micado_dir, nova(f"user_name: alice\npassword: {SECRET}\n"))
    fails(file, "resource[0].auth_data.user_name", "unknown key(s) user_name", "valid keys:", "username")


def test_domain_aliases_that_disagree(micado_dir: Path) -> None:
    file = write(micado_dir, nova(f"username: a\npassword: {SECRET}\ndomain_name: A\nuser_domain_name: B\n"))
    fails(file, "resource[0].auth_data.user_domain_name", "disagree")


def test_openid_and_password_together_are_two_methods(micado_dir: Path) -> None:
    file = write(micado_dir, nova(f"username: a\npassword: {SECRET}\nidentity_provider: egi\naccess_token: {SECRET}\n"))
    fails(file, "resource[0].auth_data", "more than one authentication method", "OpenID Connect")


# --- kinds -----------------------------------------------------------------------------------


def test_unsupported_kind_is_refused_before_reading(micado_dir: Path) -> None:
    with pytest.raises(CredentialsError, match="'azure' are not supported yet; supported types: nova, ec2"):
        load_credentials("azure")
    with pytest.raises(CredentialsError, match="supported types: nova, ec2"):
        credentials_template("gce")


def test_errors_are_micado_exceptions(micado_dir: Path) -> None:
    with pytest.raises(MicadoException):
        load_credentials()


def test_template_is_valid_yaml_in_the_expected_format() -> None:
    from ruamel.yaml import YAML

    document = YAML(typ="safe").load(credentials_template())
    (entry,) = document["resource"]
    assert entry["type"] == "nova"
    assert set(entry["auth_data"]) == {"username", "password", "domain_name"}


# --- ec2 -------------------------------------------------------------------------------------


def ec2(auth_data: str) -> str:
    """A credentials file with a nova entry left blank and one ec2 entry (resource[1])."""
    body = textwrap.indent(textwrap.dedent(auth_data), " " * 4)
    return f"resource:\n- type: nova\n  auth_data:\n    username:\n- type: ec2\n  auth_data:\n{body}"


def test_ec2_access_key(micado_dir: Path) -> None:
    write(micado_dir, ec2(f"accesskey: AKIAEXAMPLE123\nsecretkey: \"{SECRET}\"\n"))
    creds = load_credentials("ec2")
    assert creds == EC2Auth("AKIAEXAMPLE123", SECRET)
    assert SECRET not in repr(creds)
    assert "AKIAEXAMPLE123" in repr(creds)


def test_ec2_in_micado_s_sample_file_next_to_a_filled_nova_entry(micado_dir: Path) -> None:
    write(micado_dir, f"""\
        resource:
        - type: ec2
          auth_data:
            accesskey: AKIAEXAMPLE123
            secretkey: "{SECRET}"
        - type: nova
          auth_data:
            username: alice
            password: "{SECRET}"
        """)
    assert load_credentials("ec2") == EC2Auth("AKIAEXAMPLE123", SECRET)
    assert load_credentials("nova") == PasswordAuth("alice", SECRET)


@pytest.mark.parametrize(("auth_data", "key", "fragments"), [
    ("accesskey: AKIAEXAMPLE123\nsecretkey:\n", "resource[1].auth_data.secretkey",
     ("secretkey is missing", "accesskey is given")),
    (f"secretkey: {SECRET}\n", "resource[1].auth_data.accesskey", ("accesskey is missing",)),
    ("accesskey:\nsecretkey:\n", "resource[1].auth_data", ("fills in no authentication method",
                                                           "accesskey + secretkey")),
    ('accesskey: ""\nsecretkey: ""\n', "resource[1].auth_data.accesskey", ("empty values",)),
    (f'accesskey: "  "\nsecretkey: {SECRET}\n', "resource[1].auth_data.accesskey", ("accesskey is empty",)),
    (f"accesskey: 12345\nsecretkey: {SECRET}\n", "resource[1].auth_data.accesskey", ("must be text", "quotes")),
    ("accesskey: AKIAEXAMPLE123\nsecretkey: 12345\n", "resource[1].auth_data.secretkey", ("must be text",)),
    (f"accesskey: YOUR_ACCESS_KEY_ID\nsecretkey: {SECRET}\n", "resource[1].auth_data.accesskey",
     ("template's placeholder",)),
    (f"accesskey: AKIA EXAMPLE\nsecretkey: {SECRET}\n", "resource[1].auth_data.accesskey", ("white space",)),
    (f"accesskey: AKIAEXAMPLE123\nsecretkey: {SECRET}\nregion: eu-west-1\n", "resource[1].auth_data.region",
     ("unknown key(s) region", "valid keys: accesskey, secretkey")),
])
def test_ec2_malformed_cases_are_distinct_errors(micado_dir: Path, auth_data: str, key: str,
                                                 fragments: tuple[str, ...]) -> None:
    file = write(micado_dir, ec2(auth_data))
    fails(file, key, *fragments, kind="ec2")


def test_ec2_missing_entry_and_template(micado_dir: Path) -> None:
    file = write(micado_dir, nova(f"username: a\npassword: {SECRET}\n"))
    fails(file, "resource", "no resource entry of type 'ec2'", "types present: nova", "accesskey:", kind="ec2")
    from ruamel.yaml import YAML

    (entry,) = YAML(typ="safe").load(credentials_template("ec2"))["resource"]
    assert entry == {"type": "ec2", "auth_data": {"accesskey": "YOUR_ACCESS_KEY_ID",
                                                  "secretkey": "YOUR_SECRET_ACCESS_KEY"}}


def test_the_written_template_is_private_never_replaces_a_file_and_loads_once_filled_in(micado_dir: Path) -> None:
    file = write_credentials_template()
    assert file == paths.credentials_file()
    assert (file.stat().st_mode & 0o777, micado_dir.stat().st_mode & 0o777) == (0o600, 0o700)
    with pytest.raises(CredentialsError, match="fills in no authentication method"):
        load_credentials("nova")  # blank values, as in MiCADO's own sample
    with pytest.raises(CredentialsError, match="already exists"):
        write_credentials_template()
    text = file.read_text()
    # every commented line of the OpenID form uncommented: still MiCADO's format, still valid
    lines = [line[2:] if line.startswith(("# pre_auth", "# - type", "#   ", "#     ")) else line
             for line in text.splitlines()]
    filled = "\n".join(lines).replace("    username:\n    password:", f"    username: alice\n    password: {SECRET}")
    filled = filled.replace("    # access_token: *OPENID", "    access_token: *OPENID")
    file.write_text(filled.replace("accesskey:    ", "accesskey: AKIA ").replace("secretkey:    ", f"secretkey: {SECRET}"))
    assert load_credentials("nova") == PasswordAuth("alice", SECRET, user_domain_name="Default")
    assert load_credentials("ec2") == EC2Auth("AKIA", SECRET)
