"""The demo ADTs of the releases: found, filled in, and refused while unfilled."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from micado import MicadoClient, demos
from micado.config.bounded_yaml import safe_load
from micado.exceptions import InvalidArgument
from micado.testing import playbook as standin
from micado.testing.adts import EXAMPLES, LOCAL_VALUES, filled

from paths import REAL_ADTS, RELEASES

NOVA_FIELDS = ["worker-node.properties.image_id", "worker-node.properties.flavor_name",
               "worker-node.properties.project_id", "worker-node.properties.network_id",
               "worker-node.properties.key_name", "worker-node.properties.security_groups[0]",
               "worker-node.interfaces.Occopus.create.inputs.endpoint"]


@pytest.mark.parametrize("release", ["0.9.1-rev1", "0.12.0", "0.12.6"])
def test_every_demo_of_the_real_releases_is_found_and_has_fields_to_fill(tmp_path, release):
    tarball = RELEASES / f"ansible-micado-{release}.tar.gz"
    if not tarball.is_file():
        pytest.skip(f"{tarball} is absent (the real releases are not part of a clone)")
    found = demos.release_demos(tarball)
    names = {demo.name for demo in found}
    assert names == {"cqueue", "nginx", "stressng", "wordpress"}
    by_key = {(demo.name, demo.cloud): demo for demo in found}
    assert ("cqueue", "ec2") in by_key and ("cqueue", "nova") not in by_key  # as the official client says
    assert ("stressng", "nova") in by_key and ("wordpress", "ec2") in by_key
    for demo in found:
        assert demo.fields_to_fill(), demo.path  # every demo leaves something to the user
    stressng = by_key[("stressng", "nova")]
    assert [demos.short_field(field) for field in stressng.fields_to_fill()] == NOVA_FIELDS


def test_oci_and_gce_placeholders_in_angle_brackets(tmp_path):
    text = ("topology_template:\n  node_templates:\n    worker:\n      properties:\n"
            "        region: <REGION_NAME> (e.g. uk-london-1)\n        shape: VM.Standard\n"
            "        note: '<not a placeholder>'\n        rule: 'if x<minRPCth and y>1: pass'\n"
            "        key_name: (OPTIONAL) ADD_YOUR_KEY_NAME_HERE (e.g. k)\n")
    fields = demos.unfilled_fields(safe_load(text))
    assert fields == ["topology_template.node_templates.worker.properties.region",
                      "topology_template.node_templates.worker.properties.key_name"]


def test_fill_keeps_the_comments_and_refuses_a_field_that_is_not_a_placeholder():
    text = (EXAMPLES / "stressng_nova.yaml").read_text()
    out = demos.fill(text, {"image_id": "img", "worker-node.properties.key_name": "mine", "security_groups": "sg"})
    document = safe_load(out)
    node = document["topology_template"]["node_templates"]["worker-node"]["properties"]
    assert (node["image_id"], node["key_name"], node["security_groups"]) == ("img", "mine", ["sg"])
    assert "# TERRAFORM: Change to Terraform" in out  # the release's hints stay
    assert "image_id" not in " ".join(demos.unfilled_fields(document))
    with pytest.raises(InvalidArgument, match=r"has no placeholder image\b.*placeholders left: "):
        demos.fill(out, {"image": "x"}, shown="stressng_nova.yaml")


def test_the_stand_in_releases_carry_the_examples_as_demos(tmp_path):
    for layout in ("0.9", "0.12"):
        tree = standin.build_tree(layout, tmp_path / layout)
        found = {(demo.name, demo.cloud) for demo in demos.find_demos(tree)}
        assert found == {("stressng", "nova"), ("stressng", "ec2"), ("nginx", "nova"), ("nginx", "ec2"),
                         ("wordpress", "nova")}


def test_choose_demo_names_what_there_is():
    found = demos.find_demos(standin.build_tree("0.12", Path(__import__("tempfile").mkdtemp()) / "r"))
    assert demos.choose_demo(found, "STRESSNG", "Nova", where="r").cloud == "nova"
    with pytest.raises(InvalidArgument, match=r"r has no demo 'nope' \(its demos: nginx, stressng, wordpress\)"):
        demos.choose_demo(found, "nope", None, where="r")
    with pytest.raises(InvalidArgument, match=r"no ADT for the cloud 'gce' \(it has: ec2, nova\)"):
        demos.choose_demo(found, "stressng", "gce", where="r")
    with pytest.raises(InvalidArgument, match="several clouds: choose one of ec2, nova"):
        demos.choose_demo(found, "stressng", None, where="r")
    assert demos.choose_demo(found, "wordpress", None, where="r").cloud == "nova"


@pytest.mark.parametrize("how", ["file", "text", "mapping", "file object"])
def test_create_and_update_refuse_an_unfilled_demo_before_sending(submitter, how):
    client = MicadoClient(endpoint=submitter.endpoint, version="v2.0", verify=submitter.cert_path,
                          auth=(submitter.user, submitter.password))
    path = REAL_ADTS / "stressng_nova.yaml"
    source = {"file": {"file": path}, "text": {"adt": path.read_text()},
              "mapping": {"adt": safe_load(path.read_text())},
              "file object": {"file": io.BytesIO(path.read_bytes())}}[how]
    with pytest.raises(InvalidArgument) as refused:
        client.applications.create(app_id="s", **source)
    message = str(refused.value)
    assert "still has placeholder values to fill in" in message
    assert "topology_template.node_templates.worker-node.properties.image_id" in message and "\n" not in message
    assert submitter.applications == {}  # nothing was sent
    client.applications.create(app_id="s", adt=filled(path))
    with pytest.raises(InvalidArgument, match="properties.flavor_name, "):
        client.applications.update("s", adt=path.read_text().replace("ADD_YOUR_ID_HERE", "x"))
    assert set(LOCAL_VALUES) >= {"image_id", "endpoint"}
