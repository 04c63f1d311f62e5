#!/usr/bin/env python3
"""Failure drills (make drill): a topology of separate function processes takes uploads from
several clients while, one after another, each of its dependencies is killed with SIGKILL, kept
down, and started again on the same port and data, and then each function process is killed; after
each drill it checks that nothing was lost, doubled or failed for the outage, and prints a table.

Run by scripts/drill.sh inside scripts/test-servers.sh (with TEST_SERVERS_CONTROL set, so that
each server's command line and process group are known):

    drill.py --topology cloud|distributed --bin DIR [--uploads 200] [--clients 8] [--down 20]
             [--targets NAME,...]

Topologies: `cloud` is scripts/run-gcp-local.sh (metadata on the Firestore emulator, Pub/Sub
emulator, fake-gcs-server) with the vectors in the Qdrant test double; `distributed` is
scripts/run-distributed.sh (PostgreSQL, the Qdrant test double, two replicas of search and of
process-embedding, the event relay).

Targets: a server of scripts/test-servers.sh (`gcs`, `qdrant`, `postgres`: the process group is
killed and the same command line started again, on the same port and data), `pubsub` and
`firestore`, and `functions` (every function process, one after another, started again by the
topology's supervisor as Cloud Run starts a new instance). Google's Pub/Sub and Firestore emulators
keep everything in memory, so killing them loses topics, subscriptions, messages and documents,
which the services they stand for never do: for them the drill kills a TCP relay that the
functions reach the emulator through (the network path, not the service), which is what an outage
of a managed service looks like from the functions: refused and reset connections.

After each drill:
- every upload answered 201 (or, retried after its answer was lost, 409 naming the image) reaches
  `success`, none `failed`, none still pending when the drain deadline passes; every refusal was a
  503 with Retry-After (or the router's 502 for a request a killed function process had taken),
  never a 500;
- `embedding_attempts` is at most 1 for every image (the images are all fine), 2 when the drill
  killed the processing processes (an attempt cut short by its processor's death counts, as it must
  for an image that kills its processor);
- the vector index holds exactly one vector per image, the blob store exactly the originals and
  thumbnails the metadata names (once the sweep of blobs no record names has run: the drills run
  it every 5 s, over blobs older than 45 s), and there is no dead letter;
- the seconds from the dependency's return until every accepted image is `success`.
Exits 1 when any check fails.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMULATED = {"pubsub": "TEST_PUBSUB_EMULATOR_HOST", "firestore": "TEST_FIRESTORE_EMULATOR_HOST"}
SERVER_ADDRESS = {
    "gcs": "TEST_STORAGE_EMULATOR_HOST", "qdrant": "TEST_QDRANT_HOST", "postgres": "TEST_DATABASE_URL",
}


# ---------------------------------------------------------------------------------------------
# The relay in front of an emulator: a process of its own, so that it can be killed with SIGKILL.

def relay(port: int, target: str) -> None:
    """Forwards every connection on 127.0.0.1:PORT to TARGET (host:port) until killed."""
    host, target_port = target.rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", port), backlog=512)  # SO_REUSEADDR: same port again

    def pump(client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((host, int(target_port)), timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        pair = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select(list(pair), [], [])
                for side in readable:
                    data = side.recv(65536)
                    if not data:
                        return
                    pair[side].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    while True:
        connection, _ = listener.accept()
        threading.Thread(target=pump, args=(connection,), daemon=True).start()


# ---------------------------------------------------------------------------------------------
# Images: small PNGs, each different, from a seeded generator.

def png(rng: random.Random, size: int = 48) -> bytes:
    """A size×size RGB PNG of random colour bands: every call a different image."""
    colours = [bytes(rng.randrange(256) for _ in range(3)) for _ in range(6)]
    rows = b"".join(b"\x00" + b"".join(colours[(x * y // 7 + y // 8) % 6] for x in range(size)) for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# ---------------------------------------------------------------------------------------------
# HTTP through the router.

def call(base: str, method: str, path: str, key: str | None = None, body: bytes | None = None,
         headers: dict | None = None, timeout: float = 60) -> tuple[int, dict, bytes]:
    """(status, headers, body); status 0 when no answer came (refused, reset, timed out)."""
    request = urllib.request.Request(base + path, data=body, method=method)
    if key:
        request.add_header("X-API-Key", key)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except (OSError, ValueError):
        return 0, {}, b""


def call_json(base: str, method: str, path: str, key: str, payload: dict | None = None) -> dict:
    """A JSON call that must succeed (retried for a minute while the topology recovers)."""
    body = json.dumps(payload).encode() if payload is not None else None
    headers = {"Content-Type": "application/json"} if body else {}
    deadline = time.monotonic() + 60
    while True:
        status, _, data = call(base, method, path, key, body, headers)
        if 200 <= status < 300:
            return json.loads(data)
        if time.monotonic() > deadline or status in (400, 401, 403, 404, 422):
            raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
        time.sleep(1)


# ---------------------------------------------------------------------------------------------
# The topology and its servers.

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def address_port(variable: str) -> int:
    value = os.environ[variable]
    if "://" in value:
        return urllib.parse.urlsplit(value).port
    return int(value.rsplit(":", 1)[1])


def await_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            # A process this script started stays a zombie, still in its group, until reaped.
            os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            pass
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


class Relays:
    """The TCP relays in front of the Pub/Sub and Firestore emulators."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.ports: dict[str, int] = {}
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        """Starts the relay, on the port it had before (the first time, a free one)."""
        if name not in self.ports:
            self.ports[name] = free_port()
        port = self.ports[name]
        log = open(os.path.join(self.folder, f"relay-{name}.log"), "ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, __file__, "relay", str(port), os.environ[EMULATED[name]]],
            stdout=log, stderr=log, start_new_session=True)
        if not await_port(port, 30):
            raise RuntimeError(f"the relay to {name} did not listen on {port}")

    def kill(self, name: str) -> None:
        kill_group(self.processes[name].pid)
        self.processes[name].wait()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                kill_group(process.pid)
                process.wait()


