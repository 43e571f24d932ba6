"""The image (deploy/container/Containerfile, built by `make image`) run as its users run it: real podman
containers on a real PostgreSQL server, two at once on one study, one stopped by `podman stop` in the middle
of a trial and resumed by the other, the dashboard and the model server from the image, and the Kubernetes
files played by `podman kube play` (a Deployment) or, for the kinds podman does not play, their pod
templates run as pods. The containers share the host's network (`--network host`), as on a machine whose
kernel forwards nothing to a container's own network."""

import base64
import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from browser import free_port
from components import missing
from conftest import TINY_SPACE
from optuna.trial import TrialState
from postgres import PASSWORD, postgres_server
from test_deploy import DOCUMENTS, IMAGE
from test_resume import FINISHED, check_retried
from test_review import answer

from search.cli import parser
from search.storage import PASSWORD_VARIABLE, Location


def podman(*args, check: bool = True, timeout: float = 600) -> str:
    done = subprocess.run(["podman", *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(map(str, args))}: {done.stderr.strip()}")
    return done.stdout.strip()


@pytest.fixture(scope="module")
def image() -> str:
    if not shutil.which("podman"):
        missing("podman not found: install Debian's podman and runc packages")
    if subprocess.run(["podman", "image", "exists", IMAGE]).returncode != 0:
        missing(f"no image {IMAGE}: run `make image`")
    return IMAGE


@pytest.fixture(autouse=True)
def password(monkeypatch):
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)  # the test reads the study too; the URLs carry no password


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as new_database:
        yield new_database


class Containers:
    """Containers of the image and named volumes, each removed at the end."""

    def __init__(self, image: str):
        self.image, self.names, self.volumes = image, [], []

    def volume(self) -> str:
        name = f"hpsearch-test-{uuid.uuid4().hex[:8]}"
        self.volumes.append(podman("volume", "create", name))
        return name

    def start(self, *args, volumes: dict[str, str] = {}, password: str = PASSWORD_VARIABLE) -> str:
        """`podman run IMAGE ARGS` in the background, the database's password in the environment variable
        `password` (hpsearch's own, or PostgreSQL's PGPASSWORD)."""
        name = f"hpsearch-test-{uuid.uuid4().hex[:8]}"
        mounts = [f"--volume={source}:{target}" for source, target in volumes.items()]
        podman("run", "--detach", "--network=host", f"--name={name}", f"--env={password}={PASSWORD}", *mounts, self.image, *args)
        self.names.append(name)
        return name

    def wait(self, name: str, timeout: float = 600) -> int:
        return int(podman("wait", name, timeout=timeout))

    def log(self, name: str) -> str:
        done = subprocess.run(["podman", "logs", name], capture_output=True, text=True)
        return done.stdout + done.stderr

    def remove(self) -> None:
        for name in self.names:
            podman("rm", "--force", "--time=0", name, check=False)
        for volume in self.volumes:
            podman("volume", "rm", "--force", volume, check=False)


@pytest.fixture(scope="module")
def containers(image):
    made = Containers(image)
    yield made
    made.remove()


def answering(url: str, log, timeout: float = 120) -> None:
    """Waits until a server answers at `url` (any status); `log()` says why where it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer(url)
            return
        except OSError:  # not listening yet
            assert time.monotonic() < deadline, log()
            time.sleep(0.5)


@pytest.fixture(scope="module")
def digits_study(containers, postgres):
    """Two containers at once on one PostgreSQL study of the digits space, their weights on one volume; one
    has the database's password in HPSEARCH_DB_PASSWORD, the other in PGPASSWORD."""
    url, artifacts, cache = postgres(), containers.volume(), containers.volume()
    both = [containers.start("run", "--space", "digits", "--trials", 3, "--epochs", 1, "--storage", url, "--quiet",
                             volumes={artifacts: "/artifacts", cache: "/cache"}, password=variable)
            for variable in (PASSWORD_VARIABLE, "PGPASSWORD")]
    codes = [containers.wait(name) for name in both]
    assert codes == [0, 0], [containers.log(name) for name in both]
    return url, artifacts, cache


