"""Checks over terraform/ as parsed by python-hcl2, against the code it deploys.

Run by scripts/terraform-checks.sh (part of the test command) with OPENAPI_DOCUMENT naming the
emulator's /openapi.json saved to a file. `terraform validate` cannot run where these run (the
Google provider cannot be downloaded); deployment/README.md says how to run it where it can.
"""

import glob
import json
import os
import re
import subprocess

import hcl2
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TERRAFORM = os.path.join(ROOT, "terraform")


def kebab(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


@pytest.fixture(scope="session")
def parsed():
    """Every .tf file, merged: blocks by kind."""
    merged = {"locals": {}, "resource": {}, "variable": {}, "output": {}}
    for path in sorted(glob.glob(os.path.join(TERRAFORM, "*.tf"))):
        with open(path) as handle:
            document = hcl2.load(handle)
        for block in document.get("locals", []):
            merged["locals"].update(block)
        for block in document.get("resource", []):
            for kind, resources in block.items():
                merged["resource"].setdefault(kind, {}).update(resources)
        for block in document.get("variable", []):
            merged["variable"].update(block)
        for block in document.get("output", []):
            merged["output"].update(block)
    return merged


def single(value):
    """python-hcl2 wraps attribute values in one-element lists."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def env_names(expression):
    """The variable names a locals map (a literal, or merge() of literals) sets."""
    text = expression if isinstance(expression, str) else repr(expression)
    return set(re.findall(r"'([A-Z][A-Z0-9_]+)':", text))


@pytest.fixture(scope="session")
def package():
    description = subprocess.run(
        ["swift", "package", "dump-package"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(description)


def read_variables(package, product):
    """The configuration variables a product's binary can read: every ALL_CAPS string literal in
    the Swift sources of the targets it is built from (its own and their dependencies, local ones)
    that docs/configuration.md documents."""
    targets = {target["name"]: target for target in package["targets"]}
    products = {item["name"]: item for item in package["products"]}
    pending = list(products[product]["targets"])
    seen = set()
    while pending:
        name = pending.pop()
        if name in seen or name not in targets:
            continue
        seen.add(name)
        for dependency in targets[name].get("dependencies", []):
            for kind in ("byName", "target"):
                if kind in dependency:
                    pending.append(dependency[kind][0])
    literals = set()
    for name in seen:
        path = targets[name].get("path") or os.path.join("Sources", name)
        for source in glob.glob(os.path.join(ROOT, path, "**", "*.swift"), recursive=True):
            with open(source) as handle:
                text = handle.read()
            # The list of secret names (for redaction) names variables without reading them.
            text = re.sub(r"secretNames: Set<String> = \[[^\]]*\]", "", text)
            literals |= set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', text))
    return literals & documented_variables()


def documented_variables():
    with open(os.path.join(ROOT, "docs", "configuration.md")) as handle:
        table = handle.read()
    names = set()
    for row in table.splitlines():
        if row.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1]))
    return names


def swift_declaration(path, start, end):
    """The text of a Swift source file from `start` to the next `end`."""
    with open(os.path.join(ROOT, path)) as handle:
        return handle.read().split(start, 1)[1].split(end, 1)[0]


def secret_names():
    """The variables the binaries treat as secrets (EnvironmentVariables.secretNames)."""
    declaration = swift_declaration("Runtime/Support/RuntimeSupport/EnvironmentVariables.swift", "secretNames: Set<String> = [", "]")
    return set(re.findall(r'"([A-Z][A-Z0-9_]+)"', declaration))


def function_names(parsed):
    return set(single(parsed["locals"]["function_names"]))


def image_functions(parsed):
    return set(single(parsed["locals"]["image_functions"]))


def service_environment(parsed, function):
    """(plain variables, secret variables) the service of a function sets."""
    locals_ = parsed["locals"]
    plain = env_names(single(locals_["common_env"]))
    secrets = env_names(single(locals_["common_secrets"]))
    if function in image_functions(parsed):
        plain |= env_names(single(locals_["image_env"]))
        secrets |= env_names(single(locals_["image_secrets"]))
    return plain, secrets


def test_every_function_has_a_service(parsed, package):
    folders = {kebab(os.path.basename(path)) for path in glob.glob(os.path.join(ROOT, "Functions", "*"))}
    products = {item["name"] for item in package["products"]}
    assert function_names(parsed) == folders
    assert folders <= products, "every function folder builds a product of the same name"
    assert image_functions(parsed) < function_names(parsed)
    service = parsed["resource"]["google_cloud_run_v2_service"]["functions"]
    assert single(service["for_each"]) == "${toset(local.function_names)}"
    container = single(single(service["template"])["containers"])
    assert single(container["image"]) == "${local.registry}/${each.key}:${var.image_tag}", "one image per function"
    # The environment comes from the maps these tests read, merged as they assume.
    dynamic = [single(block["env"]["for_each"]) for block in container["dynamic"] if "env" in block]
    assert dynamic == ["${local.function_env[each.key]}", "${local.function_secrets[each.key]}"]
    for name, extra in (("function_env", "local.image_env"), ("function_secrets", "local.image_secrets")):
        expression = single(parsed["locals"][name])
        assert "contains(local.image_functions,name)" in expression.replace(" ", "") and extra in expression


def test_every_variable_a_service_sets_is_one_its_binary_reads(parsed, package):
    for function in sorted(function_names(parsed)):
        plain, secrets = service_environment(parsed, function)
        assert plain and secrets
        unread = (plain | secrets) - read_variables(package, function)
        assert not unread, f"{function} sets {sorted(unread)}, which its binary does not read"


def test_the_check_above_can_fail(package):
    # A variable only the image functions read is not read by a management binary.
    assert "QDRANT_API_KEY" in read_variables(package, "search")
    assert "QDRANT_API_KEY" not in read_variables(package, "manage-teams")
    assert "VERTEX_LOCATION" in read_variables(package, "process-embedding")
    assert "VERTEX_LOCATION" not in read_variables(package, "api-keys")
    assert "GCS_BUCKET_NAME" not in read_variables(package, "manage-users")


def test_every_secret_a_binary_needs_is_mounted_from_secret_manager(parsed, package):
    secrets_by_key = {key: single(value) for key, value in single(parsed["locals"]["secrets"]).items()}
    for function in sorted(function_names(parsed)):
        plain, secrets = service_environment(parsed, function)
        reads = read_variables(package, function)
        assert not (plain & secret_names()), f"{function} sets a secret as a plain value"
        needed = {"API_KEY_SECRET", "BOOTSTRAP_ADMIN_KEY"}  # the latter while mount_bootstrap_admin_key
        if "VECTOR_BACKEND" in plain:
            needed.add("QDRANT_API_KEY")
        assert needed <= secrets, f"{function} lacks {sorted(needed - secrets)}"
        assert needed <= reads
    # Each mount names the secret that holds that variable.
    for name in ("common_secrets", "image_secrets"):
        text = single(parsed["locals"][name])
        for variable, key in re.findall(r"'([A-Z][A-Z0-9_]+)': '([a-z_]+)'", repr(text)):
            assert secrets_by_key[key] == variable
    readers = single(parsed["locals"]["secret_readers"])
    assert "api_key_secret" in readers and "qdrant_api_key" in readers, "each function may read what it mounts"


def routes(parsed):
    return {key: single(value) for key, value in single(parsed["locals"]["routes"]).items()}


def router_map():
    production = swift_declaration("Runtime/Hosting/FunctionRouter/ServiceURLMap.swift", "static let production", "])")
    return dict(re.findall(r'Rule\("([^"]+)", "([^"]+)"\)', production))


def test_the_url_map_is_the_routers_and_covers_every_route_of_the_openapi_document(parsed):
    assert routes(parsed) == router_map()
    url_map = parsed["resource"]["google_compute_url_map"]["api"]
    matcher = single(url_map["path_matcher"])
    rule = single(matcher["dynamic"])["path_rule"]
    assert single(rule["for_each"]) == "${local.routes}"
    content = single(rule["content"])
    assert single(content["paths"]) == ["${path_rule.key}", "${path_rule.key}/*"]
    assert "path_rule.value" in single(content["service"])

    with open(os.environ["OPENAPI_DOCUMENT"]) as handle:
        document = json.load(handle)
    api_paths = [path for path in document["paths"] if path.startswith("/api/")]
    assert len(api_paths) >= 10
    for path in api_paths:
        matches = [prefix for prefix in routes(parsed) if path == prefix or path.startswith(prefix + "/")]
        assert matches, f"{path} reaches no function through the load balancer"
        assert routes(parsed)[max(matches, key=len)] in function_names(parsed)


def test_events_are_pushed_with_oidc_and_dead_lettered(parsed):
    subscription = parsed["resource"]["google_pubsub_subscription"]["process_embedding"]
    push = single(subscription["push_config"])
    assert "functions[\"process-embedding\"]" in single(push["push_endpoint"])
    token = single(push["oidc_token"])
    assert single(token["audience"]) == "${local.push_audience}"
    assert single(single(subscription["dead_letter_policy"])["dead_letter_topic"]) == "${google_pubsub_topic.dead_letter.id}"
    assert single(subscription["retry_policy"])
    service = parsed["resource"]["google_cloud_run_v2_service"]["functions"]
    assert single(service["ingress"]) == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    env = single(parsed["locals"]["common_env"])
    assert "'PUBSUB_PUSH_AUDIENCE': '${local.push_audience}'" in env
    job = parsed["resource"]["google_cloud_scheduler_job"]["outbox_relay"]
    assert single(single(job["http_target"])["uri"]).endswith("${local.relay_path}")
    with open(os.path.join(ROOT, "Runtime/Hosting/FunctionHosting/OutboxRelayEndpoint.swift")) as handle:
        assert f'path = "{single(parsed["locals"]["relay_path"])}"' in handle.read()


def test_firestore_indexes_come_from_the_index_file(parsed):
    index = parsed["resource"]["google_firestore_index"]["metadata"]
    assert "local.firestore_indexes" in single(index["for_each"])
    assert "firestore-indexes.json" in single(parsed["locals"]["firestore_indexes"])
    with open(os.path.join(TERRAFORM, "firestore-indexes.json")) as handle:
        assert json.load(handle)["indexes"]


def test_every_variable_has_a_description_and_a_type(parsed):
    for name, variable in parsed["variable"].items():
        assert single(variable.get("description")), f"variable {name} has no description"
        assert single(variable.get("type")), f"variable {name} has no type"
    for name, output in parsed["output"].items():
        assert single(output.get("description")), f"output {name} has no description"


def test_each_function_may_do_to_the_bucket_what_its_handlers_do(parsed):
    """Writes or deletes (`blobs.put`, `blobs.delete`) need objectUser; reads (`blobs.data`,
    `blobs.size`, downloads) at least objectViewer; a function that touches no blob gets no role.
    What a function does is read from its handlers and from the domain's use cases they call (a
    type of Runtime/Domain/ImageAPICore named in the handlers, such as `ImageUploads`, read from its file)."""
    granted = {}
    for resource in parsed["resource"]["google_storage_bucket_iam_member"].values():
        if single(resource["bucket"]) != "${google_storage_bucket.images.name}":
            continue
        member = single(resource["member"])
        names = single(resource["for_each"]) if "for_each" in resource else None
        role = single(resource["role"])
        if names is not None:
            names = re.findall(r"""['"]([a-z-]+)['"]""", names)
        else:
            names = re.findall(r"""functions\[['"]([a-z-]+)['"]\]""", member)
        for name in names:
            granted.setdefault(name, set()).add(role)
    for folder in glob.glob(os.path.join(ROOT, "Functions", "*")):
        function = kebab(os.path.basename(folder))
        source = ""
        for path in glob.glob(os.path.join(folder, "**", "*.swift"), recursive=True):
            with open(path) as handle:
                source += handle.read()
        for path in glob.glob(os.path.join(ROOT, "Runtime", "Domain", "ImageAPICore", "**", "*.swift"), recursive=True):
            use_case = os.path.splitext(os.path.basename(path))[0]
            if re.search(r"\b%s\(" % use_case, source):
                with open(path) as handle:
                    source += handle.read()
        writes = re.search(r"blobs\.(put|delete)\(", source)
        reads = re.search(r"blobs\.\w+\(", source)
        roles = granted.get(function, set())
        if writes:
            assert "roles/storage.objectUser" in roles, f"{function} writes blobs without roles/storage.objectUser"
        elif reads:
            assert roles & {"roles/storage.objectViewer", "roles/storage.objectUser"}, f"{function} reads blobs"
        else:
            assert not roles, f"{function} touches no blob but may: {sorted(roles)}"