class Servers:
    """The servers scripts/test-servers.sh started, as TEST_SERVERS_CONTROL describes them."""

    def __init__(self) -> None:
        self.control = os.environ["TEST_SERVERS_CONTROL"]

    def kill(self, name: str) -> None:
        with open(os.path.join(self.control, f"{name}.pid")) as file:
            kill_group(int(file.read()))

    def start(self, name: str) -> None:
        with open(os.path.join(self.control, f"{name}.command"), "rb") as file:
            command = [part.decode() for part in file.read().split(b"\0") if part]
        log = open(os.path.join(self.control, f"{name}.restarted.log"), "ab")
        process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True, cwd=REPOSITORY)
        with open(os.path.join(self.control, f"{name}.pid"), "w") as file:
            file.write(str(process.pid))
        if not await_port(address_port(SERVER_ADDRESS[name]), 120):
            raise RuntimeError(f"{name} did not start again: see {log.name}")


class Topology:
    """A topology script run in the background, its processes' state in a folder."""

    def __init__(self, kind: str, bin_dir: str, folder: str, environment: dict) -> None:
        self.kind, self.folder = kind, folder
        self.admin = "imk_" + secrets.token_hex(16) + "_" + secrets.token_urlsafe(32)
        script = "run-gcp-local.sh" if kind == "cloud" else "run-distributed.sh"
        env = dict(os.environ, BIN_DIR=bin_dir, TOPOLOGY_DIR=folder, PORT="0", BOOTSTRAP_ADMIN_KEY=self.admin,
                   **environment)
        self.output = open(os.path.join(folder, "topology.out"), "wb")
        self.process = subprocess.Popen(["bash", os.path.join(REPOSITORY, "scripts", script)], env=env,
                                        stdout=self.output, stderr=self.output, cwd=REPOSITORY,
                                        start_new_session=True)
        deadline = time.monotonic() + 300
        while not os.path.exists(os.path.join(folder, "ready")):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} topology did not start:\n{self.printed()}")
            time.sleep(0.2)
        with open(os.path.join(folder, "router.url")) as file:
            self.base = file.read().strip()

    def printed(self) -> str:
        with open(self.output.name, errors="replace") as file:
            return file.read()

    def functions(self) -> list[str]:
        return sorted(name[:-4] for name in os.listdir(self.folder)
                      if name.endswith(".pid") and name != "router.pid")

    def pid(self, name: str) -> int:
        with open(os.path.join(self.folder, f"{name}.pid")) as file:
            return int(file.read())

    def port(self, name: str) -> int:
        with open(os.path.join(self.folder, f"{name}.port")) as file:
            return int(file.read())

    def swept(self) -> int:
        """Blobs the processes' orphan sweeps removed so far, as their logs say."""
        total = 0
        for name in os.listdir(self.folder):
            if name.endswith(".log"):
                with open(os.path.join(self.folder, name), errors="replace") as file:
                    for line in file:
                        if '"Removed blobs that no image names"' in line:
                            total += int(json.loads(line).get("blobs", 0))
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# ---------------------------------------------------------------------------------------------
# One drill.

