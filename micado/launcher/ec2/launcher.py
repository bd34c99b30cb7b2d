"""The EC2 launcher: the MiCADO master as an EC2 instance (Amazon EC2 or an EC2-compatible cloud).

The arguments mirror the OpenStack launcher where the idea is the same:

====================  ==========================================================
``image``             the AMI: an id (``ami-0123abcd``) or the name of an image the
                      account owns
``flavor``            the instance type (``t3.medium``)
``network``           the subnet id (``subnet-0123abcd``); ``""`` or ``"default"``
                      for the default subnet of the region's default VPC
``keypair``           the EC2 key pair name (optional)
``security_group``    a security group id (``sg-0123abcd``) or name, in the
                      subnet's VPC
====================  ==========================================================

Reachability: with ``address="public"`` the master's address is the public IP the
subnet gives the instance; when it gives none, the launch allocates an Elastic IP,
associates it, and releases it again on failure or delete (only addresses it
allocated). With ``address="private"`` (a client inside the VPC) the private IP is used
and nothing is allocated.

Every instance and Elastic IP a launch makes carries the tags ``Name``,
``micado-client-launch=<launch token>``, ``micado-client-store=<store identity>``,
``micado-client-launched=<UTC time>`` and ``micado-client-creator`` (see
:func:`~micado.launcher.base.launch_marks`), Elastic IPs also
``micado-client-allocated-for=<master name>``: a create whose answer was lost is found
and removed by its tags, and :meth:`EC2Launcher.marked` finds what an interrupted
create left (``cleanup`` takes only what carries its own store identity). boto3 is
imported on the first request, and none of its exceptions leaves this module.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from micado import checks
from micado.arguments import Argument
from micado.exceptions import InvalidArgument, LaunchError
import micado.launcher.ec2.credentials as credentials_entry
from micado.launcher.ec2.api import ClientSettings, EC2Api, require_boto3
from micado.launcher.base import (
    CREATOR_TAG, LAUNCH_TAG, LAUNCHED_TAG, STORE_TAG, Launcher, LaunchedVM, LaunchSpec, MarkedResource, Removal,
    check_spec, launch_marks, pick,
)
from micado.undo import UndoStack
from micado.progress import ProgressCallback, as_callback, wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from micado.config.credentials import EC2Auth

__all__ = ["EC2Launcher", "LAUNCH_TAG", "STORE_TAG", "ALLOCATED_TAG", "ADDRESS_MODES"]

logger = logging.getLogger(__name__)

STAGE = "launch"
#: Seconds an undo step may wait for an instance to be terminated.
UNDO_TIMEOUT = 120.0
# LAUNCH_TAG, STORE_TAG...: the launch's marks, as tags on instances and Elastic IPs (see base).
#: Tag holding the master name on the Elastic IPs a launch allocated.
ALLOCATED_TAG = "micado-client-allocated-for"
#: ``address=`` values: the public (or Elastic) IP, or the private IP inside the VPC.
ADDRESS_MODES = ("public", "private")
#: EC2 limits user data to 16 KiB before base64 encoding.
MAX_USER_DATA = 16384
#: Instance states from which an instance never becomes running.
_FAILED_STATES = ("shutting-down", "terminated", "stopping", "stopped")
_LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
_MAX_PAGES = 100
_LISTED = 20  # at most this many names in an "available: ..." list

_AMI_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
_SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SG_RE = re.compile(r"^sg-[0-9a-f]{8,17}$")
_INSTANCE_RE = re.compile(r"^i-[0-9a-f]{8,17}$")
_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")
_AWS_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_REGION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TOKEN_RE = re.compile(r"^[\x21-\x7e]{1,64}$")  # EC2's ClientToken: up to 64 printable ASCII
_DEFAULT_NETWORK = ("", "default")


class EC2Launcher(Launcher):
    """Starts the MiCADO master as an EC2 instance.

    Constructing it checks the arguments and makes no request.

    Args:
        credentials: an :class:`~micado.config.credentials.EC2Auth`
            (``load_credentials("ec2")``).
        region: the region (``eu-west-1``); with ``endpoint_url``, the region name
            that cloud uses.
        endpoint_url: the EC2 API URL of an EC2-compatible cloud; ``None`` for AWS.
        address: ``"public"`` (the instance's public IP, or an Elastic IP) or
            ``"private"`` (its private IP, for clients inside the VPC).
        request_timeout: seconds to wait for each answer.
        connect_timeout: seconds to establish each connection.
        max_attempts: attempts of each read request (writes are tried once).
        verify: ``True`` (system CAs), a CA bundle path, or ``False`` (no check).

    Raises:
        MicadoException: boto3 is not installed (``pip install 'micado-client[ec2]'``).
        InvalidArgument: credentials of another type, a malformed region or URL, an
            unknown address mode, a non-positive timeout, a missing CA bundle.
    """

    options = (
        Argument("endpoint_url", "EC2 API URL of an EC2-compatible cloud", kind="url",
                 doc="the EC2 API URL of an EC2-compatible cloud."),
        Argument("address", "which address of the instance to use: public or private", "public", kind="choice",
                 choices=ADDRESS_MODES,
                 doc='``"public"`` (the instance\'s public IP, or an Elastic IP allocated for it) or '
                     '``"private"`` for a client inside the VPC.'),
    )
    name = "ec2"
    credential_type = "ec2"
    credentials_template = credentials_entry.TEMPLATE
    credentials_file_entry = credentials_entry.FILE_ENTRY

    @classmethod
    def read_credentials(cls, auth_data: Mapping[str, Any], file: Path, where: str, document: Any) -> EC2Auth:
        """The access key of the ``ec2`` entry: see :mod:`micado.launcher.ec2.credentials`."""
        return credentials_entry.read_entry(auth_data, file, where, document)

    def __init__(
        self,
        credentials: EC2Auth,
        *,
        region: str,
        endpoint_url: str | None = None,
        address: str = "public",
        request_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_attempts: int = 3,
        verify: bool | str | os.PathLike[str] = True,
    ) -> None:
        require_boto3()
        from micado.config.credentials import EC2Auth

        if not isinstance(credentials, EC2Auth):
            raise InvalidArgument(
                "credentials must be an EC2Auth (see micado.config.credentials.load_credentials('ec2')), "
                f"not {type(credentials).__name__}"
            )
        if endpoint_url is not None:
            checks.http_url("endpoint_url", endpoint_url, "an EC2 API endpoint")
            endpoint_url = endpoint_url.rstrip("/")
        if not isinstance(region, str) or not (_REGION_RE if endpoint_url else _AWS_REGION_RE).match(region):
            raise InvalidArgument(
                f"region must be an EC2 region name such as 'eu-west-1', not {region!r}"
                + ("" if endpoint_url else " (another cloud's own region names need endpoint_url=)")
            )
        if address not in ADDRESS_MODES:
            raise InvalidArgument(f"address must be one of {', '.join(ADDRESS_MODES)}, not {address!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or not 1 <= max_attempts <= 10:
            raise InvalidArgument(f"max_attempts must be a whole number from 1 to 10, not {max_attempts!r}")
        if not isinstance(verify, bool):
            if not os.path.exists(verify):
                raise InvalidArgument(f"verify={os.fspath(verify)!r}: no such CA bundle file")
            verify = os.fspath(verify)
        self.credentials = credentials
        self.region = region
        self.endpoint_url = endpoint_url
        self.address = address
        self.settings = ClientSettings(
            connect_timeout=checks.seconds("connect_timeout", connect_timeout),
            read_timeout=checks.seconds("request_timeout", request_timeout),
            max_attempts=max_attempts,
            verify=verify,
        )
        self._api = EC2Api(credentials, region, endpoint_url, self.settings)

    def __repr__(self) -> str:
        return (f"<EC2Launcher region={self.region!r} endpoint_url={self.endpoint_url!r} "
                f"address={self.address!r} {self._api.login()}>")

    # --- records ------------------------------------------------------------------------

    @classmethod
    def from_arguments(cls, credentials: Any, arguments: Mapping[str, Any]) -> EC2Launcher:
        """The launcher for ``create()``'s cloud arguments (``region``, ``endpoint_url``, ``address``).

        Raises:
            InvalidArgument: no region, or a malformed value.
        """
        if not arguments.get("region"):
            raise InvalidArgument("region is missing: the EC2 launcher needs region= (e.g. 'eu-west-1')")
        return cls(credentials, region=arguments["region"], endpoint_url=arguments.get("endpoint_url"),
                   address=arguments.get("address") or "public")

    def record_fields(self) -> dict[str, Any]:
        """What a master record keeps to find this cloud again (no secret).

        Returns:
            ``{"region": ..., "endpoint_url": ..., "address": ...}``.
        """
        return {"region": self.region, "endpoint_url": self.endpoint_url, "address": self.address}

    @classmethod
    def from_record(cls, credentials: EC2Auth, fields: Mapping[str, Any], **options: Any) -> EC2Launcher:
        """Build the launcher a record was made with (see :meth:`record_fields`).

        Args:
            credentials: the access key (records keep no secret).
            fields: what :meth:`record_fields` returned; unknown keys are ignored.
            options: further constructor arguments (timeouts, ``verify``).

        Raises:
            InvalidArgument: ``fields`` lacks the region, or a value is malformed.
        """
        if not isinstance(fields, Mapping) or not fields.get("region"):
            raise InvalidArgument(f"an EC2 master record needs a region; it has: {sorted(fields or {})}")
        return cls(credentials, region=fields["region"], endpoint_url=fields.get("endpoint_url"),
                   address=fields.get("address") or "public", **options)

    def close(self) -> None:
        """Close the connections; the next call reconnects."""
        self._api.close()

    # --- validation ---------------------------------------------------------------------

    def validate(self, spec: LaunchSpec) -> None:
        """Check the spec without contacting the cloud.

        Besides :func:`~micado.launcher.base.check_spec`: ``image`` is an AMI id or a
        name, ``flavor`` an instance type, ``network`` a subnet id or ``""``/``"default"``,
        a ``sg-`` security group is well formed, no ``floating_network`` (an OpenStack
        idea), user data of at most 16 KiB, a launch token EC2 accepts as ClientToken.

        Raises:
            InvalidArgument: a field is empty or malformed; the message names it.
        """
        if not isinstance(spec, LaunchSpec):
            raise InvalidArgument(f"expected a LaunchSpec, got {type(spec).__name__}")
        network = spec.network
        if not isinstance(network, str):
            raise InvalidArgument(f"network must be a subnet id or '' for the default VPC, got {network!r}")
        check_spec(dataclasses.replace(spec, network=network.strip() or "default"))
        if network.strip() not in _DEFAULT_NETWORK and not _SUBNET_RE.match(network.strip()):
            raise InvalidArgument(f"network must be a subnet id such as 'subnet-0123abcd' on EC2 (or '' for the "
                                  f"default VPC's default subnet), not {network!r}")
        if spec.image.startswith("ami-") and not _AMI_RE.match(spec.image):
            raise InvalidArgument(f"image {spec.image!r} is not an AMI id (ami- and 8 or 17 hex digits)")
        if not _TYPE_RE.match(spec.flavor):
            raise InvalidArgument(f"flavor must be an EC2 instance type such as 't3.medium', not {spec.flavor!r}")
        if spec.security_group.startswith("sg-") and not _SG_RE.match(spec.security_group):
            raise InvalidArgument(f"security_group {spec.security_group!r} is not a security group id "
                                  "(sg- and 8 or 17 hex digits); give the id or the group's name")
        if spec.floating_network is not None:
            raise InvalidArgument("floating_network is an OpenStack argument; on EC2 the launch uses the "
                                  "instance's public IP or allocates an Elastic IP")
        size = len(spec.user_data.encode("utf-8"))
        if size > MAX_USER_DATA:
            raise InvalidArgument(f"user_data is too large for EC2: {size} bytes, the limit is {MAX_USER_DATA}")
        if not isinstance(spec.launch_token, str) or not _TOKEN_RE.match(spec.launch_token):
            raise InvalidArgument("launch_token must be 1 to 64 printable ASCII characters without spaces")

    # --- resolution -------------------------------------------------------------------

    def _resolve(self, spec: LaunchSpec) -> dict[str, Any]:
        """Find the subnet (or default VPC), image, instance type, security group and key pair."""
        network = spec.network.strip()
        subnet_id = None if network in _DEFAULT_NETWORK else network
        vpc_id = self._subnet_vpc(subnet_id) if subnet_id else self._default_vpc()
        resolved = {
            "subnet": subnet_id,
            "vpc": vpc_id,
            "image": self._image(spec.image),
            "flavor": self._instance_type(spec.flavor),
            "security_group": self._security_group(spec.security_group, vpc_id),
            "keypair": None,
        }
        if spec.keypair is not None:
            found = self._api.call(f"find key pair '{spec.keypair}'", "describe_key_pairs",
                                   KeyNames=[spec.keypair], missing={"InvalidKeyPair.NotFound"})
            if not found or not found.get("KeyPairs"):
                names = [k["KeyName"] for k in self._read("list key pairs", "describe_key_pairs")["KeyPairs"]]
                pick("key pair", spec.keypair, [(n, n) for n in names])  # raises, listing the names
            resolved["keypair"] = spec.keypair
        return resolved

    def _read(self, doing: str, operation: str, **params: Any) -> dict[str, Any]:
        answer = self._api.call(doing, operation, **params)
        assert answer is not None  # no "missing" codes given
        return answer

    def _subnet_vpc(self, subnet_id: str) -> str:
        found = self._api.call(f"find subnet {subnet_id}", "describe_subnets", SubnetIds=[subnet_id],
                               missing={"InvalidSubnetID.NotFound"})
        if found and found.get("Subnets"):
            return str(found["Subnets"][0]["VpcId"])
        subnets = self._read("list subnets", "describe_subnets")["Subnets"]
        listed = ", ".join(f"{s['SubnetId']} ({s.get('CidrBlock', '?')} in {s.get('VpcId', '?')})"
                           for s in subnets[:_LISTED]) or "(none)"
        raise LaunchError(f"unknown subnet '{subnet_id}' (network) in region {self.region}; available: {listed}")

    def _default_vpc(self) -> str:
        vpcs = self._read("find the default VPC", "describe_vpcs",
                          Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise LaunchError(f"region {self.region} has no default VPC: give network= a subnet id")
        return str(vpcs[0]["VpcId"])

    def _image(self, image: str) -> str:
        if _AMI_RE.match(image):
            found = self._api.call(f"find image {image}", "describe_images", ImageIds=[image],
                                   missing={"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"})
            images = (found or {}).get("Images") or []
            if images:
                state = images[0].get("State", "available")
                if state != "available":
                    raise LaunchError(f"image {image} is {state}, not available")
                return image
        own = self._read("list the account's images", "describe_images", Owners=["self"])["Images"]
        candidates = [(i["ImageId"], i.get("Name") or i["ImageId"]) for i in own if i.get("State", "available")
                      == "available"]
        try:
            return pick("image", image, candidates)
        except LaunchError as exc:
            if len(candidates) > _LISTED:
                raise LaunchError(f"unknown image '{image}'; the account has {len(candidates)} images, "
                                  f"e.g. {', '.join(sorted(n for _, n in candidates)[:_LISTED])}") from None
            raise exc from None

    def _instance_type(self, flavor: str) -> str:
        found = self._api.call(f"find instance type {flavor}", "describe_instance_types", InstanceTypes=[flavor],
                               missing={"InvalidInstanceType"})
        if not found or not found.get("InstanceTypes"):
            family = flavor.split(".")[0]
            raise LaunchError(f"unknown instance type '{flavor}' (flavor) in region {self.region}; "
                              f"see the cloud's list of '{family}.*' types")
        return flavor

    def _security_group(self, wanted: str, vpc_id: str) -> str:
        groups = self._read(f"list the security groups of {vpc_id}", "describe_security_groups",
                            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
        return pick(f"security group (in {vpc_id})", wanted, [(g["GroupId"], g["GroupName"]) for g in groups])

    # --- launch -----------------------------------------------------------------------

    def launch(
        self, spec: LaunchSpec, *, timeout: float = 600.0, progress: ProgressCallback | None = None
    ) -> LaunchedVM:
        """Start the master instance (see :meth:`Launcher.launch`).

        Steps: resolve the subnet (or default VPC), image, instance type, security
        group and key pair; create the instance with the spec's user data and tags;
        wait until it is running (a stop or termination ends with EC2's state reason);
        with ``address="public"`` and no public IP from the subnet, allocate an Elastic
        IP and associate it.

        Undoing stays possible even when an answer is lost: the instance carries the
        launch token as a tag (and as ClientToken, so EC2 itself never starts two), an
        Elastic IP the tags ``micado-client-launch`` and ``micado-client-allocated-for``,
        so what a request made without answering is found and removed. A
        KeyboardInterrupt undoes too; a second one stops the undo, and the steps not done
        are added to the exception's notes.

        Raises:
            InvalidArgument: the spec is invalid (nothing was requested).
            LaunchError: a resource is unknown, the cloud refused a step or could not be
                reached, or the instance stopped or terminated; everything is undone.
            MicadoTimeout: the instance was not running in time; everything is undone.
        """
        return self._transaction(spec, timeout, progress)

    def _launch(self, spec: LaunchSpec, deadline: float, total: float, report: ProgressCallback,
                undo: UndoStack) -> LaunchedVM:
        report(STAGE, f"looking up the resources at {self._api.where}")
        resolved = self._resolve(spec)
        token = spec.launch_token
        created: list[str] = []
        # Registered before the request: if the answer is lost, the instance may exist all the same.
        undo.push(f"terminate instance {spec.name}", lambda: self._terminate_launched(token, created))
        params: dict[str, Any] = {
            "ImageId": resolved["image"], "InstanceType": resolved["flavor"], "MinCount": 1, "MaxCount": 1,
            "SecurityGroupIds": [resolved["security_group"]], "ClientToken": token,
            "TagSpecifications": [{"ResourceType": "instance", "Tags": self._tags(spec)}],
        }
        if spec.user_data:
            params["UserData"] = spec.user_data  # botocore base64-encodes it
        if resolved["subnet"]:
            params["SubnetId"] = resolved["subnet"]
        if resolved["keypair"]:
            params["KeyName"] = resolved["keypair"]
        answer = self._api.call(f"create instance {spec.name}", "run_instances", write=True, **params)
        assert answer is not None
        instance_id = str(answer["Instances"][0]["InstanceId"])
        created.append(instance_id)
        report(STAGE, f"created instance {spec.name} ({instance_id}); waiting until it runs")
        instance = self._wait_running(instance_id, spec.name, deadline, total, report)
        private_ip = instance.get("PrivateIpAddress")
        allocation_id: str | None = None
        if self.address == "private":
            if not private_ip:
                raise LaunchError(f"instance {spec.name} ({instance_id}) runs but has no private IP")
            ip = str(private_ip)
        elif instance.get("PublicIpAddress"):
            ip = str(instance["PublicIpAddress"])
            report(STAGE, f"the subnet gave instance {spec.name} the public IP {ip}")
        else:
            allocation_id, ip = self._allocate(spec, undo, report)
            self._api.call(f"associate Elastic IP {ip} with instance {spec.name}", "associate_address", write=True,
                           AllocationId=allocation_id, InstanceId=instance_id)
        report(STAGE, f"instance {spec.name} is running at {ip}")
        return LaunchedVM(server_id=instance_id, name=spec.name, ip=ip, floating_ip_id=allocation_id,
                          floating_ip_allocated=allocation_id is not None, private_ip=private_ip, launcher=self.name)

    @staticmethod
    def _tags(spec: LaunchSpec, *extra: tuple[str, str]) -> list[dict[str, str]]:
        pairs = [("Name", spec.name), *launch_marks(spec).items(), *extra]
        return [{"Key": key, "Value": value} for key, value in pairs]

    def _allocate(self, spec: LaunchSpec, undo: UndoStack, report: ProgressCallback) -> tuple[str, str]:
        """Allocate a tagged Elastic IP; its undo is registered before the request."""
        made: list[str] = []
        undo.push(f"release the Elastic IP allocated for {spec.name}",
                 lambda: self._release_allocated(made, spec.launch_token))
        tags = self._tags(spec, (ALLOCATED_TAG, spec.name))
        answer = self._api.call(f"allocate an Elastic IP for {spec.name}", "allocate_address", write=True,
                                Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": tags}])
        assert answer is not None
        made.append(str(answer["AllocationId"]))
        report(STAGE, f"allocated Elastic IP {answer['PublicIp']}")
        return str(answer["AllocationId"]), str(answer["PublicIp"])

    def _release_allocated(self, made: list[str], token: str) -> None:
        """Undo an allocation: the address made, or, if its answer was lost, those with the token."""
        ids = list(made) or [a["AllocationId"] for a in self._addresses_tagged(LAUNCH_TAG, token)]
        for allocation_id in ids:
            self._release(allocation_id, None)

    def _terminate_launched(self, token: str, created: list[str]) -> None:
        """Undo the create: the instance made, or, if its answer was lost, those carrying the token."""
        ids = list(created) or [i["InstanceId"] for i in self._instances_tagged(LAUNCH_TAG, token)]
        for instance_id in ids:
            self._terminate(instance_id, UNDO_TIMEOUT)

    def _wait_running(self, instance_id: str, name: str, deadline: float, total: float,
                      report: ProgressCallback) -> dict[str, Any]:
        last: dict[str, str | None] = {"state": None}

        def check() -> dict[str, Any] | None:
            instance = self._describe(instance_id)
            state = instance["State"]["Name"] if instance else None  # not yet visible: eventual consistency
            if state != last["state"]:
                last["state"] = state
                report(STAGE, f"instance {name}: {state or 'not visible yet'}")
            if state == "running":
                return instance
            if instance and state in _FAILED_STATES:
                reason = (instance.get("StateReason") or {}).get("Message") or instance.get(
                    "StateTransitionReason") or "EC2 gave no reason"
                raise LaunchError(f"instance {name} ({instance_id}) went to {state} instead of running: "
                                  f"{self._api.said(reason)}")
            return None

        what = f"instance {name} ({instance_id}) to be running"
        return wait_until(check, what=what, timeout=max(deadline - time.monotonic(), 0.0), stage=STAGE,
                          progress=report,
                          on_timeout=lambda: f"instance {name} ({instance_id}) was still "
                                             f"{last['state'] or 'not visible'} when the launch timeout of "
                                             f"{total:g} s ran out")

    # --- lookups --------------------------------------------------------------------------

    def _describe(self, instance_id: str) -> dict[str, Any] | None:
        found = self._api.call(f"get instance {instance_id}", "describe_instances", InstanceIds=[instance_id],
                               missing={"InvalidInstanceID.NotFound"})
        instances = [i for r in (found or {}).get("Reservations", []) for i in r.get("Instances", [])]
        return instances[0] if instances else None

    def _instances(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every instance that is not terminated and matches ``filters`` (all pages)."""
        filters = [*filters, {"Name": "instance-state-name", "Values": _LIVE_STATES}]
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"Filters": filters}
        for _ in range(_MAX_PAGES):
            page = self._read("list instances", "describe_instances", **params)
            found += [i for r in page.get("Reservations", []) for i in r.get("Instances", [])]
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]
        return found

    def _instances_tagged(self, key: str, value: str) -> list[dict[str, Any]]:
        return self._instances([{"Name": f"tag:{key}", "Values": [value]}])

    def _addresses_tagged(self, key: str, value: str | None = None) -> list[dict[str, Any]]:
        tag = {"Name": f"tag:{key}", "Values": [value]} if value else {"Name": "tag-key", "Values": [key]}
        return list(self._read("list Elastic IPs", "describe_addresses", Filters=[tag])["Addresses"])

    # --- what our launches made ------------------------------------------------------------

    def marked(self) -> list[MarkedResource]:
        """Instances tagged ``micado-client-launch`` and Elastic IPs tagged ``micado-client-allocated-for``.

        Terminated instances are left out (they are gone). See :meth:`Launcher.marked`.
        """
        found = []
        for instance in self._instances([{"Name": "tag-key", "Values": [LAUNCH_TAG]}]):
            tags = _tag_dict(instance)
            found.append(MarkedResource(kind="server", id=instance["InstanceId"],
                                        name=tags.get("Name", instance["InstanceId"]), token=tags[LAUNCH_TAG],
                                        **_marks(tags)))
        for address in self._addresses_tagged(ALLOCATED_TAG):
            tags = _tag_dict(address)
            found.append(MarkedResource(kind="address", id=address["AllocationId"], name=tags[ALLOCATED_TAG],
                                        token=tags.get(LAUNCH_TAG), address=address.get("PublicIp"),
                                        attached_to=address.get("InstanceId") or None, **_marks(tags)))
        return found

    def remove_marked(self, resource: MarkedResource, *, timeout: float = 300.0,
                      progress: ProgressCallback | None = None) -> None:
        """Terminate a marked instance (waiting until terminated), or disassociate and release an address."""
        report = as_callback(progress)
        checks.seconds("timeout", timeout)
        if resource.kind == "server":
            report("cleanup", f"terminating instance {resource.name} ({resource.id})")
            self._terminate(resource.id, timeout, report)
        elif resource.kind == "address":
            report("cleanup", f"releasing Elastic IP {resource.address} allocated for {resource.name}")
            self._release(resource.id, None)
        else:
            raise InvalidArgument(f"unknown resource kind {resource.kind!r}")

    # --- state and delete -------------------------------------------------------------

    def state(self, server_id: str) -> str | None:
        """Return the instance's EC2 state (``pending``, ``running``, ``stopped``...); ``None`` once terminated.

        Raises:
            LaunchError: the cloud could not be asked.
        """
        instance = self._describe(server_id)
        state = instance["State"]["Name"] if instance else None
        return None if state in (None, "terminated") else str(state)

    def delete(
        self,
        vm: LaunchedVM | str,
        *,
        floating_ip_id: str | None = None,
        floating_ip_allocated: bool = False,
        timeout: float = 300.0,
        progress: ProgressCallback | None = None,
    ) -> Removal:
        """Release the Elastic IP the launch allocated, terminate the instance, wait until terminated.

        See :meth:`Launcher.delete`. An Elastic IP the launch did not allocate is left
        alone, and so is one now associated with another instance (with a warning).

        Args:
            vm: the launched VM, or an instance id (then give the Elastic IP details).
            floating_ip_id: with an instance id: the Elastic IP's allocation id.
            floating_ip_allocated: with an instance id: whether the launch allocated it.
            timeout: seconds to wait until the instance is terminated.
            progress: receives ``("delete", message)`` events.

        Raises:
            InvalidArgument: ``vm`` is neither a LaunchedVM nor an instance id.
            LaunchError: the cloud refused a step.
            MicadoTimeout: the instance was not terminated after ``timeout`` seconds.
        """
        if isinstance(vm, LaunchedVM):
            server_id, floating_ip_id, floating_ip_allocated = vm.server_id, vm.floating_ip_id, vm.floating_ip_allocated
        elif isinstance(vm, str) and _INSTANCE_RE.match(vm):
            server_id = vm
        else:
            raise InvalidArgument(f"vm must be a LaunchedVM or an instance id (i-...), got {vm!r}")
        checks.seconds("timeout", timeout)
        report = as_callback(progress)
        removal = Removal(server_id=server_id)
        if floating_ip_id and floating_ip_allocated:
            report("delete", f"releasing Elastic IP {floating_ip_id}")
            removal.floating_ip_released = self._release(floating_ip_id, server_id, removal.warnings)
        report("delete", f"terminating instance {server_id}")
        removal.server_found = self._terminate(server_id, timeout, report)
        if not removal.server_found:
            removal.warnings.append(f"instance {server_id} was already gone")
        report("delete", f"instance {server_id} is terminated")
        return removal

    def _release(self, allocation_id: str, owner: str | None, warnings: list[str] | None = None) -> bool:
        """Disassociate (if associated) and release an Elastic IP; ``False`` if gone or left alone.

        With ``owner``, an address associated with another instance is left alone.
        """
        found = self._api.call(f"get Elastic IP {allocation_id}", "describe_addresses",
                               AllocationIds=[allocation_id], missing={"InvalidAllocationID.NotFound"})
        addresses = (found or {}).get("Addresses") or []
        if not addresses:
            if warnings is not None:
                warnings.append(f"Elastic IP {allocation_id} was already gone")
            return False
        address = addresses[0]
        if owner and address.get("InstanceId") and address["InstanceId"] != owner:
            if warnings is not None:
                warnings.append(f"Elastic IP {address.get('PublicIp')} is now associated with instance "
                                f"{address['InstanceId']}; left alone")
            return False
        if address.get("AssociationId"):
            self._api.call(f"disassociate Elastic IP {address.get('PublicIp')}", "disassociate_address", write=True,
                           AssociationId=address["AssociationId"], missing={"InvalidAssociationID.NotFound"})
        self._api.call(f"release Elastic IP {address.get('PublicIp')}", "release_address", write=True,
                       AllocationId=allocation_id, missing={"InvalidAllocationID.NotFound"})
        return True

    def _terminate(self, instance_id: str, timeout: float, report: ProgressCallback | None = None) -> bool:
        """Terminate the instance and wait until it is terminated; ``False`` if it was already gone."""
        before = self.state(instance_id)
        if before is None:
            return False
        self._api.call(f"terminate instance {instance_id}", "terminate_instances", write=True,
                       InstanceIds=[instance_id], missing={"InvalidInstanceID.NotFound"})
        wait_until(lambda: True if self.state(instance_id) is None else None,
                   what=f"instance {instance_id} to be terminated", timeout=timeout, stage="delete",
                   progress=report or as_callback(None))
        return True


def _marks(tags: dict[str, str]) -> dict[str, str | None]:
    """The store identity, launch time and creator in a resource's tags (``None`` where absent)."""
    return {"store": tags.get(STORE_TAG) or None, "launched": tags.get(LAUNCHED_TAG) or None,
            "creator": tags.get(CREATOR_TAG) or None}


def _tag_dict(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}