# What applies on a fresh project: names within Google's limits, no public IAM binding, grants
# that exist before what needs them, every resource after the APIs it uses.

def resources(parsed):
    """(kind, name, body) of every resource."""
    for kind, named in parsed["resource"].items():
        for name, body in named.items():
            yield kind, name, body


def depends_on(body):
    return [reference for entry in body.get("depends_on", []) for reference in (entry if isinstance(entry, list) else [entry])]


def references(body):
    """The resources a resource names anywhere in its body (depends_on included)."""
    return set(re.findall(r"\b(google_[a-z0-9_]+\.[a-z0-9_]+|time_sleep\.[a-z0-9_]+)\b", repr(body)))


def preconditions(body):
    text = ""
    for lifecycle in body.get("lifecycle", []):
        for precondition in lifecycle.get("precondition", []):
            text += repr(precondition)
    return text


def test_names_built_from_the_prefix_fit_googles_limits(parsed):
    validation = single(single(parsed["variable"]["name_prefix"])["validation"])
    longest_prefix = int(re.search(r"\{1,(\d+)\}", single(validation["condition"])).group(1)) + 2
    longest_account = max(function_names(parsed) | {"pusher", "qdrant"}, key=len)
    assert longest_prefix + 1 + len(longest_account) <= 30, "a service account id is at most 30 characters"
    for name in ("functions", "pusher", "qdrant"):
        account = parsed["resource"]["google_service_account"][name]
        assert "<=30" in preconditions(account).replace(" ", ""), f"service account {name} checks its id's length"
    for name, bucket in parsed["resource"]["google_storage_bucket"].items():
        assert "project_id" in single(bucket["name"])
        assert "<=63" in preconditions(bucket).replace(" ", ""), f"bucket {name} checks its name's length"