class Drill:
    def __init__(self, topology: Topology, target: str, arguments, faults) -> None:
        self.topology, self.target, self.arguments, self.faults = topology, target, arguments, faults
        self.lock = threading.Lock()
        self.accepted: dict[int, str] = {}  # image number -> image id
        self.answers: dict[str, int] = {}  # "201", "503 with Retry-After", ...
        self.bad: list[str] = []
        self.answered = 0
        self.slowest = 0.0  # the longest single upload request, in seconds
        self.returned_at: float | None = None
        self.fault_error: str | None = None

    def note(self, answer: str) -> None:
        with self.lock:
            self.answers[answer] = self.answers.get(answer, 0) + 1

    def upload(self, number: int, body: bytes, key: str) -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            boundary = uuid.uuid4().hex
            form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"drill-{number}.png\""
                    "\r\nContent-Type: image/png\r\n\r\n").encode() + body + f"\r\n--{boundary}--\r\n".encode()
            began = time.monotonic()
            status, headers, data = call(self.topology.base, "POST", "/api/v1/images", key, form,
                                         {"Content-Type": f"multipart/form-data; boundary={boundary}"})
            with self.lock:
                self.slowest = max(self.slowest, time.monotonic() - began)
            retry_after = next((value for name, value in headers.items() if name.lower() == "retry-after"), None)
            if status == 201:
                self.note("201")
                with self.lock:
                    self.accepted[number] = json.loads(data)["id"]
                    self.answered += 1
                return
            if status == 409:
                # An earlier try was stored but its answer lost (a process killed after the commit).
                existing = json.loads(data).get("existing_image_id")
                self.note("409 (a retry of a stored upload)")
                if not existing:
                    with self.lock:
                        self.bad.append(f"409 without the existing image: {data[:200]!r}")
                with self.lock:
                    self.accepted[number] = existing
                    self.answered += 1
                return
            if status == 503 and retry_after:
                self.note("503 with Retry-After")
                time.sleep(min(float(retry_after), 5))
                continue
            if status in (0, 502) and self.target == "functions":
                self.note("502 or no answer (a function process killed)")
                time.sleep(1)
                continue
            self.note(f"{status or 'no answer'}")
            with self.lock:
                self.bad.append(f"upload {number}: {status or 'no answer'} {data[:200]!r}")
            time.sleep(1)
            if status == 0 or status >= 500:
                continue
            with self.lock:
                self.answered += 1
            return
        with self.lock:
            self.bad.append(f"upload {number}: no 201 in 600 s")
            self.answered += 1

    def fault(self) -> None:
        try:
            total = self.arguments.uploads
            while True:
                with self.lock:
                    if self.answered >= total // 4:
                        break
                time.sleep(0.05)
            self.faults(self.target, self)
        except Exception as error:  # the table says which drill could not inject its fault
            self.fault_error = f"{type(error).__name__}: {error}"
            self.returned_at = self.returned_at or time.monotonic()

    def run(self, seed: int) -> dict:
        base, admin = self.topology.base, self.topology.admin
        run = secrets.token_hex(4)
        team = call_json(base, "POST", "/api/v1/teams", admin, {"name": f"Drill {self.target} {run}"})
        user = call_json(base, "POST", "/api/v1/users", admin,
                         {"email": f"drill-{run}@example.com", "name": "Drill", "team_id": team["id"], "is_admin": True})
        key = call_json(base, "POST", f"/api/v1/auth/admin/api-keys/{user['id']}", admin, {"name": "drill"})["key"]
        rng = random.Random(seed)
        bodies = [png(rng) for _ in range(self.arguments.uploads)]
        numbers = list(range(self.arguments.uploads))
        # Paced so that the uploads span the outage: a quarter before the fault, the rest during and after.
        interval = self.arguments.clients * (self.arguments.down + 15) / self.arguments.uploads

        def client(index: int) -> None:
            next_start = time.monotonic()
            for number in numbers[index::self.arguments.clients]:
                next_start += interval
                time.sleep(max(0.0, next_start - time.monotonic()))
                self.upload(number, bodies[number], key)

        started = time.monotonic()
        swept_before = self.topology.swept()
        fault = threading.Thread(target=self.fault, daemon=True)
        fault.start()
        clients = [threading.Thread(target=client, args=(index,), daemon=True) for index in range(self.arguments.clients)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        fault.join()
        returned = self.returned_at or started
        images = self.drain(key, set(self.accepted.values()))
        drained = time.monotonic()
        result = self.check(team["id"], key, images, drained - returned)
        result["swept"] = self.topology.swept() - swept_before
        return result

    def drain(self, key: str, expected: set) -> dict:
        """Waits until every accepted image is `success` (or one `failed`, or the deadline passes)."""
        deadline = time.monotonic() + self.arguments.drain_deadline
        while True:
            images = self.images(key)
            settled = [image for image in images.values() if image["embedding_status"] in ("success", "failed")]
            if (len(settled) == len(images) and expected <= set(images)) or time.monotonic() > deadline:
                return images
            time.sleep(0.5)

    def images(self, key: str) -> dict:
        found, skip = {}, 0
        while True:
            page = call_json(self.topology.base, "GET", f"/api/v1/images?limit=100&skip={skip}", key)
            for image in page["images"]:
                found[image["id"]] = image
            skip += len(page["images"])
            if not page["images"] or skip >= page["total"]:
                return found

    def check(self, team: str, key: str, images: dict, drain_seconds: float) -> dict:
        accepted = set(self.accepted.values())
        statuses: dict[str, int] = {}
        for image in images.values():
            statuses[image["embedding_status"]] = statuses.get(image["embedding_status"], 0) + 1
        failures = list(self.bad)
        if self.fault_error:
            failures.append(f"the fault: {self.fault_error}")
        if accepted != set(images):
            failures.append(f"accepted {len(accepted)} uploads, the listing has {len(images)} images "
                            f"({len(accepted - set(images))} missing, {len(set(images) - accepted)} unexpected)")
        not_done = {status: count for status, count in statuses.items() if status != "success"}
        if not_done:
            failures.append(f"not success: {not_done}")
        attempts = max((image.get("embedding_attempts", 0) for image in images.values()), default=0)
        # A processor killed mid-attempt spends that attempt, by design: an image that kills its
        # processor must run out of attempts. Killing the processes allows one more, no outage any.
        allowed = 2 if self.target == "functions" else 1
        if attempts > allowed:
            failures.append(f"an image spent {attempts} attempts")
        vectors = self.vector_count(team)
        if vectors != len(images):
            failures.append(f"{vectors} vectors for {len(images)} images")
        expected = {f"teams/{team}/images/{image}/{name}" for image in images for name in ("original", "thumbnail.jpg")}
        # A blob a killed process left without its record goes with the next sweep (every 5 s,
        # of blobs older than 45 s: longer than an upload waits for its commit while a store is
        # down, so that no upload still on its way loses its bytes).
        deadline = time.monotonic() + 90
        while (blobs := self.blob_keys(team)) != expected and time.monotonic() < deadline:
            time.sleep(1)
        if blobs != expected:
            failures.append(f"blobs: {len(expected - blobs)} missing, {len(blobs - expected)} not named by the metadata")
        letters = call_json(self.topology.base, "GET", "/api/v1/admin/dead-letters", key)["total"]
        if letters:
            failures.append(f"{letters} dead letters")
        return {"target": self.target, "accepted": len(accepted), "answers": dict(self.answers),
                "success": statuses.get("success", 0), "attempts": attempts, "vectors": vectors,
                "blobs": len(blobs), "dead_letters": letters, "drain_seconds": drain_seconds,
                "slowest": self.slowest,
                "failures": failures}

    def vector_count(self, team: str) -> int:
        """The team's vectors in every collection of the index (one per embedding model)."""
        base = f"http://{os.environ['TEST_QDRANT_HOST']}"
        status, _, data = call(base, "GET", "/collections")
        if status != 200:
            raise RuntimeError(f"listing the collections: {status} {data[:200]!r}")
        names = [collection["name"] for collection in json.loads(data)["result"]["collections"]
                 if collection["name"].startswith(self.arguments.collection + "-")]
        body = json.dumps({"exact": True, "filter": {"must": [{"key": "team_id", "match": {"value": team}}]}}).encode()
        count = 0
        for name in names:
            status, _, data = call(base, "POST", f"/collections/{name}/points/count", body=body,
                                   headers={"Content-Type": "application/json"})
            if status != 200:
                raise RuntimeError(f"counting vectors: {status} {data[:200]!r}")
            count += json.loads(data)["result"]["count"]
        return count

    def blob_keys(self, team: str) -> set:
        prefix = f"teams/{team}/"
        if self.topology.kind == "cloud":
            keys, token = set(), ""
            while True:
                query = urllib.parse.urlencode({"prefix": prefix, "pageToken": token})
                status, _, data = call(os.environ["TEST_STORAGE_EMULATOR_HOST"], "GET",
                                       f"/storage/v1/b/{self.arguments.bucket}/o?{query}")
                if status != 200:
                    raise RuntimeError(f"listing the bucket: {status} {data[:200]!r}")
                page = json.loads(data)
                keys |= {item["name"] for item in page.get("items", [])}
                token = page.get("nextPageToken", "")
                if not token:
                    return keys
        keys = set()
        for root, _, files in os.walk(self.arguments.data_dir):
            relative = os.path.relpath(root, self.arguments.data_dir)
            at = relative.find(prefix.rstrip("/"))
            if at >= 0:
                keys |= {os.path.join(relative[at:], name) for name in files}
        return keys


# ---------------------------------------------------------------------------------------------

def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "relay":
        relay(int(sys.argv[2]), sys.argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topology", choices=["cloud", "distributed"], required=True)
    parser.add_argument("--bin", required=True, help="the folder of the built binaries")
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--down", type=float, default=20, help="seconds each dependency stays down")
    parser.add_argument("--targets", help="comma-separated (default: every dependency of the topology, then functions)")
    parser.add_argument("--drain-deadline", type=float, default=300,
                        help="seconds after the uploads for every accepted image to reach success")
    parser.add_argument("--seed", type=int, default=20261207)
    arguments = parser.parse_args()
    defaults = {"cloud": ["pubsub", "firestore", "gcs", "qdrant", "functions"],
                "distributed": ["postgres", "qdrant", "functions"]}
    targets = arguments.targets.split(",") if arguments.targets else defaults[arguments.topology]
    unknown = set(targets) - set(defaults[arguments.topology])
    if unknown:
        parser.error(f"the {arguments.topology} topology has no {', '.join(sorted(unknown))}")

    folder = os.path.join(os.environ["TEST_SERVERS_CONTROL"], arguments.topology)
    os.makedirs(folder, exist_ok=True)
    run = secrets.token_hex(4)
    arguments.collection, arguments.bucket = f"drill_{run}", f"drill-{run}"
    arguments.data_dir = os.path.join(folder, "data")
    qdrant_host = os.environ["TEST_QDRANT_HOST"]
    # The sweep of blobs no record names, often and with a short grace, so that a drill sees it.
    environment = {"QDRANT_COLLECTION": arguments.collection, "DATA_DIR": arguments.data_dir,
                   "ORPHAN_BLOB_SWEEP_SECONDS": "5", "ORPHAN_BLOB_GRACE_SECONDS": "45"}
    relays = Relays(folder)
    if arguments.topology == "cloud":
        for name in EMULATED:
            relays.start(name)
        environment.update(
            TEST_PUBSUB_EMULATOR_HOST=f"127.0.0.1:{relays.ports['pubsub']}",
            TEST_FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{relays.ports['firestore']}",
            FIRESTORE_PROJECT_ID=f"drill-{run}", GCS_BUCKET_NAME=arguments.bucket, PUBSUB_TOPIC=f"drill-{run}",
            VECTOR_BACKEND="qdrant", QDRANT_HOST=qdrant_host.rsplit(":", 1)[0],
            QDRANT_PORT=qdrant_host.rsplit(":", 1)[1])
    else:
        environment.update(DATABASE_SCHEMA=f"drill_{run}")
    servers = Servers()
    print(f"==> Drills on the {arguments.topology} topology: {arguments.uploads} uploads from {arguments.clients} "
          f"clients per drill, each dependency down {arguments.down:g} s; state in {folder}", flush=True)
    topology = Topology(arguments.topology, arguments.bin, folder, environment)

    def inject(target: str, drill: Drill) -> None:
        if target == "functions":
            for name in topology.functions():
                old = topology.pid(name)
                os.kill(old, signal.SIGKILL)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    try:
                        if topology.pid(name) != old and call(f"http://127.0.0.1:{topology.port(name)}", "GET",
                                                              "/healthz", timeout=2)[0] == 200:
                            break
                    except (OSError, ValueError):
                        pass
                    time.sleep(0.1)
                else:
                    raise RuntimeError(f"{name} did not come back")
                time.sleep(1)
            drill.returned_at = time.monotonic()
            return
        if target in EMULATED:
            relays.kill(target)
            time.sleep(arguments.down)
            relays.start(target)
        else:
            servers.kill(target)
            time.sleep(arguments.down)
            servers.start(target)
        drill.returned_at = time.monotonic()

    results = []
    try:
        for index, target in enumerate(targets):
            print(f"--> {target}: killed once a quarter of the uploads are answered", flush=True)
            began = time.monotonic()
            results.append(Drill(topology, target, arguments, inject).run(arguments.seed + index))
            print(f"    {time.monotonic() - began:.0f} s", flush=True)
            for failure in results[-1]["failures"]:
                print(f"    FAILED: {failure}", flush=True)
    finally:
        topology.stop()
        relays.stop()
    print(f"\n{'killed':<10} {'accepted':>8} {'success':>7} {'attempts':>8} {'vectors':>7} {'blobs':>5} "
          f"{'dead':>4} {'swept':>5} {'drain s':>7} {'slowest s':>9}  refusals and retries")
    for result in results:
        others = {answer: count for answer, count in result["answers"].items() if answer != "201"}
        refusals = ", ".join(f"{count}× {answer}" for answer, count in sorted(others.items())) or "none"
        print(f"{result['target']:<10} {result['accepted']:>8} {result['success']:>7} {result['attempts']:>8} "
              f"{result['vectors']:>7} {result['blobs']:>5} {result['dead_letters']:>4} {result['swept']:>5} "
              f"{result['drain_seconds']:>7.1f} {result['slowest']:>9.1f}  {refusals}")
    failed = [result["target"] for result in results if result["failures"]]
    print(f"==> {arguments.topology}: " + (f"FAILED: {', '.join(failed)}" if failed else
                                          f"every drill passed ({len(results)})"))
    if failed:
        print(f"    logs: {folder}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
