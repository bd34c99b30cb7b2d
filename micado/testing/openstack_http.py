"""The HTTP face of the OpenStack emulator: routes, bodies and errors shaped like the real services'.

Keystone v3 under ``/identity``, Nova 2.1 under ``/compute``, Glance v2 under
``/image`` and Neutron v2.0 under ``/network``. The state lives in
:class:`micado.testing.openstack.OpenStackEmulator`; this module only translates
HTTP requests into reads and changes of it. Imported only when the emulator starts.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import secrets
import time
from typing import TYPE_CHECKING, Any, Callable

from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from micado.testing.openstack import REGION, EmulatorError, _new_id, _now

if TYPE_CHECKING:
    from micado.testing.openstack import OpenStackEmulator

__all__ = ["make_app", "QuietHandler"]

logger = logging.getLogger(__name__)

NOVA_MIN, NOVA_MAX = (2, 1), (2, 1)
_NOVA_ERROR_KINDS = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
                     406: "notAcceptable", 409: "conflictingRequest"}
_PAGING = {"limit", "marker", "fields", "sort_key", "sort_dir", "page_reverse"}


class QuietHandler(WSGIRequestHandler):
    """A request handler that does not log every request (werkzeug would print them)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Do not log requests."""

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's name
        """Do not log."""


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type="application/json")


def _error(service: str, exc: EmulatorError) -> Response:
    """An error body in the format of the service that refuses the request."""
    if service == "identity":
        titles = {401: "Unauthorized", 404: "Not Found", 400: "Bad Request"}
        body: Any = {"error": {"code": exc.status, "title": titles.get(exc.status, "Error"), "message": exc.message}}
        headers = {"WWW-Authenticate": 'Keystone uri="identity"'} if exc.status == 401 else {}
        return _json(body, exc.status, headers)
    if service == "compute":
        kind = _NOVA_ERROR_KINDS.get(exc.status, "computeFault")
        return _json({kind: {"code": exc.status, "message": exc.message}}, exc.status)
    if service == "network":
        return _json({"NeutronError": {"type": exc.kind or "NeutronError", "message": exc.message, "detail": ""}},
                     exc.status)
    reason = {401: "Unauthorized", 404: "Not Found", 400: "Bad Request", 409: "Conflict"}.get(exc.status, "Error")
    return Response(f"{exc.status} {reason}\n\n{exc.message}\n\n", status=exc.status, content_type="text/plain")


def _filtered(items: list[dict], args: Any) -> list[dict]:
    """Neutron/Glance-style filtering: every query key that is a field must equal it."""
    result = []
    for item in items:
        keep = True
        for key in args:
            if key in _PAGING or key not in item:
                continue
            wanted = args.getlist(key)
            value = item[key]
            shown = str(value).lower() if isinstance(value, bool) else ("" if value is None else str(value))
            if shown not in [w.lower() if isinstance(value, bool) else w for w in wanted]:
                keep = False
        if keep:
            result.append(item)
    return result


def _paged(items: list[dict], args: Any) -> tuple[list[dict], str | None]:
    """Apply ``marker``/``limit``; return the page and the marker of the next page, if any."""
    marker = args.get("marker")
    if marker:
        ids = [i.get("id") for i in items]
        items = items[ids.index(marker) + 1:] if marker in ids else []
    limit = args.get("limit", type=int)
    if limit and len(items) > limit:
        return items[:limit], items[limit - 1]["id"]
    return items, None


class _App:
    """The WSGI application: one instance per emulator."""

    def __init__(self, cloud: OpenStackEmulator) -> None:
        self.cloud = cloud
        c = self._compute_routes()
        self.routes: list[tuple[str, str, re.Pattern[str], Callable[..., Response]]] = [
            ("identity", "GET", re.compile(r"/identity"), self.keystone_versions),
            ("identity", "GET", re.compile(r"/identity/v3"), self.keystone_version),
            ("identity", "POST", re.compile(r"/identity/v3/auth/tokens"), self.issue_token),
            ("identity", "GET", re.compile(r"/identity/v3/auth/tokens"), self.validate_token),
            ("identity", "HEAD", re.compile(r"/identity/v3/auth/tokens"), self.validate_token),
            *c,
            ("image", "GET", re.compile(r"/image"), self.glance_versions),
            ("image", "GET", re.compile(r"/image/v2/images"), self.list_images),
            ("image", "GET", re.compile(r"/image/v2/images/(?P<image_id>[^/]+)"), self.show_image),
            ("network", "GET", re.compile(r"/network"), self.neutron_versions),
            *self._neutron_routes(),
        ]
        # Version discovery documents are public, as on the real services.
        self.unauthenticated = {self.nova_versions, self.nova_version, self.glance_versions,
                                self.neutron_versions}

    def _compute_routes(self) -> list:
        base = r"/compute/v2\.1"
        return [
            ("compute", "GET", re.compile(r"/compute"), self.nova_versions),
            ("compute", "GET", re.compile(base), self.nova_version),
            ("compute", "GET", re.compile(base + r"/flavors(?:/detail)?"), self.list_flavors),
            ("compute", "GET", re.compile(base + r"/flavors/(?P<flavor_id>[^/]+)"), self.show_flavor),
            ("compute", "GET", re.compile(base + r"/os-keypairs"), self.list_keypairs),
            ("compute", "GET", re.compile(base + r"/os-keypairs/(?P<name>[^/]+)"), self.show_keypair),
            ("compute", "GET", re.compile(base + r"/servers(?:/detail)?"), self.list_servers),
            ("compute", "POST", re.compile(base + r"/servers"), self.create_server),
            ("compute", "GET", re.compile(base + r"/servers/(?P<server_id>[^/]+)"), self.show_server),
            ("compute", "DELETE", re.compile(base + r"/servers/(?P<server_id>[^/]+)"), self.delete_server),
        ]

    def _neutron_routes(self) -> list:
        routes = []
        for plural, attr in (("networks", "networks_by_id"), ("subnets", "subnets_by_id"),
                             ("security-groups", "security_groups_by_id"), ("ports", "ports_by_id"),
                             ("floatingips", "floating_ips_by_id")):
            routes.append(("network", "GET", re.compile(rf"/network/v2\.0/{plural}"), self._lister(plural, attr)))
            routes.append(("network", "GET", re.compile(rf"/network/v2\.0/{plural}/(?P<item_id>[^/]+)"),
                           self._shower(plural, attr)))
        routes += [
            ("network", "POST", re.compile(r"/network/v2\.0/floatingips"), self.create_floating_ip),
            ("network", "PUT", re.compile(r"/network/v2\.0/floatingips/(?P<fip_id>[^/]+)"), self.update_floating_ip),
            ("network", "DELETE", re.compile(r"/network/v2\.0/floatingips/(?P<fip_id>[^/]+)"), self.delete_floating_ip),
        ]
        return routes

    # --- dispatch ---------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        path = request.path.rstrip("/") or "/"
        with self.cloud.lock:
            self.cloud.requests.append((request.method, path))
        if self.cloud.faults.slow_answers > 0:
            time.sleep(self.cloud.faults.slow_answers)
        response = self.dispatch(request, path)
        return response(environ, start_response)

    def dispatch(self, request: Request, path: str) -> Response:
        service = path.split("/")[1] if path != "/" else "identity"
        methods = []
        for route_service, method, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            methods.append(method)
            if method != request.method:
                continue
            try:
                if route_service != "identity" and handler not in self.unauthenticated:
                    self.cloud.check_token(request.headers.get("X-Auth-Token"))
                extra: dict[str, str] = {}
                if route_service == "compute":
                    extra = self._microversion(request)
                response = handler(request, **match.groupdict())
                response.headers.update(extra)
                return response
            except EmulatorError as exc:
                return _error(service, exc)
            except Exception as exc:  # a failing hook: answer like a service with an internal error
                logger.warning("%s %s failed: %s", request.method, path, exc)
                return _error(service, EmulatorError(500, f"Internal error: {exc}", "HTTPInternalServerError"))
        if methods:
            return _error(service, EmulatorError(405, f"The method {request.method} is not allowed for {path}."))
        return _error(service, EmulatorError(404, f"The resource could not be found: {path}", "HTTPNotFound"))

    def _microversion(self, request: Request) -> dict[str, str]:
        """Check Nova's microversion headers and return the ones to answer with."""
        wanted = request.headers.get("OpenStack-API-Version", "")
        wanted = wanted.split()[-1] if wanted.startswith("compute") else request.headers.get(
            "X-OpenStack-Nova-API-Version", "")
        version = NOVA_MIN
        if wanted and wanted != "latest":
            try:
                version = tuple(int(p) for p in wanted.split("."))  # type: ignore[assignment]
            except ValueError:
                raise EmulatorError(400, f"Invalid API version request string {wanted}") from None
            if not NOVA_MIN <= version <= NOVA_MAX:
                raise EmulatorError(406, f"Version {wanted} is not supported by the API. Minimum is "
                                         f"{'%d.%d' % NOVA_MIN} and maximum is {'%d.%d' % NOVA_MAX}.")
        text = "%d.%d" % version
        return {"OpenStack-API-Version": f"compute {text}", "X-OpenStack-Nova-API-Version": text,
                "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version"}

    # --- Keystone -------------------------------------------------------------------

    def _keystone_version_doc(self) -> dict:
        return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": f"{self.cloud.url}/identity/v3/"}],
                "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}

    def keystone_versions(self, request: Request) -> Response:
        return _json({"versions": {"values": [self._keystone_version_doc()]}}, 300)

    def keystone_version(self, request: Request) -> Response:
        return _json({"version": self._keystone_version_doc()})

    def _catalog(self) -> list[dict]:
        names = {"identity": "keystone", "compute": "nova", "image": "glance", "network": "neutron"}
        entries = []
        for kind, url in self.cloud.endpoints.items():
            name = names[kind]
            entries.append({"type": kind, "name": name, "id": secrets.token_hex(16), "endpoints": [
                {"id": secrets.token_hex(16), "interface": "public", "region": REGION, "region_id": REGION,
                 "url": url}]})
        return entries

    def issue_token(self, request: Request) -> Response:
        cloud = self.cloud
        unauthorized = EmulatorError(401, "The request you have made requires authentication.", "Unauthorized")
        if cloud.faults.auth_failure:
            raise unauthorized
        try:
            identity = request.get_json(force=True)["auth"]["identity"]
            methods = identity["methods"]
        except (TypeError, KeyError, ValueError):
            raise EmulatorError(400, "Expecting to find identity in auth.") from None
        domain = {"id": "default", "name": cloud.user_domain_name}
        token: dict[str, Any] = {"methods": methods, "audit_ids": [secrets.token_urlsafe(16)],
                                 "issued_at": _now(), "expires_at": "2099-01-01T00:00:00.000000Z",
                                 "user": {"id": cloud.user_id, "name": cloud.username, "domain": domain,
                                          "password_expires_at": None}}
        if methods == ["password"]:
            user = identity.get("password", {}).get("user", {})
            user_domain = user.get("domain", {})
            named = user.get("name") == cloud.username and (
                user_domain.get("name") == cloud.user_domain_name or user_domain.get("id") == "default")
            if not (named or user.get("id") == cloud.user_id) or user.get("password") != cloud.password:
                raise unauthorized
            project = (request.get_json(force=True)["auth"].get("scope") or {}).get("project")
            if project is not None:
                if project.get("id", project.get("name")) not in (cloud.project_id, cloud.project_name):
                    raise unauthorized
                token["project"] = {"id": cloud.project_id, "name": cloud.project_name, "domain": domain}
        elif methods == ["application_credential"]:
            credential = identity.get("application_credential", {})
            if credential.get("id") != cloud.app_cred_id or credential.get("secret") != cloud.app_cred_secret:
                raise unauthorized
            token["application_credential"] = {"id": cloud.app_cred_id, "name": "micado", "restricted": True}
            token["project"] = {"id": cloud.project_id, "name": cloud.project_name, "domain": domain}
        else:
            raise EmulatorError(401, f"Unsupported authentication methods: {methods}", "Unauthorized")
        if "project" in token:
            token.update(is_domain=False, roles=[{"id": secrets.token_hex(16), "name": "member"}],
                         catalog=self._catalog())
        token_id = cloud.issue_token(token)
        return _json({"token": token}, 201, {"X-Subject-Token": token_id})

    def validate_token(self, request: Request) -> Response:
        if self.cloud.token_info(request.headers.get("X-Auth-Token", "")) is None:
            raise EmulatorError(401, "The request you have made requires authentication.", "Unauthorized")
        subject = request.headers.get("X-Subject-Token", "")
        info = self.cloud.token_info(subject)
        if info is None:
            raise EmulatorError(404, f"Could not find token: {subject[:8]}...", "NotFound")
        return _json({"token": info}, 200, {"X-Subject-Token": subject})

    # --- Nova -----------------------------------------------------------------------

    def _nova_version_doc(self) -> dict:
        return {"id": "v2.1", "status": "CURRENT", "version": "%d.%d" % NOVA_MAX,
                "min_version": "%d.%d" % NOVA_MIN, "updated": "2013-07-23T11:33:21Z",
                "links": [{"rel": "self", "href": f"{self.cloud.url}/compute/v2.1/"}],
                "media-types": [{"base": "application/json",
                                 "type": "application/vnd.openstack.compute+json;version=2.1"}]}

    def nova_versions(self, request: Request) -> Response:
        return _json({"versions": [self._nova_version_doc()]})

    def nova_version(self, request: Request) -> Response:
        return _json({"version": self._nova_version_doc()})

    def _flavor_view(self, flavor: dict) -> dict:
        link = f"{self.cloud.url}/compute/v2.1/flavors/{flavor['id']}"
        return {**flavor, "links": [{"rel": "self", "href": link}, {"rel": "bookmark", "href": link}]}

    def list_flavors(self, request: Request) -> Response:
        with self.cloud.lock:
            return _json({"flavors": [self._flavor_view(f) for f in self.cloud.flavors_by_id.values()]})

    def show_flavor(self, request: Request, flavor_id: str) -> Response:
        with self.cloud.lock:
            flavor = self.cloud.flavors_by_id.get(flavor_id)
            if flavor is None:
                raise EmulatorError(404, f"Flavor {flavor_id} could not be found.")
            return _json({"flavor": self._flavor_view(flavor)})

    def list_keypairs(self, request: Request) -> Response:
        with self.cloud.lock:
            return _json({"keypairs": [{"keypair": dict(k)} for k in self.cloud.keypairs_by_name.values()]})

    def show_keypair(self, request: Request, name: str) -> Response:
        with self.cloud.lock:
            keypair = self.cloud.keypairs_by_name.get(name)
            if keypair is None:
                raise EmulatorError(404, f"Keypair {name} not found for user {self.cloud.user_id}")
            return _json({"keypair": {**keypair, "user_id": self.cloud.user_id, "deleted": False,
                                      "created_at": _now(), "updated_at": None, "deleted_at": None, "id": 1}})

    def _server_view(self, server: dict) -> dict:
        cloud = self.cloud
        addresses: dict[str, list] = {}
        for port in cloud.ports_by_id.values():
            if port["device_id"] != server["id"]:
                continue
            network = cloud.networks_by_id.get(port["network_id"], {"name": port["network_id"]})
            entries = addresses.setdefault(network["name"], [])
            for fixed in port["fixed_ips"]:
                entries.append({"version": 4, "addr": fixed["ip_address"], "OS-EXT-IPS:type": "fixed",
                                "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})
            for fip in cloud.floating_ips_by_id.values():
                if fip["port_id"] == port["id"]:
                    entries.append({"version": 4, "addr": fip["floating_ip_address"], "OS-EXT-IPS:type": "floating",
                                    "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})
        link = f"{cloud.url}/compute/v2.1/servers/{server['id']}"
        view = {k: copy.deepcopy(v) for k, v in server.items() if k not in ("user_data", "network_ids")}
        view.update(addresses=addresses, links=[{"rel": "self", "href": link}, {"rel": "bookmark", "href": link}])
        return view

    def list_servers(self, request: Request) -> Response:
        with self.cloud.lock:
            servers = list(self.cloud.servers_by_id.values())
            if request.args.get("name"):
                servers = [s for s in servers if re.search(request.args["name"], s["name"])]
            if request.path.rstrip("/").endswith("detail"):
                return _json({"servers": [self._server_view(s) for s in servers]})
            return _json({"servers": [{"id": s["id"], "name": s["name"], "links": []} for s in servers]})

    def show_server(self, request: Request, server_id: str) -> Response:
        with self.cloud.lock:
            server = self.cloud.servers_by_id.get(server_id)
            if server is None:
                raise EmulatorError(404, f"Instance {server_id} could not be found.")
            return _json({"server": self._server_view(server)})

    def create_server(self, request: Request) -> Response:
        cloud = self.cloud
        try:
            body = request.get_json(force=True)["server"]
        except (TypeError, KeyError, ValueError):
            raise EmulatorError(400, "Invalid input for field/attribute server.") from None
        with cloud.lock:
            if not body.get("name"):
                raise EmulatorError(400, "Invalid input for field/attribute name.")
            image_id, flavor_id = body.get("imageRef"), body.get("flavorRef")
            if image_id not in cloud.images_by_id or cloud.faults.image_missing:
                raise EmulatorError(400, f"Image {image_id} could not be found.")
            if flavor_id not in cloud.flavors_by_id:
                raise EmulatorError(400, f"Flavor {flavor_id} could not be found.")
            if body.get("key_name") is not None and body["key_name"] not in cloud.keypairs_by_name:
                raise EmulatorError(400, "Invalid key_name provided.")
            groups = []  # Nova takes names or ids and shows names
            for wanted in [g.get("name") for g in body.get("security_groups") or [{"name": "default"}]]:
                found = [g["name"] for g in cloud.security_groups_by_id.values() if wanted in (g["id"], g["name"])]
                if not found:
                    raise EmulatorError(400, f"Unable to find security_group with name or id '{wanted}'")
                groups.append(found[0])
            network_ids = [n.get("uuid") for n in body.get("networks") or [] if isinstance(n, dict)]
            if not network_ids:
                tenant = [n["id"] for n in cloud.networks_by_id.values() if not n["router:external"]]
                if len(tenant) != 1:
                    raise EmulatorError(409, "Multiple possible networks found, use a Network ID to be more specific.")
                network_ids = tenant
            for network_id in network_ids:
                if network_id not in cloud.networks_by_id:
                    raise EmulatorError(400, f"Network {network_id} could not be found.")
            if cloud.faults.quota_exceeded:
                raise EmulatorError(403, "Quota exceeded for instances: Requested 1, but already used 10 of 10 "
                                         "instances")
            user_data = cloud.decode_user_data(body.get("user_data"))
            server_id = _new_id()
            server = {
                "id": server_id, "name": body["name"], "status": "BUILD", "tenant_id": cloud.project_id,
                "user_id": cloud.user_id, "metadata": body.get("metadata") or {}, "hostId": "",
                "image": {"id": image_id, "links": []}, "flavor": {"id": flavor_id, "links": []},
                "created": _now(), "updated": _now(), "accessIPv4": "", "accessIPv6": "",
                "OS-DCF:diskConfig": "MANUAL", "progress": 0, "OS-EXT-AZ:availability_zone": "nova",
                "config_drive": "", "key_name": body.get("key_name"), "OS-SRV-USG:launched_at": None,
                "OS-SRV-USG:terminated_at": None, "security_groups": [{"name": g} for g in groups],
                "OS-EXT-STS:task_state": "spawning", "OS-EXT-STS:vm_state": "building",
                "OS-EXT-STS:power_state": 0, "os-extended-volumes:volumes_attached": [],
                "user_data": user_data, "network_ids": network_ids,
            }
            cloud.servers_by_id[server_id] = server
            group_ids = [g["id"] for g in cloud.security_groups_by_id.values() if g["name"] in groups]
            for network_id in network_ids:
                network = cloud.networks_by_id[network_id]
                port_id = _new_id()
                cloud.ports_by_id[port_id] = {
                    "id": port_id, "name": "", "network_id": network_id, "device_id": server_id,
                    "device_owner": "compute:nova", "mac_address": "fa:16:3e:%02x:%02x:%02x" % tuple(
                        secrets.token_bytes(3)),
                    "fixed_ips": [{"subnet_id": network["subnets"][0], "ip_address": cloud.next_fixed_ip(network)}],
                    "status": "ACTIVE", "admin_state_up": True, "project_id": cloud.project_id,
                    "tenant_id": cloud.project_id, "security_groups": group_ids, "binding:vnic_type": "normal",
                    "allowed_address_pairs": [], "extra_dhcp_opts": [], "tags": [], "description": "",
                    "port_security_enabled": True, "revision_number": 1, "created_at": _now(), "updated_at": _now(),
                }
        cloud.schedule(cloud.boot_delay, lambda: cloud.finish_boot(server_id))
        if cloud.on_create is not None:
            cloud.on_create(cloud.server_snapshot(server_id))
        if cloud.faults.lose_create_answer:
            raise EmulatorError(500, "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ "
                                     "and attach the Nova API log if possible.")
        link = f"{cloud.url}/compute/v2.1/servers/{server_id}"
        return _json({"server": {"id": server_id, "links": [{"rel": "self", "href": link}],
                                 "OS-DCF:diskConfig": "MANUAL", "adminPass": secrets.token_urlsafe(9),
                                 "security_groups": [{"name": g} for g in groups]}}, 202)

    def delete_server(self, request: Request, server_id: str) -> Response:
        cloud = self.cloud
        with cloud.lock:
            server = cloud.servers_by_id.get(server_id)
            if server is None:
                raise EmulatorError(404, f"Instance {server_id} could not be found.")
            server.update({"OS-EXT-STS:task_state": "deleting", "updated": _now()})
        if cloud.delete_delay > 0:
            cloud.schedule(cloud.delete_delay, lambda: cloud.remove_server(server_id))
        else:
            cloud.remove_server(server_id)
        return Response(status=204)

    # --- Glance ---------------------------------------------------------------------

    def glance_versions(self, request: Request) -> Response:
        link = [{"rel": "self", "href": f"{self.cloud.url}/image/v2/"}]
        versions = [{"id": f"v2.{minor}", "status": "CURRENT" if minor == 16 else "SUPPORTED", "links": link}
                    for minor in (16, 15, 9, 0)]
        return _json({"versions": versions}, 300)

    def list_images(self, request: Request) -> Response:
        with self.cloud.lock:
            images = _filtered([dict(i) for i in self.cloud.images_by_id.values()], request.args)
        page, next_marker = _paged(images, request.args)
        body: dict[str, Any] = {"images": page, "first": "/v2/images", "schema": "/v2/schemas/images"}
        if next_marker:
            body["next"] = f"/v2/images?marker={next_marker}&limit={request.args.get('limit')}"
        return _json(body)

    def show_image(self, request: Request, image_id: str) -> Response:
        with self.cloud.lock:
            image = self.cloud.images_by_id.get(image_id)
            if image is None:
                raise EmulatorError(404, f"No image found with ID {image_id}")
            return _json(dict(image))

    # --- Neutron --------------------------------------------------------------------

    def neutron_versions(self, request: Request) -> Response:
        return _json({"versions": [{"id": "v2.0", "status": "CURRENT",
                                    "links": [{"rel": "self", "href": f"{self.cloud.url}/network/v2.0/"}]}]})

    @staticmethod
    def _public(item: dict) -> dict:
        return {k: copy.deepcopy(v) for k, v in item.items() if k != "allocated_by"}

    def _lister(self, plural: str, attr: str) -> Callable[..., Response]:
        key = plural.replace("-", "_")

        def handler(request: Request) -> Response:
            with self.cloud.lock:
                items = _filtered([self._public(i) for i in getattr(self.cloud, attr).values()], request.args)
            page, next_marker = _paged(items, request.args)
            body: dict[str, Any] = {key: page}
            if next_marker:
                body[f"{key}_links"] = [{"rel": "next", "href": f"{self.cloud.url}/network/v2.0/{plural}?"
                                                               f"limit={request.args['limit']}&marker={next_marker}"}]
            return _json(body)

        return handler

    def _shower(self, plural: str, attr: str) -> Callable[..., Response]:
        singular = {"networks": "network", "subnets": "subnet", "security-groups": "security_group",
                    "ports": "port", "floatingips": "floatingip"}[plural]

        def handler(request: Request, item_id: str) -> Response:
            with self.cloud.lock:
                item = getattr(self.cloud, attr).get(item_id)
                if item is None:
                    kind = singular.replace("_", " ").title().replace(" ", "")
                    raise EmulatorError(404, f"{kind} {item_id} could not be found.", f"{kind}NotFound")
                return _json({singular: self._public(item)})

        return handler

    def create_floating_ip(self, request: Request) -> Response:
        try:
            body = request.get_json(force=True)["floatingip"]
            network_id = body["floating_network_id"]
        except (TypeError, KeyError, ValueError):
            raise EmulatorError(400, "Invalid input: floating_network_id is required.", "HTTPBadRequest") from None
        with self.cloud.lock:
            fip = self.cloud.allocate_floating_ip(network_id, body.get("floating_ip_address"), by="api")
            fip["description"] = body.get("description") or ""
            result = self._public(fip)
        if self.cloud.faults.lose_floating_ip_answer:
            raise EmulatorError(500, "Request Failed: internal server error while processing your request.",
                                "HTTPInternalServerError")
        if body.get("port_id"):
            return self._associate(fip["id"], body["port_id"], 201)
        return _json({"floatingip": result}, 201)

    def update_floating_ip(self, request: Request, fip_id: str) -> Response:
        try:
            body = request.get_json(force=True)["floatingip"]
        except (TypeError, KeyError, ValueError):
            raise EmulatorError(400, "Invalid input: a floatingip object is required.", "HTTPBadRequest") from None
        return self._associate(fip_id, body.get("port_id"), 200, _if_match_revision(request))

    def _associate(self, fip_id: str, port_id: str | None, status: int, revision: int | None = None) -> Response:
        """Point the floating IP at ``port_id`` (or nowhere) and tell the hooks.

        ``revision`` is the client's ``If-Match: revision_number=N``: Neutron's
        compare-and-swap, refused with 412 when the floating IP changed since.
        """
        cloud = self.cloud
        with cloud.lock:
            fip = cloud.floating_ips_by_id.get(fip_id)
            if fip is None:
                raise EmulatorError(404, f"Floating IP {fip_id} could not be found", "FloatingIPNotFound")
            if revision is not None and revision != fip["revision_number"]:
                raise EmulatorError(412, f"Constrained to {revision}, but current revision is "
                                         f"{fip['revision_number']}", "RevisionNumberConstraintFailed")
            old_port = cloud.ports_by_id.get(fip["port_id"] or "")
            new_port = None
            if port_id is not None:
                new_port = cloud.ports_by_id.get(port_id)
                if new_port is None:
                    raise EmulatorError(404, f"Port {port_id} could not be found.", "PortNotFound")
            fip.update(port_id=port_id, updated_at=_now(), status="ACTIVE" if new_port else "DOWN",
                       revision_number=fip["revision_number"] + 1,
                       fixed_ip_address=new_port["fixed_ips"][0]["ip_address"] if new_port else None,
                       router_id=_new_id() if new_port else None)
            result = self._public(fip)
        if cloud.on_address is not None:
            if old_port is not None and (new_port is None or old_port["device_id"] != new_port["device_id"]):
                cloud.on_address(old_port["device_id"], None)
            if new_port is not None:
                cloud.on_address(new_port["device_id"], fip["floating_ip_address"])
        return _json({"floatingip": result}, status)

    def delete_floating_ip(self, request: Request, fip_id: str) -> Response:
        with self.cloud.lock:
            if fip_id not in self.cloud.floating_ips_by_id:
                raise EmulatorError(404, f"Floating IP {fip_id} could not be found", "FloatingIPNotFound")
            attached = self.cloud.floating_ips_by_id[fip_id]["port_id"]
        if attached:
            self._associate(fip_id, None, 200)
        with self.cloud.lock:
            self.cloud.floating_ips_by_id.pop(fip_id, None)
        return Response(status=204)


def _if_match_revision(request: Request) -> int | None:
    """The revision of Neutron's ``If-Match: revision_number=N`` header, if sent."""
    for value in request.headers.get("If-Match", "").split(","):
        name, _, number = value.strip().strip('"').partition("=")
        if name == "revision_number":
            try:
                return int(number)
            except ValueError:
                raise EmulatorError(400, f"Invalid If-Match value {value.strip()!r}", "HTTPBadRequest") from None
    return None


def make_app(cloud: OpenStackEmulator) -> Callable:
    """Return the WSGI application serving ``cloud``.

    Args:
        cloud: the emulator whose state the application reads and changes.
    """
    return _App(cloud)