def test_no_iam_binding_makes_anything_public(parsed):
    for kind, name, body in resources(parsed):
        if kind.endswith("_iam_member") or kind.endswith("_iam_binding"):
            members = repr(body.get("member", "")) + repr(body.get("members", ""))
            assert "allUsers" not in members and "allAuthenticatedUsers" not in members, f"{kind}.{name}"
    service = parsed["resource"]["google_cloud_run_v2_service"]["functions"]
    # Reachable only through the load balancer, which needs no invoker role: the API authenticates
    # its own keys, and event deliveries are checked by the function (OIDC audience and account).
    assert single(service["invoker_iam_disabled"]) is True
    assert single(service["ingress"]) == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"


def test_access_logs_can_be_written(parsed):
    writers = [
        body for kind, _, body in resources(parsed)
        if kind == "google_storage_bucket_iam_member" and single(body["bucket"]) == "${google_storage_bucket.access_logs.name}"
    ]
    assert any(
        single(body["member"]) == "group:cloud-storage-analytics@google.com"
        and single(body["role"]) == "roles/storage.objectCreator" for body in writers)
    for name in ("images", "snapshots"):
        logging = single(parsed["resource"]["google_storage_bucket"][name]["logging"])
        assert single(logging["log_bucket"]) == "${google_storage_bucket.access_logs.name}"