def test_two_containers_share_one_postgresql_study_and_keep_their_weights_on_a_shared_volume(digits_study, containers):
    url, artifacts, cache = digits_study
    trials = optuna.load_study(study_name="digits", storage=Location(url).open()).trials
    assert len([t for t in trials if t.state in FINISHED]) == 3 and not [t for t in trials if t.state == TrialState.RUNNING]
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == len(trials)  # no two drew the same parameters
    # a third container evaluates the best model from the shared volume: the weights are there
    name = containers.start("evaluate", "--storage", url, volumes={artifacts: "/artifacts", cache: "/cache"})
    assert containers.wait(name) == 0, containers.log(name)
    assert "f1_weighted" in containers.log(name)


def test_the_image_runs_as_a_user_and_holds_none_of_the_build_machines_pip_settings(image):
    """The build mounted this machine's pip settings read-only: what the mounts leave in the image are their
    empty mount points (/etc/pip.conf, folders under /build-host), no setting and no file."""
    said = podman("run", "--rm", "--entrypoint=sh", image, "-c",
                  "id -un; pip config list; cat /etc/pip.conf; find /build-host -type f ! -empty 2>/dev/null; echo end")
    assert said.splitlines() == ["hpsearch", "end"]


def test_a_mounted_study_folder_the_image_user_cannot_write_in_is_refused_in_one_line(image, tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()  # root's, 755: the image's user (uid 1000) cannot write in it
    done = subprocess.run(["podman", "run", "--rm", "--network=host", f"--volume={folder}:/study", image, "run", "--space", "digits"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.splitlines() == [
        "hpsearch: error: cannot make the database /study/studies.db: this user (uid 1000) cannot write in /study: let it, "
        "or name another --storage"]


def test_podman_stop_records_the_trial_interrupted_and_another_container_resumes_it(containers, postgres, tiny_images):
    url, artifacts, cache = postgres(), containers.volume(), containers.volume()
    volumes = {artifacts: "/artifacts", cache: "/cache", tiny_images: "/data:ro", TINY_SPACE: "/tiny_space.py:ro"}
    command = ["run", "--space", "/tiny_space.py", "--data", "/data", "--trials", 4, "--epochs", 40, "--pruner", "none",
               "--checkpoint-every", 0, "--storage", url, "--quiet"]
    first, second = (containers.start(*command, volumes=volumes) for _ in range(2))
    storage, deadline = Location(url).open(), time.monotonic() + 600
    while True:  # both containers in the middle of a trial: the first one stopped is surely in one
        try:
            running = optuna.load_study(study_name="tiny", storage=storage).get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # no study yet
            running = []
        if len(running) == 2 and all(len(t.intermediate_values) >= 2 for t in running):
            break
        assert time.monotonic() < deadline, containers.log(first) + containers.log(second)
        time.sleep(0.2)
    podman("stop", "--time=60", first)
    assert containers.wait(first) == 143, containers.log(first)
    assert containers.log(first).strip().splitlines()[-1].startswith("hpsearch: stopped by SIGTERM")
    assert containers.wait(second) == 0, containers.log(second)
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    stopped = [t for t in trials if t.user_attrs.get("fail_reason") == "interrupted"]
    assert len(stopped) == 1, [(t.number, t.state, t.user_attrs.get("fail_reason")) for t in trials]
    check_retried(url, stopped[0], 4)  # 4 finished, none twice, the retry resumed from the stopped trial's last epoch


def test_the_dashboard_and_the_model_server_from_the_image_answer_to_their_names_only(digits_study, containers):
    url, artifacts, cache = digits_study
    board, served = free_port(), free_port()
    dashboard = containers.start("dashboard", "--port", board, "--storage", url, "--allow-host", "hpsearch-dashboard",
                                 volumes={artifacts: "/artifacts"})
    server = containers.start("serve", "--port", served, "--storage", url, "--allow-host", "models.example",
                              volumes={artifacts: "/artifacts", cache: "/cache"})
    answering(f"http://127.0.0.1:{board}/api/studies", lambda: containers.log(dashboard))
    assert answer(f"http://127.0.0.1:{board}/api/studies", Host="hpsearch-dashboard") == 200
    assert answer(f"http://127.0.0.1:{board}/api/studies", Host=f"attacker.example:{board}") == 403
    answering(f"http://127.0.0.1:{served}/model", lambda: containers.log(server))
    assert answer(f"http://127.0.0.1:{served}/model", Host="models.example") == 200
    assert answer(f"http://127.0.0.1:{served}/model", Host=f"attacker.example:{served}") == 403


def manifest(name: str) -> list[dict]:
    return [doc for file, doc in DOCUMENTS if file == name]


def on_this_machine(doc: dict, url: str, image: str) -> dict:
    """A manifest as this machine runs it: the study's database at the test server's address (no cluster DNS
    here), no port mappings (on the host's network a container's port is the host's; podman refuses to map
    it), and the image `make image` built under the name the manifest gives it (tagged, not rewritten)."""
    doc = yaml.safe_load(yaml.safe_dump(doc).replace("postgresql://hpsearch@hpsearch-db:5432/studies", url))
    for container in doc["spec"]["template"]["spec"]["containers"]:
        container.pop("ports", None)
        podman("tag", image, container["image"])
    return doc


def play(docs: list[dict], folder: Path) -> str:
    path = folder / f"{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    podman("kube", "play", "--replace", "--network=host", path)  # --replace: a pod left by a test stopped halfway
    return str(path)


@pytest.fixture
def secret(tmp_path):
    """The Secret of postgres.yaml, its password the test server's, as podman 4.3 keeps one for kube play: a
    podman secret of the same name holding its keys as JSON, each value in base64 (kube play of the Secret
    itself stores its YAML, which a secretKeyRef then fails to read)."""
    doc = next(d for d in manifest("postgres.yaml") if d["kind"] == "Secret")
    keys = {key: base64.b64encode((PASSWORD if key == "password" else value).encode()).decode()
            for key, value in doc["stringData"].items()}
    (tmp_path / "secret.json").write_text(json.dumps(keys))
    podman("secret", "rm", doc["metadata"]["name"], check=False)
    podman("secret", "create", doc["metadata"]["name"], tmp_path / "secret.json")
    yield doc["metadata"]["name"]
    podman("secret", "rm", doc["metadata"]["name"], check=False)


def test_kube_play_of_the_dashboard_deployment_answers_on_its_port(digits_study, image, secret, tmp_path):
    url, artifacts, cache = digits_study
    deployment = on_this_machine(next(d for d in manifest("dashboard.yaml") if d["kind"] == "Deployment"), url, image)
    claim = deployment["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    podman("volume", "rm", "--force", claim, check=False)
    played = play([deployment], tmp_path)
    try:
        port = parser().parse_args(deployment["spec"]["template"]["spec"]["containers"][0]["args"]).port
        answering(f"http://127.0.0.1:{port}/api/studies", lambda: podman("pod", "logs", f"{deployment['metadata']['name']}-pod-0", check=False))
        assert answer(f"http://127.0.0.1:{port}/api/studies", Host="hpsearch-dashboard") == 200
        assert answer(f"http://127.0.0.1:{port}/api/studies", Host="hpsearch-dashboard.default.svc.cluster.local") == 200
        assert answer(f"http://127.0.0.1:{port}/api/studies", Host="attacker.example") == 403
    finally:
        podman("kube", "play", "--down", played, check=False)
        podman("volume", "rm", "--force", claim, check=False)


def test_the_workers_job_pod_template_runs_as_a_pod_and_adds_its_trial_to_the_study(digits_study, image, secret, tmp_path):
    """podman 4.3 plays no Job: its pod template runs as a Pod, with its volume claim, as the Job would start
    it, its search made small (digits, one more trial of one epoch) and without the GPU it asks for."""
    url, artifacts, cache = digits_study
    claim, job = (d for d in manifest("workers.yaml"))
    job = on_this_machine(job, url, image)
    worker = job["spec"]["template"]["spec"]["containers"][0]
    worker["args"] = [*worker["args"][:worker["args"].index("--space")], "--space", "digits", "--trials", "4", "--epochs", "1",
                      *worker["args"][worker["args"].index("--quiet"):]]
    worker.pop("resources")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": job["metadata"]["name"]}, "spec": job["spec"]["template"]["spec"]}
    podman("volume", "rm", "--force", claim["metadata"]["name"], check=False)
    played = play([claim, pod], tmp_path)
    try:
        container = f"{pod['metadata']['name']}-{worker['name']}"
        assert int(podman("wait", container)) == 0, podman("logs", container, check=False)
        trials = optuna.load_study(study_name="digits", storage=Location(url).open()).trials
        assert len([t for t in trials if t.state in FINISHED]) == 4
    finally:
        podman("kube", "play", "--down", played, check=False)
        podman("volume", "rm", "--force", claim["metadata"]["name"], check=False)
