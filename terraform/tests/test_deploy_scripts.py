"""deployment/deploy.sh and scripts/seed, as far as they run without Google Cloud: each stops with
a clear message when a tool or a login is missing, and seed creates the first team, admin and key
against a real (emulated, production-mode) API, reading the bootstrap key through a stand-in for
`gcloud secrets versions access` (Secret Manager cannot be reached here)."""

import json
import os
import re
import secrets
import shutil
import sys
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def tools_without(*missing, stubs=None):
    """A PATH folder with this machine's tools except `missing`, plus stub scripts."""
    folder = tempfile.mkdtemp()
    for name in ("bash", "sh", "env", "git", "sed", "dirname", "cat", "tr", "head", "grep", "mktemp", "tee", "openssl",
                 "python3", "terraform", "gcloud"):
        if name in missing or (stubs and name in stubs):
            continue
        # python3: this interpreter (a version manager's shim would need its own environment).
        found = sys.executable if name == "python3" else shutil.which(name)
        if found:
            os.symlink(found, os.path.join(folder, name))
    for name, body in (stubs or {}).items():
        path = os.path.join(folder, name)
        with open(path, "w") as handle:
            handle.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, 0o755)
    return folder


def run_deploy(path, *arguments):
    environment = {"PATH": path, "PROJECT_ID": "my-project", "DOMAIN": "images.example.com", "HOME": tempfile.mkdtemp()}
    return subprocess.run(
        ["bash", os.path.join(ROOT, "deployment/deploy.sh"), *arguments],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)


def test_deploy_names_what_is_missing():
    missing_gcloud = run_deploy(tools_without("gcloud"), "--plan")
    assert missing_gcloud.returncode != 0 and "gcloud is not installed" in missing_gcloud.stderr
    missing_terraform = run_deploy(tools_without("terraform", stubs={"gcloud": "exit 0"}), "--plan")
    assert missing_terraform.returncode != 0 and "terraform is not installed" in missing_terraform.stderr
    logged_out = run_deploy(tools_without(stubs={"gcloud": "exit 1", "terraform": "exit 0"}), "--plan")
    assert logged_out.returncode != 0 and "gcloud is not logged in" in logged_out.stderr
    # Logged in, but the project cannot be read.
    no_project = run_deploy(
        tools_without(stubs={"gcloud": '[ "$1" = projects ] && exit 1; exit 0', "terraform": "exit 0"}), "--plan")
    assert no_project.returncode != 0 and "project my-project cannot be read" in no_project.stderr
    assert "==> Checking gcloud's credentials" in no_project.stdout
    usage = run_deploy(tools_without(), "--bogus")
    assert usage.returncode == 64 and "unknown argument --bogus" in usage.stderr
    alone = run_deploy(tools_without(), "--destroy", "--deploy")
    assert alone.returncode != 0 and "--destroy goes alone" in alone.stderr


def run_destroy(destroy_error="", state=None):
    """deploy.sh --destroy with terraform and gcloud replaced by scripts that record their
    arguments: (the finished process, every terraform call as one line)."""
    folder = tempfile.mkdtemp()
    calls = os.path.join(folder, "calls")
    listing = "\\n".join(state if state is not None else [
        "google_cloud_run_v2_service.functions[\"search\"]", "google_compute_instance.qdrant[0]",
        "google_firestore_database.metadata", "google_storage_bucket.images", "google_pubsub_topic.uploads"])
    terraform = f"""
echo "$* image_tag=$TF_VAR_image_tag" >> {calls}
case "$2" in
    state) [ "$3" = list ] && printf '{listing}\\n' ;;
    output) printf deployed1 ;;
    destroy) [ -n "{destroy_error}" ] && echo "{destroy_error}" >&2 && exit 1 ;;
esac
exit 0"""
    path = tools_without(stubs={"gcloud": "exit 0", "terraform": terraform})
    environment = {"PATH": path, "PROJECT_ID": "my-project", "DOMAIN": "images.example.com", "HOME": folder}
    finished = subprocess.run(
        ["bash", os.path.join(ROOT, "deployment/deploy.sh"), "--destroy"], cwd=ROOT, env=environment,
        input="my-project\n", capture_output=True, text=True, timeout=60)
    with open(calls) as handle:
        return finished, handle.read().splitlines()