def test_the_qdrant_account_has_what_its_snapshot_copy_needs_and_nothing_it_cannot_use(parsed):
    roles = set()
    for kind, _, body in resources(parsed):
        if kind == "google_storage_bucket_iam_member" and single(body["member"]) == "${google_service_account.qdrant.member}":
            role = single(body["role"])
            roles |= set(re.findall(r"['\"](roles/[A-Za-z.]+)['\"]", single(body["for_each"]))) if role == "${each.value}" else {role}
    # gcloud storage cp lists the destination (objects.list) before it writes (objects.create).
    assert {"roles/storage.objectCreator", "roles/storage.objectViewer"} <= roles
    with open(os.path.join(TERRAFORM, "qdrant-startup.sh.tftpl")) as handle:
        startup = handle.read()
    project_roles = [
        single(body["for_each"]) for kind, _, body in resources(parsed)
        if kind == "google_project_iam_member" and "qdrant" in single(body["member"])
    ]
    if "google-cloud-ops-agent" not in startup:
        assert not project_roles, "log and metric writers serve nothing without an agent on the VM"


def test_services_start_after_every_grant_they_use_at_start(parsed):
    service = parsed["resource"]["google_cloud_run_v2_service"]["functions"]
    waits = depends_on(service)
    assert "${time_sleep.grants_visible}" in waits
    sleep = parsed["resource"]["time_sleep"]["grants_visible"]
    grants = set(depends_on(sleep))
    for grant in ("google_secret_manager_secret_iam_member.functions", "google_project_iam_member.functions",
                  "google_storage_bucket_iam_member.clip_model_readers", "google_storage_bucket_iam_member.image_objects",
                  "google_pubsub_topic_iam_member.relay_publishes"):
        assert "${%s}" % grant in grants, f"the services may start before {grant}"
    assert re.fullmatch(r"\d+s", single(sleep["create_duration"]))


