"""The cluster files: every Kubernetes manifest valid against Kubernetes' own schemas (offline, with the
kubernetes-validate package; no cluster runs here), every hpsearch command line in them one that hpsearch's
own parser takes, and the image they name the one `make image` builds. The Slurm script runs for real in
tests/test_slurm.py; the manifests run under podman in tests/test_container.py."""

from importlib.metadata import version
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from search.cli import parser
from search.storage import PASSWORD_VARIABLE, Location

KUBERNETES = Path(__file__).parent.parent / "deploy" / "kubernetes"
IMAGE = f"hpsearch:{version('hpsearch')}"  # what `make image` builds; the manifests name it in the user's registry
DOCUMENTS = [(path.name, doc) for path in sorted(KUBERNETES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]


def containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    return pod.get("containers", [])


@pytest.mark.parametrize("name, doc", DOCUMENTS, ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in DOCUMENTS])
def test_each_manifest_is_valid_for_kubernetes(name, doc):
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)  # raises where it is not


def test_each_hpsearch_command_in_the_manifests_parses_and_takes_its_password_from_the_secret():
    # the image's entry point is hpsearch (deploy/container/Containerfile): a container's args are hpsearch's
    commands = [(c, c["args"]) for _, doc in DOCUMENTS for c in containers(doc) if c["image"].rpartition("/")[2] == IMAGE]
    assert {command[0] for _, command in commands} == {"run", "dashboard"}
    assert not [c for c, _ in commands if "command" in c]  # the entry point kept: tini passes SIGTERM on
    for container, command in commands:
        options = parser().parse_args(command)  # exits with code 2 where hpsearch would refuse it
        assert Location(options.storage).password is None  # the URL carries none
        password = next(e for e in container["env"] if e["name"] == PASSWORD_VARIABLE)
        assert password["valueFrom"]["secretKeyRef"] == {"name": "hpsearch-db", "key": "password"}
    dashboard = parser().parse_args(next(c for _, c in commands if c[0] == "dashboard"))
    service = next(d for _, d in DOCUMENTS if d["kind"] == "Service" and d["metadata"]["name"] == "hpsearch-dashboard")
    assert dashboard.host == "0.0.0.0" and service["metadata"]["name"] in dashboard.allow_host
    assert service["spec"]["ports"][0]["targetPort"] == dashboard.port
