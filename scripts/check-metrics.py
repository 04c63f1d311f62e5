#!/usr/bin/env python3
"""Checks the emulator's GET /metrics with prometheus_client's own parser.

    check-metrics.py BASE_URL

Scrapes once, runs a scripted session (health checks, refused requests, an upload processed to
success, the same bytes again, a file that is no image, one search twice), scrapes again, and
checks that the request counts of http_server_request_duration_seconds moved by exactly what the
session did, by route template (never a raw path), method and status; that the pipeline's
counters (uploads by outcome, processing deliveries, each stage's duration, outbox deliveries and
publish durations, query-embedding cache hits and misses, embedder calls, vector index operations)
moved by exactly what happened too; that every histogram's buckets rise to its count; that the
outbox's depth and age, read from the store at scrape time, are 0 once everything is delivered; and
that http_server_active_requests counts the scrape in flight. Run by scripts/check-metrics.sh (the
emulator with the tests' tiny CLIP model).
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

from prometheus_client.parser import text_string_to_metric_families

BASE = sys.argv[1]
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures")
DURATION = "http_server_request_duration_seconds"


def call(method, path, body=None, headers=None, content_type="application/json"):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


def scrape():
    status, body, headers = call("GET", "/metrics")
    assert status == 200, status
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers["Content-Type"]
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    counts, pipeline = {}, {}
    for family in families.values():
        for sample in family.samples:
            if sample.name.endswith("_total") or (sample.name.endswith("_count") and sample.name != DURATION + "_count"):
                # The model's id is whatever the tests' tiny model is called: left out of the key.
                labels = sorted((k, v) for k, v in sample.labels.items() if k != "model")
                pipeline[(sample.name,) + tuple(labels)] = sample.value
    for sample in families[DURATION].samples if DURATION in families else []:
        if sample.name == DURATION + "_count":
            key = (sample.labels["http_route"], sample.labels["http_request_method"],
                   sample.labels["http_response_status_code"])
            counts[key] = sample.value
    return families, counts, pipeline, body.decode()


def check_histograms(families):
    for family in families.values():
        if family.type != "histogram":
            continue
        series = {}
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
            series.setdefault(labels, {"buckets": [], "count": None})
            if sample.name.endswith("_bucket"):
                series[labels]["buckets"].append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_count"):
                series[labels]["count"] = sample.value
        for labels, found in series.items():
            values = [value for _, value in sorted(found["buckets"])]
            assert values == sorted(values), f"{family.name}{labels}: buckets fall"
            assert values and values[-1] == found["count"], f"{family.name}{labels}: +Inf is not the count"


def main():
    status, body, _ = call("POST", "/api/v1/teams", {"name": "Metrics"})
    team = json.loads(body)["id"]
    status, body, _ = call("POST", "/api/v1/users", {"email": "metrics@example.com", "name": "M", "team_id": team})
    user = json.loads(body)["id"]
    status, body, _ = call("POST", f"/api/v1/auth/api-keys?user_id={user}&team_id={team}", {"name": "metrics"})
    key = {"X-API-Key": json.loads(body)["key"]}

    before, counts_before, pipeline_before, _ = scrape()
    expected = {("/metrics", "GET", "200"): 1}  # the first scrape itself

    def did(route, method, status_code, times=1):
        expected[(route, method, str(status_code))] = expected.get((route, method, str(status_code)), 0) + times

    for _ in range(3):
        assert call("GET", "/healthz")[0] == 200
    did("/healthz", "GET", 200, 3)
    for _ in range(2):
        assert call("POST", "/api/v1/teams", {"name": ""})[0] == 422
    did("/api/v1/teams", "POST", 422, 2)
    missing = str(uuid.uuid4())
    assert call("GET", f"/api/v1/teams/{missing}")[0] == 404
    did("/api/v1/teams/{team_id}", "GET", 404)
    assert call("GET", f"/no/such/path/{missing}")[0] == 404
    did("unmatched", "GET", 404)
    assert call("GET", "/api/v1/images", headers={"X-API-Key": "imk_wrong"})[0] == 401
    did("/api/v1/images", "GET", 401)

    boundary = "metricsboundary"

    def upload(data, filename):
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        return call("POST", "/api/v1/images", form, key, f"multipart/form-data; boundary={boundary}")

    with open(os.path.join(FIXTURES, "sunset.jpg"), "rb") as handle:
        image = handle.read()
    status, body, _ = upload(image, "sunset.jpg")
    assert status == 201, (status, body)
    did("/api/v1/images", "POST", 201)
    image_id = json.loads(body)["id"]
    assert upload(image, "again.jpg")[0] == 409
    did("/api/v1/images", "POST", 409)
    assert upload(b"plain words, no picture", "notes.txt")[0] == 415
    did("/api/v1/images", "POST", 415)
    polls = 0
    for _ in range(300):
        polls += 1
        state = json.loads(call("GET", f"/api/v1/images/{image_id}", headers=key)[1])["embedding_status"]
        if state in ("success", "failed"):
            break
        time.sleep(0.1)
    assert state == "success", state
    did("/api/v1/images/{image_id}", "GET", 200, polls)
    for _ in range(2):
        assert call("GET", "/api/v1/search?q=sunset&mode=semantic", headers=key)[0] == 200
    did("/api/v1/search", "GET", 200, 2)

    after, counts_after, pipeline_after, text = scrape()
    moved = {key: counts_after.get(key, 0) - counts_before.get(key, 0) for key in set(counts_after) | set(counts_before)}
    moved = {key: value for key, value in moved.items() if value}
    # The local Pub/Sub pushes the processing event to the function over HTTP too.
    events = {key: value for key, value in moved.items() if key[0] == "/events/process-embedding"}
    assert sum(events.values()) <= 1 and all(key[2] in ("200", "204") for key in events), events
    others = {key: value for key, value in moved.items() if key not in events}
    assert others == expected, f"moved {sorted(others.items())}, expected {sorted(expected.items())}"
    assert missing not in text and image_id not in text, "a raw path reached a label"
    pipeline = {key: pipeline_after.get(key, 0) - pipeline_before.get(key, 0) for key in pipeline_after}
    pipeline = {key: value for key, value in pipeline.items() if value}
    expected_pipeline = {
        ("image_uploads_total", ("outcome", "stored")): 1,
        ("image_uploads_total", ("outcome", "duplicate")): 1,
        ("image_uploads_total", ("outcome", "unsupported_format")): 1,
        ("image_processing_deliveries_total", ("outcome", "embedded")): 1,
        ("image_processing_stage_duration_seconds_count", ("stage", "thumbnail")): 1,
        ("image_processing_stage_duration_seconds_count", ("stage", "phash")): 1,
        ("image_processing_stage_duration_seconds_count", ("stage", "embed")): 1,
        ("image_processing_stage_duration_seconds_count", ("stage", "index")): 1,
        ("outbox_deliveries_total", ("outcome", "delivered")): 1,
        ("outbox_publish_duration_seconds_count",): 1,
        ("query_embedding_cache_lookups_total", ("result", "miss")): 1,
        ("query_embedding_cache_lookups_total", ("result", "hit")): 1,
        # The cache wraps the measured embedder: the hit never reaches it.
        ("embedder_duration_seconds_count", ("input", "image")): 1,
        ("embedder_duration_seconds_count", ("input", "text")): 1,
        ("vector_index_operation_duration_seconds_count", ("backend", "embedded"), ("operation", "upsert")): 1,
        ("vector_index_operation_duration_seconds_count", ("backend", "embedded"), ("operation", "search")): 2,
    }
    assert pipeline == expected_pipeline, f"moved {sorted(pipeline.items())}, expected {sorted(expected_pipeline.items())}"
    check_histograms(after)
    # Read from the store at scrape time: everything was delivered.
    gauges = {family.name: family.samples[0].value for family in after.values() if family.type == "gauge"
              and family.name.startswith("outbox_")}
    assert gauges == {"outbox_messages": 0, "outbox_oldest_message_age_seconds": 0}, gauges
    active = [s for s in after["http_server_active_requests"].samples
              if s.labels.get("http_request_method") == "GET"]
    assert active and active[0].value == 1, active  # the scrape in flight
    print(f"metrics: {len(expected_pipeline)} pipeline series and "
          f"{len(expected)} request series moved by exactly the session's "
          f"{int(sum(expected.values()))} requests (processing events: {int(sum(events.values()))}); "
          f"{sum(1 for f in after.values() if f.type == 'histogram')} histograms well formed")


if __name__ == "__main__":
    main()