def test_every_resource_is_created_after_the_apis_it_uses(parsed):
    """A plain terraform apply on a fresh project: each resource depends on the API enablement,
    directly or through a resource it names."""
    bodies = {f"{kind}.{name}": body for kind, name, body in resources(parsed)}
    reaches = {}

    def after_apis(address, seen=()):
        if address == "google_project_service.apis":
            return True
        if address in reaches:
            return reaches[address]
        if address not in bodies or address in seen:
            return False
        result = any(after_apis(reference, seen + (address,)) for reference in references(bodies[address]))
        reaches[address] = result
        return result

    early = sorted(address for address in bodies if address != "google_project_service.apis" and not after_apis(address))
    assert not early, f"may be created before the APIs are enabled: {early}"


def test_the_check_above_can_fail(parsed):
    assert not references({"name": "x"})
    assert references({"depends_on": ["${google_project_service.apis}"]}) == {"google_project_service.apis"}


def test_deletion_protection_protects_what_its_description_says(parsed):
    description = single(parsed["variable"]["deletion_protection"]["description"])
    database = parsed["resource"]["google_firestore_database"]["metadata"]
    assert "var.deletion_protection" in single(database["delete_protection_state"])
    instance = parsed["resource"]["google_compute_instance"]["qdrant"]
    assert single(instance["deletion_protection"]) == "${var.deletion_protection}"
    assert "Qdrant VMs" in description and "attached" in description
    service = parsed["resource"]["google_cloud_run_v2_service"]["functions"]
    assert single(service["deletion_protection"]) == "${var.deletion_protection}"
    for name in ("images", "snapshots"):
        assert single(parsed["resource"]["google_storage_bucket"][name]["force_destroy"]) == "${!var.deletion_protection}"


def test_snapshot_storage_class_pays_no_minimum_it_does_not_use(parsed):
    snapshots = parsed["resource"]["google_storage_bucket"]["snapshots"]
    storage_class = single(snapshots["storage_class"]).replace(" ", "")
    # Nearline bills 30 days per object at least: only worth it when snapshots are kept that long.
    assert storage_class == '${var.snapshot_retention_days>=30?"NEARLINE":"STANDARD"}'


def test_the_database_is_backed_up_daily_beside_point_in_time_recovery(parsed):
    database = parsed["resource"]["google_firestore_database"]["metadata"]
    assert single(database["point_in_time_recovery_enablement"]) == "POINT_IN_TIME_RECOVERY_ENABLED"
    schedule = parsed["resource"]["google_firestore_backup_schedule"]["daily"]
    assert single(schedule["database"]) == "${google_firestore_database.metadata.name}"
    assert "daily_recurrence" in schedule
    assert single(schedule["retention"]) == "${var.firestore_backup_retention_days * 86400}s"
    validation = single(single(parsed["variable"]["firestore_backup_retention_days"])["validation"])
    assert "<= 98" in single(validation["condition"]), "Firestore keeps a backup at most 14 weeks"
