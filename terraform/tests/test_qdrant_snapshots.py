"""The Qdrant VMs' snapshot timer and the documented restore, run against the Qdrant test double
(Qdrant's engine behind its REST API; no Qdrant server runs here): the `qdrant-snapshot` script that
terraform/qdrant-startup.sh.tftpl installs snapshots every collection, uploads each snapshot to the
bucket (through a stand-in for `gcloud storage cp`: Cloud Storage cannot be reached here) and
removes it from the disk; recovering a collection from the uploaded file brings every point back
after the collection is lost."""

import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KEY = "snapshot-test-key"


def snapshot_script():
    """The script the startup template writes to /usr/local/bin/qdrant-snapshot."""
    with open(os.path.join(ROOT, "terraform", "qdrant-startup.sh.tftpl")) as handle:
        template = handle.read()
    match = re.search(r"cat >/usr/local/bin/qdrant-snapshot <<'SNAPSHOT'\n(.*?)\nSNAPSHOT\n", template, re.S)
    assert match, "the template no longer writes /usr/local/bin/qdrant-snapshot"
    return match.group(1)


@pytest.fixture
def double():
    folder = tempfile.mkdtemp()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "scripts", "qdrant_test_double.py"), str(port), os.path.join(folder, "data"),
         "--api-key", KEY], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = process.stdout.readline()
    assert "listening" in line, line + (process.stdout.read() if process.poll() is not None else "")
    yield {"url": f"http://127.0.0.1:{port}", "folder": folder}
    process.terminate()
    process.wait(timeout=30)
    shutil.rmtree(folder, ignore_errors=True)


def call(base, method, path, body=None):
    request = urllib.request.Request(
        base + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"api-key": KEY, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def unit(vector):
    length = math.sqrt(sum(value * value for value in vector))
    return [value / length for value in vector]


def test_snapshot_timer_uploads_every_collection_and_a_lost_collection_recovers(double):
    base, folder = double["url"], double["folder"]
    points = {}
    for collection, count in (("images-model-a", 40), ("images-model-b", 3)):
        assert call(base, "PUT", f"/collections/{collection}", {"vectors": {"size": 4, "distance": "Cosine"}})[0] == 200
        batch = []
        for index in range(count):
            vector = [1.0, index / count, (index % 7) / 7, 0.5]
            batch.append({"id": str(uuid.UUID(int=index + 1)), "vector": vector,
                          "payload": {"team_id": "team", "index": index}})
        status, _ = call(base, "PUT", f"/collections/{collection}/points?wait=true", {"points": batch})
        assert status == 200
        points[collection] = batch

    # The timer's script as installed, with this machine's paths, and `gcloud storage cp` copying
    # into a folder that stands for the bucket.
    bucket = os.path.join(folder, "bucket")
    snapshots = os.path.join(folder, "data", "snapshots")
    environment_file = os.path.join(folder, "api-key.env")
    with open(environment_file, "w") as handle:
        handle.write(f"QDRANT_API_KEY={KEY}\n")
    script = (snapshot_script()
              .replace("/etc/qdrant/api-key.env", environment_file)
              .replace("http://127.0.0.1:6333", base)
              .replace("/var/lib/qdrant/snapshots", snapshots)
              .replace("gs://BUCKET/", "gs://snapshots-bucket/"))
    tools = os.path.join(folder, "tools")
    os.makedirs(tools)
    with open(os.path.join(tools, "gcloud"), "w") as handle:
        handle.write(f"""#!/bin/sh
[ "$1 $2" = "storage cp" ] || {{ echo "unexpected gcloud $*" >&2; exit 2; }}
target="{bucket}/${{4#gs://snapshots-bucket/}}"
mkdir -p "$(dirname "$target")" && cp "$3" "$target"
""")
    os.chmod(os.path.join(tools, "gcloud"), 0o755)
    run = subprocess.run(["bash", "-c", script], env={**os.environ, "PATH": tools + os.pathsep + os.environ["PATH"]},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr

    host = socket.gethostname()
    uploaded = {}
    for collection in points:
        files = os.listdir(os.path.join(bucket, host, collection))
        assert len(files) == 1 and files[0].startswith(collection) and files[0].endswith(".snapshot")
        uploaded[collection] = os.path.join(bucket, host, collection, files[0])
        # Removed from the node's disk once uploaded, and from the node's list.
        assert not [name for name in os.listdir(os.path.join(snapshots, collection)) if name.endswith(".snapshot")]
        assert call(base, "GET", f"/collections/{collection}/snapshots")[1]["result"] == []

    # The collection is lost; Qdrant's snapshot recovery brings every point back, vectors and payloads.
    collection = "images-model-a"
    assert call(base, "DELETE", f"/collections/{collection}")[0] == 200
    assert call(base, "GET", f"/collections/{collection}")[0] == 404
    status, answer = call(base, "PUT", f"/collections/{collection}/snapshots/recover",
                          {"location": "file://" + uploaded[collection]})
    assert status == 200 and answer["result"] is True, answer
    status, answer = call(base, "POST", f"/collections/{collection}/points/count", {"exact": True})
    assert status == 200 and answer["result"]["count"] == len(points[collection])
    ids = [point["id"] for point in points[collection]]
    status, answer = call(base, "POST", f"/collections/{collection}/points",
                          {"ids": ids, "with_payload": True, "with_vector": True})
    assert status == 200
    restored = {record["id"]: record for record in answer["result"]}
    for point in points[collection]:
        record = restored[point["id"]]
        assert record["payload"] == point["payload"]
        assert all(abs(a - b) < 1e-6 for a, b in zip(record["vector"], unit(point["vector"])))
    # Writes go on after the recovery, and the other collection was never touched.
    extra = {"id": str(uuid.UUID(int=999)), "vector": [0.0, 1.0, 0.0, 0.0], "payload": {"team_id": "team"}}
    assert call(base, "PUT", f"/collections/{collection}/points?wait=true", {"points": [extra]})[0] == 200
    assert call(base, "POST", f"/collections/{collection}/points/count", {"exact": True})[1]["result"]["count"] == 41
    assert call(base, "POST", "/collections/images-model-b/points/count", {"exact": True})[1]["result"]["count"] == 3
    # Only local snapshot files can be recovered here, and saying so is a 400, not a crash.
    assert call(base, "PUT", f"/collections/{collection}/snapshots/recover",
                {"location": "https://example.com/x.snapshot"})[0] == 400
