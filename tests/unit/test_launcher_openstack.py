"""The OpenStack launcher through the real keystoneauth1, novaclient and openstacksdk,
over HTTP on 127.0.0.1 against the OpenStack emulator (fixture ``openstack_cloud``)."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time

import pytest

from micado.config.credentials import ApplicationCredentialAuth, PasswordAuth
from micado.exceptions import InvalidArgument, LaunchError, MicadoTimeout
from micado.launcher.base import LaunchedVM, LaunchSpec, cloud_init_user_data
from micado.launcher.openstack import OpenStackLauncher

PUBLIC_KEY = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY= micado@test"


def password_launcher(cloud, **options) -> OpenStackLauncher:
    login = cloud.login
    options.setdefault("project_id", login["project_id"])
    options.setdefault("region", login["region"])
    options.setdefault("request_timeout", 5)
    return OpenStackLauncher(PasswordAuth(login["username"], login["password"]),
                             auth_url=login["auth_url"], **options)


def app_cred_launcher(cloud) -> OpenStackLauncher:
    login = cloud.login
    creds = ApplicationCredentialAuth(login["application_credential_id"], login["application_credential_secret"])
    return OpenStackLauncher(creds, auth_url=login["auth_url"], request_timeout=5)


def make_spec(cloud, **overrides) -> LaunchSpec:
    seeded = cloud.seeded
    fields = {k: seeded[k] for k in ("image", "flavor", "network", "keypair", "security_group")}
    fields["user_data"] = cloud_init_user_data(PUBLIC_KEY)
    fields.update(overrides)
    return LaunchSpec(**fields)


def assert_clean(cloud) -> None:
    assert cloud.leftovers() == {"servers": [], "attached_floating_ips": [], "allocated_floating_ips": []}


def creating_requests(cloud) -> list:
    return [r for r in cloud.requests if r[0] in ("POST", "PUT", "DELETE") and "/identity/" not in r[1]]


# --- the happy paths ---------------------------------------------------------------


def test_password_login_launches_and_deletes(openstack_cloud):
    cloud = openstack_cloud
    events = []
    launcher = password_launcher(cloud)
    vm = launcher.launch(make_spec(cloud), timeout=10, progress=lambda stage, msg: events.append((stage, msg)))

    [server] = cloud.servers
    assert server["id"] == vm.server_id
    assert server["status"] == "ACTIVE"
    assert server["name"].startswith("MiCADO-Master-")
    assert server["name"] == vm.name
    assert PUBLIC_KEY in server["user_data"]
    assert server["user_data"].startswith("#cloud-config")
    assert server["key_name"] == "micado-key"
    assert server["security_groups"] == [{"name": "all"}]
    [fip] = cloud.floating_ips
    assert fip["floating_ip_address"] == vm.ip
    assert fip["id"] == vm.floating_ip_id
    assert fip["allocated_by"] == "api"
    assert vm.floating_ip_allocated
    [port] = [p for p in cloud.ports if p["device_id"] == vm.server_id]
    assert fip["port_id"] == port["id"]
    assert vm.private_ip == port["fixed_ips"][0]["ip_address"]
    assert launcher.state(vm.server_id) == "ACTIVE"
    assert all(stage == "launch" for stage, _ in events)
    assert any("ACTIVE" in msg for _, msg in events)

    removal = launcher.delete(vm, timeout=10)
    assert removal.server_found
    assert removal.floating_ip_released
    assert removal.warnings == []
    assert launcher.state(vm.server_id) is None
    assert_clean(cloud)
    assert cloud.floating_ips == []


def test_application_credential_login_launches_and_deletes(openstack_cloud):
    with app_cred_launcher(openstack_cloud) as launcher:
        vm = launcher.launch(make_spec(openstack_cloud), timeout=10)
        assert launcher.state(vm.server_id) == "ACTIVE"
    logins = [r for r in openstack_cloud.requests if r == ("POST", "/identity/v3/auth/tokens")]
    assert len(logins) == 1
    launcher.delete(vm, timeout=10)  # closed: it logs in again
    assert len([r for r in openstack_cloud.requests if r == ("POST", "/identity/v3/auth/tokens")]) == 2
    assert_clean(openstack_cloud)


def test_resources_are_found_by_id(openstack_cloud):
    cloud = openstack_cloud
    image_id = next(i for i in cloud.images_by_id.values() if i["name"] == cloud.seeded["image"])["id"]
    flavor_id = next(f["id"] for f in cloud.flavors_by_id.values() if f["name"] == cloud.seeded["flavor"])
    network_id = cloud.find_network("private")["id"]
    group_id = next(g["id"] for g in cloud.security_groups_by_id.values() if g["name"] == "all")
    spec = make_spec(cloud, image=image_id, flavor=flavor_id, network=network_id, security_group=group_id)
    launcher = password_launcher(cloud)
    vm = launcher.launch(spec, timeout=10)
    [server] = cloud.servers
    assert server["image"]["id"] == image_id
    assert server["flavor"]["id"] == flavor_id
    assert server["network_ids"] == [network_id]
    assert server["security_groups"] == [{"name": "all"}]
    launcher.delete(vm, timeout=10)
    assert_clean(cloud)


def test_free_floating_ip_is_reused_and_kept(openstack_cloud):
    cloud = openstack_cloud
    fip_id = cloud.add_floating_ip("127.100.0.7")
    launcher = password_launcher(cloud)
    vm = launcher.launch(make_spec(cloud), timeout=10)
    assert vm.ip == "127.100.0.7"
    assert vm.floating_ip_id == fip_id
    assert not vm.floating_ip_allocated
    assert [f["allocated_by"] for f in cloud.floating_ips] == ["seed"]

    removal = launcher.delete(vm, timeout=10)
    assert not removal.floating_ip_released
    [fip] = cloud.floating_ips
    assert fip["id"] == fip_id
    assert fip["port_id"] is None
    assert_clean(cloud)


def test_other_projects_floating_ips_and_groups_are_not_ours(openstack_cloud):
    cloud = openstack_cloud
    foreign = cloud.add_floating_ip("127.100.0.8", project_id="another-project")
    cloud.add_security_group("all", project_id="another-project")  # only an admin token would see it
    launcher = password_launcher(cloud)
    vm = launcher.launch(make_spec(cloud), timeout=10)
    assert vm.floating_ip_allocated
    assert vm.floating_ip_id != foreign
    launcher.delete(vm, timeout=10)
    assert [(f["id"], f["port_id"]) for f in cloud.floating_ips] == [(foreign, None)]
    assert_clean(cloud)


def test_floating_ip_comes_from_the_named_external_network(openstack_cloud):
    cloud = openstack_cloud
    second = cloud.add_network("public-2", cidr="127.101.0.0/24", external=True)
    launcher = password_launcher(cloud)
    with pytest.raises(LaunchError, match=r"several external networks \(public, public-2\)"):
        launcher.launch(make_spec(cloud), timeout=10)
    assert_clean(cloud)

    vm = launcher.launch(make_spec(cloud, floating_network="public-2"), timeout=10)
    assert [f["floating_network_id"] for f in cloud.floating_ips] == [second]
    launcher.delete(vm, timeout=10)
    assert_clean(cloud)


# --- lookups that fail -------------------------------------------------------------


@pytest.mark.parametrize(
    "field, kind, available",
    [
        ("image", "image", "ubuntu-22.04"),
        ("flavor", "flavor", "m1.medium, m1.small"),
        ("network", "network", "private, public"),
        ("keypair", "key pair", "micado-key"),
        ("security_group", "security group", "all, default"),
        ("floating_network", "external network", "public"),
    ],
)
def test_unknown_resource_is_named_with_what_exists(openstack_cloud, field, kind, available):
    launcher = password_launcher(openstack_cloud)
    with pytest.raises(LaunchError) as caught:
        launcher.launch(make_spec(openstack_cloud, **{field: "nope"}), timeout=10)
    assert str(caught.value) == f"unknown {kind} 'nope'; available: {available}"
    assert creating_requests(openstack_cloud) == []
    assert_clean(openstack_cloud)


def test_several_unknown_resources_are_reported_at_once(openstack_cloud):
    launcher = password_launcher(openstack_cloud)
    with pytest.raises(LaunchError) as caught:
        launcher.launch(make_spec(openstack_cloud, image="nope", flavor="huge", keypair="mine"), timeout=10)
    assert str(caught.value) == ("unknown image 'nope'; available: ubuntu-22.04; unknown flavor 'huge'; available: "
                                 "m1.medium, m1.small; unknown key pair 'mine'; available: micado-key")
    assert creating_requests(openstack_cloud) == []
    assert_clean(openstack_cloud)


def test_ambiguous_image_name_is_an_error_and_the_id_still_works(openstack_cloud):
    cloud = openstack_cloud
    twin = cloud.add_image("ubuntu-22.04")
    launcher = password_launcher(cloud)
    with pytest.raises(LaunchError, match=r"ambiguous image 'ubuntu-22.04': 2 images have that name .*give the id"):
        launcher.launch(make_spec(cloud), timeout=10)
    assert creating_requests(cloud) == []
    vm = launcher.launch(make_spec(cloud, image=twin), timeout=10)
    assert cloud.servers[0]["image"]["id"] == twin
    launcher.delete(vm, timeout=10)


# --- faults: a typed error and nothing left behind ----------------------------------


def _fault_on_boot(server: dict) -> None:
    raise RuntimeError("cloud-init could not reach the metadata service")


@pytest.mark.parametrize(
    "fault, value, error, message",
    [
        ("auth_failure", True, LaunchError, "authentication failed at http://127.0.0.1:"),
        ("image_missing", True, LaunchError, "Nova refused to create server .*Image .* could not be found"),
        ("server_error", "No valid host was found.", LaunchError, "went to ERROR: No valid host was found."),
        ("boot_hangs", True, MicadoTimeout, r"MiCADO-Master-.* was still BUILD when the launch timeout of 1 s ran out"),
        ("quota_exceeded", True, LaunchError, "Quota exceeded for instances.*HTTP 403"),
        ("floating_ip_pool_empty", True, LaunchError, "No more IP addresses available on network"),
        ("on_boot", _fault_on_boot, LaunchError, "went to ERROR: cloud-init could not reach the metadata"),
    ],
)
@pytest.mark.parametrize("free_ip", [False, True], ids=["allocating", "reusing"])
def test_fault_leaves_nothing_behind(openstack_cloud, fault, value, error, message, free_ip):
    cloud = openstack_cloud
    if free_ip:
        seed = cloud.add_floating_ip()
    if fault == "on_boot":
        cloud.on_boot = value
    else:
        setattr(cloud.faults, fault, value)
    launcher = password_launcher(cloud)
    if free_ip and fault == "floating_ip_pool_empty":
        # nothing needs allocating when a free floating IP exists: the empty pool is no failure
        vm = launcher.launch(make_spec(cloud), timeout=1.0)
        assert (vm.floating_ip_id, vm.floating_ip_allocated) == (seed, False)
        launcher.delete(vm, timeout=5.0)
    else:
        with pytest.raises(error, match=message):
            launcher.launch(make_spec(cloud), timeout=1.0)
    assert_clean(cloud)
    if free_ip:
        assert [(f["id"], f["port_id"]) for f in cloud.floating_ips] == [(seed, None)]


def test_failed_attach_undoes_server_and_floating_ip(openstack_cloud):
    cloud = openstack_cloud

    def on_address(server_id: str, address: str | None) -> None:
        if address is not None:
            raise RuntimeError("the address could not be routed")

    cloud.on_address = on_address
    with pytest.raises(LaunchError, match=r"failed to attach floating IP .*Internal error: the address could not be"):
        password_launcher(cloud).launch(make_spec(cloud), timeout=5)
    assert_clean(cloud)


def test_failed_undo_is_noted_on_the_original_error(openstack_cloud):
    cloud = openstack_cloud
    cloud.faults.server_error = "boom"
    events = []

    def progress(stage: str, msg: str) -> None:
        events.append(msg)
        if msg.startswith("undoing: delete server"):
            cloud.stop()  # the cloud vanishes: every undo step fails

    launcher = password_launcher(cloud)
    with pytest.raises(LaunchError, match="went to ERROR: boom") as caught:
        launcher.launch(make_spec(cloud), timeout=5, progress=progress)
    notes = getattr(caught.value, "__notes__", [])
    assert any("could not delete server" in n for n in notes)
    assert any("could not release floating IP" in n for n in notes)


def test_wrong_password_is_a_clear_error_without_the_password(openstack_cloud):
    login = openstack_cloud.login
    launcher = OpenStackLauncher(PasswordAuth(login["username"], "wrong-secret"), auth_url=login["auth_url"],
                                 project_id=login["project_id"])
    with pytest.raises(LaunchError) as caught:
        launcher.launch(make_spec(openstack_cloud), timeout=5)
    text = str(caught.value)
    assert f"user '{login['username']}' in domain 'Default'" in text
    assert "refused the credentials" in text
    assert "wrong-secret" not in text
    assert "wrong-secret" not in repr(launcher)
    assert_clean(openstack_cloud)


def test_unknown_region_lists_the_catalog_regions(openstack_cloud):
    launcher = password_launcher(openstack_cloud, region="Nowhere")
    with pytest.raises(LaunchError, match="no public endpoint .* region 'Nowhere'; regions: RegionOne"):
        launcher.launch(make_spec(openstack_cloud), timeout=5)
    assert_clean(openstack_cloud)


def test_unreachable_cloud_is_a_launch_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    launcher = OpenStackLauncher(PasswordAuth("u", "p"), auth_url=f"http://127.0.0.1:{port}/v3",
                                 project_id="p", request_timeout=2)
    with pytest.raises(LaunchError, match=f"cannot reach the OpenStack cloud at http://127.0.0.1:{port}/v3"):
        launcher.launch(LaunchSpec(image="i", flavor="f", network="n"), timeout=5)


# --- bad input fails before any request ----------------------------------------------


def test_bad_spec_fails_before_any_request(openstack_cloud):
    launcher = password_launcher(openstack_cloud)
    for bad in ({"image": ""}, {"flavor": "  "}, {"keypair": ""}, {"name": "has space"}, {"user_data": b"x"},
                {"user_data": "x" * 60000}):
        with pytest.raises(InvalidArgument):
            launcher.launch(make_spec(openstack_cloud, **bad), timeout=5)
    for timeout in (0, -1, None, "60", True, float("nan")):
        with pytest.raises(InvalidArgument, match="timeout must be a positive number"):
            launcher.launch(make_spec(openstack_cloud), timeout=timeout)
        with pytest.raises(InvalidArgument, match="timeout must be a positive number"):
            launcher.delete("some-server", timeout=timeout)
    for timeout in (0, None, True):
        with pytest.raises(InvalidArgument, match="request_timeout must be a positive number"):
            password_launcher(openstack_cloud, request_timeout=timeout)
    assert openstack_cloud.requests == []


@pytest.mark.parametrize(
    "auth_url, message",
    [("", "auth_url must be"), ("keystone.example:5000", "not an http"), ("ftp://host/v3", "not an http"),
     ("http://host:port/v3", "not a valid URL"), ("http://host:5000/v2.0", "Keystone v2")],
)
def test_bad_auth_url_fails_at_construction(auth_url, message):
    with pytest.raises(InvalidArgument, match=message):
        OpenStackLauncher(PasswordAuth("u", "p"), auth_url=auth_url, project_id="p")


def test_auth_url_gains_v3():
    launcher = OpenStackLauncher(PasswordAuth("u", "p"), auth_url="https://cloud:5000/", project_id="p")
    assert launcher.auth_url == "https://cloud:5000/v3"


def test_password_login_needs_a_project_id(openstack_cloud):
    login = openstack_cloud.login
    with pytest.raises(InvalidArgument, match="project_id is required for username/password login"):
        OpenStackLauncher(PasswordAuth(login["username"], login["password"]), auth_url=login["auth_url"])
    from_file = OpenStackLauncher(
        PasswordAuth(login["username"], login["password"], user_domain_name="Other", project_id="abc"),
        auth_url=login["auth_url"],
    )
    assert from_file.project_id == "abc"
    assert from_file.user_domain_name == "Other"
    with pytest.raises(InvalidArgument, match="PasswordAuth, an ApplicationCredentialAuth or an OIDCAuth"):
        OpenStackLauncher({"username": "u"}, auth_url=login["auth_url"])  # type: ignore[arg-type]
    assert openstack_cloud.requests == []


# --- delete ------------------------------------------------------------------------


def test_delete_of_a_server_already_gone_is_reported_not_raised(openstack_cloud):
    launcher = password_launcher(openstack_cloud)
    vm = launcher.launch(make_spec(openstack_cloud), timeout=10)
    launcher.delete(vm, timeout=10)
    again = launcher.delete(vm.server_id, floating_ip_id=vm.floating_ip_id, floating_ip_allocated=True, timeout=10)
    assert not again.server_found
    assert not again.floating_ip_released
    assert any("already gone" in w for w in again.warnings)
    assert_clean(openstack_cloud)


def test_delete_waits_for_a_slow_deletion(openstack_cloud):
    openstack_cloud.delete_delay = 0.3
    launcher = password_launcher(openstack_cloud)
    vm = launcher.launch(make_spec(openstack_cloud), timeout=10)
    record = LaunchedVM.from_dict(vm.to_dict())  # as the master record stores it
    assert record == vm
    removal = launcher.delete(record, timeout=10)
    assert removal.server_found
    assert openstack_cloud.servers == []
    assert_clean(openstack_cloud)


def test_cloud_init_user_data_accepts_only_one_public_key():
    assert cloud_init_user_data(PUBLIC_KEY).endswith(f'  - "{PUBLIC_KEY}"\n')
    for bad in ("", "not a key", PUBLIC_KEY + "\n" + PUBLIC_KEY):
        with pytest.raises(InvalidArgument):
            cloud_init_user_data(bad)
    with pytest.raises(InvalidArgument, match="lacks ip"):
        LaunchedVM.from_dict({"server_id": "s", "name": "n"})


# --- answers that never arrive, interruptions and races -------------------------------


@pytest.mark.parametrize("free_ip", [False, True], ids=["allocating", "reusing"])
def test_lost_create_answer_still_deletes_the_server(openstack_cloud, free_ip):
    cloud = openstack_cloud
    if free_ip:
        seed = cloud.add_floating_ip()
    cloud.faults.lose_create_answer = True
    with pytest.raises(LaunchError, match=r"Nova failed to create server .*Unexpected API Error.*HTTP 500"):
        password_launcher(cloud).launch(make_spec(cloud), timeout=5)
    assert ("DELETE", f"/compute/v2.1/servers/{cloud.requests and _deleted_server(cloud)}") in cloud.requests
    assert_clean(cloud)
    if free_ip:
        assert [(f["id"], f["port_id"]) for f in cloud.floating_ips] == [(seed, None)]


def _deleted_server(cloud) -> str:
    [path] = [p for m, p in cloud.requests if m == "DELETE" and "/servers/" in p]
    return path.rsplit("/", 1)[1]


def test_lost_floating_ip_answer_still_releases_it(openstack_cloud):
    cloud = openstack_cloud
    cloud.faults.lose_floating_ip_answer = True
    with pytest.raises(LaunchError, match=r"failed to allocate a floating IP .*internal server error.*HTTP 500"):
        password_launcher(cloud).launch(make_spec(cloud), timeout=5)
    assert [r for r in cloud.requests if r[0] == "DELETE" and "/floatingips/" in r[1]]
    assert_clean(cloud)
    assert cloud.floating_ips == []


def test_create_that_times_out_still_deletes_the_server(openstack_cloud):
    cloud = openstack_cloud
    cloud.on_create = lambda server: time.sleep(1.5)  # Nova has the server; the answer comes too late
    launcher = password_launcher(cloud, request_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(LaunchError, match=r"did not answer within 0.5 s while trying to create server"):
        launcher.launch(make_spec(cloud), timeout=10)
    assert time.monotonic() - started < 5
    assert_clean(cloud)


def test_a_cloud_that_hangs_is_a_timely_launch_error(openstack_cloud):
    cloud = openstack_cloud
    cloud.faults.slow_answers = 2.0
    launcher = password_launcher(cloud, request_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(LaunchError, match=r"did not answer within 0.3 s while trying to log in"):
        launcher.launch(make_spec(cloud), timeout=10)
    assert time.monotonic() - started < 1.5  # one timeout, no silent retries
    cloud.faults.slow_answers = 0.0
    assert_clean(cloud)


def test_ctrl_c_during_the_create_request_deletes_the_server(openstack_cloud):
    cloud = openstack_cloud

    def interrupt(server: dict) -> None:
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        time.sleep(0.5)  # the client is interrupted before the answer arrives

    cloud.on_create = interrupt
    with pytest.raises(KeyboardInterrupt):
        password_launcher(cloud).launch(make_spec(cloud), timeout=10)
    assert_clean(cloud)


@pytest.mark.parametrize("moment", ["allocated floating IP", "created server", ": BUILD", "is ACTIVE at"])
def test_ctrl_c_at_any_moment_of_the_launch_undoes_it(openstack_cloud, moment):
    cloud = openstack_cloud
    cloud.boot_delay = 0.2
    seen = []

    def progress(stage: str, message: str) -> None:
        seen.append(message)
        if moment in message and not any(m.startswith("undoing") for m in seen):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        password_launcher(cloud).launch(make_spec(cloud), timeout=10, progress=progress)
    assert any(moment in m for m in seen)
    assert_clean(cloud)
    assert cloud.floating_ips == []


def test_a_second_ctrl_c_stops_the_undo_and_says_what_is_left(openstack_cloud):
    cloud = openstack_cloud
    cloud.faults.server_error = "boom"

    def progress(stage: str, message: str) -> None:
        if message.startswith("undoing: delete server"):
            raise KeyboardInterrupt  # the user presses Ctrl-C again while the undo runs

    with pytest.raises(KeyboardInterrupt) as caught:
        password_launcher(cloud).launch(make_spec(cloud), timeout=5, progress=progress)
    assert isinstance(caught.value.__context__, LaunchError)  # the launch's own error is chained
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert "undo of the launch was interrupted; not done: delete server MiCADO-Master-" in notes
    assert "release floating IP allocated for MiCADO-Master-" in notes
    assert len(cloud.servers) == 1  # left, as the notes say


def test_a_failing_progress_callback_does_not_stop_the_undo(openstack_cloud):
    cloud = openstack_cloud
    cloud.faults.server_error = "boom"

    def progress(stage: str, message: str) -> None:
        if message.startswith("undoing"):
            raise RuntimeError("broken callback")

    with pytest.raises(LaunchError, match="went to ERROR: boom"):
        password_launcher(cloud).launch(make_spec(cloud), timeout=5, progress=progress)
    assert_clean(cloud)


def test_two_launches_picking_the_same_free_floating_ip_do_not_share_it(openstack_cloud):
    cloud = openstack_cloud
    seed = cloud.add_floating_ip("127.100.0.5")
    first, second = password_launcher(cloud), password_launcher(cloud)
    other: list[LaunchedVM] = []

    def progress(stage: str, message: str) -> None:
        if message.startswith("created server") and not other:
            # While the first launch waits for its server, a second one takes the same free address.
            other.append(second.launch(make_spec(cloud), timeout=10))

    vm = first.launch(make_spec(cloud), timeout=10, progress=progress)
    [theirs] = other
    assert (theirs.floating_ip_id, theirs.floating_ip_allocated) == (seed, False)
    assert vm.floating_ip_id != seed
    assert vm.floating_ip_allocated
    ports = {p["device_id"]: p["id"] for p in cloud.ports}
    by_id = {f["id"]: f for f in cloud.floating_ips}
    assert by_id[seed]["port_id"] == ports[theirs.server_id]
    assert by_id[vm.floating_ip_id]["port_id"] == ports[vm.server_id]
    first.delete(vm, timeout=10)
    second.delete(theirs, timeout=10)
    assert_clean(cloud)
    assert [(f["id"], f["port_id"]) for f in cloud.floating_ips] == [(seed, None)]


def test_a_floating_ip_another_launch_allocated_is_not_free(openstack_cloud):
    cloud = openstack_cloud
    launcher = password_launcher(cloud)
    taken: list[LaunchedVM] = []

    def progress(stage: str, message: str) -> None:
        if message.startswith("created server") and not taken:
            # The first launch's fresh address is unattached for now, but it is not free.
            taken.append(password_launcher(cloud).launch(make_spec(cloud), timeout=10))

    spec = make_spec(cloud, store_id="a1" * 16)
    vm = launcher.launch(spec, timeout=10, progress=progress)
    [other] = taken
    assert vm.floating_ip_allocated
    assert other.floating_ip_allocated
    assert vm.ip != other.ip
    descriptions = {f["id"]: f["description"] for f in cloud.floating_ips}
    # the launch's marks follow the name (Neutron keeps 255 characters)
    marks = dict(part.split("=", 1) for part in descriptions[vm.floating_ip_id].split("; ")[1:])
    assert descriptions[vm.floating_ip_id].startswith(f"allocated by micado-client for {vm.name}; ")
    assert len(descriptions[vm.floating_ip_id]) <= 255
    assert marks["store"] == "a1" * 16 and marks["launch"] == spec.launch_token and marks["launched"]
    assert "store=" not in descriptions[other.floating_ip_id]  # a spec without store identity marks none
    metadata = cloud.server_snapshot(vm.server_id)["metadata"]
    assert metadata["micado-client-launch"] == spec.launch_token
    assert metadata["micado-client-store"] == "a1" * 16
    assert metadata["micado-client-launched"] == marks["launched"]
    assert {(m.kind, m.store, m.token) for m in launcher.marked() if m.name == vm.name} == {
        ("server", "a1" * 16, spec.launch_token), ("address", "a1" * 16, spec.launch_token)}
    launcher.delete(vm, timeout=10)
    launcher.delete(other, timeout=10)
    assert_clean(cloud)


def test_delete_leaves_a_floating_ip_someone_changed_meanwhile(openstack_cloud):
    cloud = openstack_cloud
    launcher = password_launcher(cloud)
    vm = launcher.launch(make_spec(cloud), timeout=10)

    def progress(stage: str, message: str) -> None:
        if message.startswith("detaching floating IP"):
            with cloud.lock:  # between our read and our detach, another client updates the address
                cloud.floating_ips_by_id[vm.floating_ip_id]["revision_number"] += 1

    removal = launcher.delete(vm, timeout=10, progress=progress)
    assert not removal.floating_ip_released
    assert any("changed by someone else while being detached" in w for w in removal.warnings)
    assert [f["id"] for f in cloud.floating_ips] == [vm.floating_ip_id]
    assert cloud.servers == []


@pytest.mark.parametrize("login", ["password", "application credential"])
def test_secrets_stay_out_of_debug_logs(openstack_cloud, caplog, login):
    cloud = openstack_cloud
    launcher = password_launcher(cloud) if login == "password" else app_cred_launcher(cloud)
    secret = cloud.login["password"] if login == "password" else cloud.login["application_credential_secret"]
    cloud.faults.server_error = "boom"
    with caplog.at_level(logging.DEBUG):  # every logger, the SDKs' request logs included
        with pytest.raises(LaunchError) as caught:
            launcher.launch(make_spec(cloud), timeout=5)
    assert any(r.name.startswith("keystoneauth") for r in caplog.records)  # the SDKs did log
    text = caplog.text + str(caught.value) + repr(launcher) + repr(launcher.credentials)
    assert secret not in text
    tokens = list(cloud.identity.tokens)
    assert tokens
    assert not any(token in text for token in tokens)