def test_destroy_lifts_protection_only_where_it_is_with_the_deployed_images_then_destroys():
    finished, calls = run_destroy()
    assert finished.returncode == 0, finished.stderr
    applies = [call for call in calls if call.startswith("-chdir=terraform apply")]
    assert len(applies) == 1
    apply = applies[0]
    # Only protected resources that exist, never a full apply (which would deploy this commit's images).
    assert "-target=google_cloud_run_v2_service.functions[\"search\"]" in apply
    assert "-target=google_compute_instance.qdrant[0]" in apply and "-target=google_storage_bucket.images" in apply
    assert "google_pubsub_topic" not in apply
    assert "-var deletion_protection=false" in apply and apply.endswith("image_tag=deployed1")
    assert calls.index(apply) < calls.index(next(call for call in calls if "destroy" in call))


def test_destroy_without_protected_resources_applies_nothing():
    finished, calls = run_destroy(state=["google_pubsub_topic.uploads"])
    assert finished.returncode == 0, finished.stderr
    assert not [call for call in calls if " apply " in f" {call} "]
    assert any(call.startswith("-chdir=terraform destroy") for call in calls)


def test_destroy_says_when_the_direct_vpc_subnet_is_not_released_yet():
    finished, _ = run_destroy(
        destroy_error="Error: The subnetwork resource 'projects/p/regions/r/subnetworks/image-api-functions' is already being used")
    assert finished.returncode == 75
    assert "one to two hours" in finished.stderr and "deploy.sh --destroy again" in finished.stderr
    other, _ = run_destroy(destroy_error="Error: something else")
    assert other.returncode == 1 and "run deployment/deploy.sh --destroy again" in other.stderr


@pytest.fixture
def production_emulator():
    binary = os.path.join(
        subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip(),
        "emulator")
    bootstrap = f"imk_{secrets.token_hex(16)}_{secrets.token_urlsafe(32)}"
    data = tempfile.mkdtemp()
    environment = {
        "PATH": os.environ["PATH"], "PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": data, "LOG_LEVEL": "warning",
        "ENVIRONMENT": "production", "API_KEY_SECRET": secrets.token_hex(32), "BOOTSTRAP_ADMIN_KEY": bootstrap,
        "PUBSUB_PUSH_TOKEN": secrets.token_hex(16),
    }
    output = open(os.path.join(data, "out"), "w+")
    process = subprocess.Popen([binary], cwd=data, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            output.seek(0)
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", output.read())
            if found:
                break
            assert process.poll() is None, "the emulator stopped"
            time.sleep(0.1)
        assert found, "the emulator did not start"
        yield f"http://127.0.0.1:{found.group(1)}", bootstrap
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def test_seed_creates_the_first_team_admin_and_key(production_emulator):
    base, bootstrap = production_emulator
    # Stands in for `gcloud secrets versions access latest --secret=… --project=…`.
    stub = tools_without(stubs={"gcloud": f'[ "$1 $2 $3" = "secrets versions access" ] && echo "{bootstrap}"'})
    seeded = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts/seed"), "--api", base, "--project", "p", "--bootstrap-secret", "s",
         "--team", "Ops", "--email", "ops@example.com"],
        env={"PATH": stub}, capture_output=True, text=True, timeout=60)
    assert seeded.returncode == 0, seeded.stderr
    key = re.search(r"Admin key \(shown once, keep it safe\): (imk_\S+)", seeded.stdout).group(1)
    request = urllib.request.Request(f"{base}/api/v1/auth/verify", headers={"X-API-Key": key})
    verified = json.load(urllib.request.urlopen(request))
    assert verified["is_admin"] is True
    # Run again, the e-mail is taken: it says so and fails.
    again = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts/seed"), "--api", base, "--project", "p", "--bootstrap-secret", "s",
         "--email", "ops@example.com"],
        env={"PATH": stub}, capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "answered 409" in again.stderr
    # No gcloud at all.
    missing = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts/seed"), "--api", base, "--project", "p", "--bootstrap-secret", "s",
         "--email", "a@example.com"],
        env={"PATH": tools_without("gcloud")}, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "gcloud is not installed" in missing.stderr
