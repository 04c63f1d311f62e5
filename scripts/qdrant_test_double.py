"""A Qdrant REST test double: the endpoints the Qdrant vector-index adapter calls, run on Qdrant's
own engine.

No Qdrant server can be installed on the machines this project is tested on, but Qdrant's engine
can: `qdrant-edge-py` is the Rust engine as a library. This server answers the REST API the way a
Qdrant server does for the requests the adapter makes, and nothing more:

- every request body is validated against the REST API's own request models from `qdrant-client`
  (which reject unknown fields), and a body that does not fit is answered 400 as Qdrant does;
- every operation runs on an `EdgeShard` per collection, kept under DATA_DIR, so a restart of the
  double keeps what was written (the shard's write-ahead log replays after a crash);
- answers have Qdrant's envelope (`result`, `status`, `time`) and are built from `qdrant-client`'s
  response models;
- searches are exact unless `--approximate` is given, so the double ranks like the embedded
  index and the contract suite can compare them; with `--approximate` the engine's optimizer
  builds the HNSW index once writes to a collection pause for a second (the collection reports
  `yellow` until then, as Qdrant does while it optimises), and searches use it;
- each answer carries `X-Engine-Seconds`, the time spent in the engine itself, so that a
  benchmark can tell the engine's time from the double's HTTP and validation overhead;
- with an API key (`--api-key` or `QDRANT__SERVICE__API_KEY`), requests without it get 401;
- collection snapshots (create, list, delete, and recover from a `file://` location) for the
  Qdrant VMs' snapshot timer and the restore procedure: a snapshot is a tar archive of the
  collection's definition and flushed shard, under DATA_DIR/snapshots/<collection>/ as under
  Qdrant's `snapshots_path`.

A collection's cluster settings (shards, replication, write consistency) are kept and reported,
but the double is one node: they change nothing here.

Run: scripts/qdrant-test-double PORT DATA_DIR [--api-key KEY] [--approximate]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

import pydantic
import qdrant_edge as edge
from qdrant_client.http import models

VERSION = "qdrant-test-double (qdrant-edge-py engine)"
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")


class Problem(Exception):
    """An error answered with Qdrant's error envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse(model: Any, body: Any) -> Any:
    """Validates a request body against a REST model (or a union of them)."""
    try:
        return pydantic.TypeAdapter(model).validate_python(body)
    except pydantic.ValidationError as error:
        raise Problem(400, f"Format error in JSON body: {error.errors()[0]['msg']} at "
                      f"{'.'.join(str(part) for part in error.errors()[0]['loc'])}") from None


def dump(value: Any) -> Any:
    """A response model as the JSON Qdrant writes (absent optional fields left out)."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [dump(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------
# From the REST models to the engine's types
# ---------------------------------------------------------------------------------------------

DISTANCES = {
    models.Distance.COSINE: edge.Distance.Cosine,
    models.Distance.EUCLID: edge.Distance.Euclid,
    models.Distance.DOT: edge.Distance.Dot,
    models.Distance.MANHATTAN: edge.Distance.Manhattan,
}

SCHEMA_TYPES = {
    "keyword": edge.PayloadSchemaType.Keyword,
    "integer": edge.PayloadSchemaType.Integer,
    "float": edge.PayloadSchemaType.Float,
    "bool": edge.PayloadSchemaType.Bool,
    "datetime": edge.PayloadSchemaType.Datetime,
    "uuid": edge.PayloadSchemaType.Uuid,
    "text": edge.PayloadSchemaType.Text,
    "geo": edge.PayloadSchemaType.Geo,
}


def point_id(value: Any) -> Any:
    return str(value) if not isinstance(value, int) else value


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def timestamp(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.isoformat()
    return str(value)


def engine_filter(rest: models.Filter | None) -> edge.Filter | None:
    if rest is None:
        return None
    if rest.min_should is not None:
        raise Problem(400, "the test double does not implement min_should")
    return edge.Filter(
        must=[engine_condition(c) for c in as_list(rest.must)] or None,
        should=[engine_condition(c) for c in as_list(rest.should)] or None,
        must_not=[engine_condition(c) for c in as_list(rest.must_not)] or None,
    )


def engine_condition(rest: Any) -> Any:
    if isinstance(rest, models.Filter):
        return engine_filter(rest)
    if isinstance(rest, models.HasIdCondition):
        return edge.HasIdCondition({point_id(value) for value in rest.has_id})
    if isinstance(rest, models.IsNullCondition):
        return edge.IsNullCondition(rest.is_null.key)
    if isinstance(rest, models.IsEmptyCondition):
        return edge.IsEmptyCondition(rest.is_empty.key)
    if isinstance(rest, models.FieldCondition):
        if rest.match is not None:
            if isinstance(rest.match, models.MatchValue):
                return edge.FieldCondition(key=rest.key, match=edge.MatchValue(rest.match.value))
            if isinstance(rest.match, models.MatchAny):
                return edge.FieldCondition(key=rest.key, match=edge.MatchAny(rest.match.any))
            if isinstance(rest.match, models.MatchExcept):
                return edge.FieldCondition(key=rest.key, match=edge.MatchExcept(rest.match.except_))
            raise Problem(400, f"the test double does not implement match {type(rest.match).__name__}")
        if isinstance(rest.range, models.DatetimeRange):
            r = rest.range
            return edge.FieldCondition(key=rest.key, range=edge.RangeDateTime(
                gte=None if r.gte is None else timestamp(r.gte), gt=None if r.gt is None else timestamp(r.gt),
                lte=None if r.lte is None else timestamp(r.lte), lt=None if r.lt is None else timestamp(r.lt)))
        if isinstance(rest.range, models.Range):
            r = rest.range
            return edge.FieldCondition(key=rest.key, range=edge.RangeFloat(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt))
        raise Problem(400, f"the test double does not implement this condition on {rest.key}")
    raise Problem(400, f"the test double does not implement {type(rest).__name__}")


def with_payload_flag(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, list):
        return edge.PayloadSelector.Include(value)
    raise Problem(400, "the test double takes with_payload as a boolean or a list of keys")


def with_vector_flag(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    raise Problem(400, "the test double takes with_vector as a boolean")


# ---------------------------------------------------------------------------------------------
# Collections
# ---------------------------------------------------------------------------------------------


class Collection:
    """One collection: its definition as created, its payload indexes, and its engine shard."""

    def __init__(self, folder: str, definition: dict, payload_schema: dict, shard: edge.EdgeShard) -> None:
        self.folder = folder
        self.definition = definition
        self.payload_schema = payload_schema
        self.shard = shard
        self.lock = threading.Lock()
        self.operations = 0
        self.last_write = 0.0  # time.monotonic() of the last write not yet optimised, 0 when none

    @property
    def create_request(self) -> models.CreateCollection:
        return models.CreateCollection.model_validate(self.definition)

    @property
    def vector_params(self) -> models.VectorParams:
        vectors = self.create_request.vectors
        if not isinstance(vectors, models.VectorParams):
            raise Problem(400, "the test double keeps one unnamed dense vector per point")
        return vectors

    @staticmethod
    def engine_config(request: models.CreateCollection) -> edge.EdgeConfig:
        vectors = request.vectors
        if not isinstance(vectors, models.VectorParams):
            raise Problem(400, "the test double implements one unnamed dense vector per point")
        hnsw = request.hnsw_config
        quantization = None
        if isinstance(request.quantization_config, models.ScalarQuantization):
            scalar = request.quantization_config.scalar
            quantization = edge.ScalarQuantizationConfig(
                type=edge.ScalarType.Int8, quantile=scalar.quantile, always_ram=scalar.always_ram)
        elif request.quantization_config is not None:
            raise Problem(400, "the test double implements scalar quantization only")
        return edge.EdgeConfig(
            vectors=edge.EdgeVectorParams(size=vectors.size, distance=DISTANCES[vectors.distance],
                                          on_disk=vectors.on_disk),
            on_disk_payload=request.on_disk_payload,
            hnsw_config=None if hnsw is None else edge.HnswIndexConfig(
                m=hnsw.m if hnsw.m is not None else 16,
                ef_construct=hnsw.ef_construct if hnsw.ef_construct is not None else 100,
                full_scan_threshold=hnsw.full_scan_threshold if hnsw.full_scan_threshold is not None else 10_000,
                payload_m=hnsw.payload_m, on_disk=hnsw.on_disk),
            quantization_config=quantization,
        )

    def save(self) -> None:
        path = os.path.join(self.folder, "collection.json")
        with open(path + ".tmp", "w") as file:
            json.dump({"definition": self.definition, "payload_schema": self.payload_schema}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(path + ".tmp", path)

    def info(self) -> models.CollectionInfo:
        request = self.create_request
        vectors = self.vector_params
        shard_info = self.shard.info()
        hnsw = request.hnsw_config or models.HnswConfigDiff()
        counts = {key: info.points for key, info in shard_info.payload_schema.items()}
        return models.CollectionInfo(
            status=models.CollectionStatus.YELLOW if self.last_write else models.CollectionStatus.GREEN,
            optimizer_status=models.OptimizersStatusOneOf.OK,
            points_count=shard_info.points_count,
            indexed_vectors_count=shard_info.indexed_vectors_count,
            segments_count=shard_info.segments_count,
            config=models.CollectionConfig(
                params=models.CollectionParams(
                    vectors=vectors,
                    shard_number=request.shard_number or 1,
                    replication_factor=request.replication_factor or 1,
                    write_consistency_factor=request.write_consistency_factor or 1,
                    on_disk_payload=request.on_disk_payload if request.on_disk_payload is not None else True,
                ),
                hnsw_config=models.HnswConfig(
                    m=hnsw.m or 16, ef_construct=hnsw.ef_construct or 100,
                    full_scan_threshold=hnsw.full_scan_threshold or 10_000, on_disk=hnsw.on_disk,
                    payload_m=hnsw.payload_m),
                optimizer_config=models.OptimizersConfig(default_segment_number=0, flush_interval_sec=5),
                quantization_config=request.quantization_config,
            ),
            payload_schema={
                key: models.PayloadIndexInfo.model_validate({**schema, "points": counts.get(key, 0)})
                for key, schema in self.payload_schema.items()
            },
        )


class Storage:
    """Every collection under DATA_DIR/collections, loaded at start; snapshots under
    DATA_DIR/snapshots/<collection>/ (Qdrant's `snapshots_path`)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.join(root, "collections")
        self.snapshots = os.path.join(root, "snapshots")
        os.makedirs(self.root, exist_ok=True)
        self.lock = threading.Lock()
        self.collections: dict[str, Collection] = {}
        for name in sorted(os.listdir(self.root)):
            folder = os.path.join(self.root, name)
            saved_path = os.path.join(folder, "collection.json")
            if not os.path.exists(saved_path):
                shutil.rmtree(folder)  # a creation that did not finish
                continue
            with open(saved_path) as file:
                saved = json.load(file)
            shard = edge.EdgeShard.load(os.path.join(folder, "shard"))
            self.collections[name] = Collection(folder, saved["definition"], saved["payload_schema"], shard)

    def get(self, name: str) -> Collection:
        with self.lock:
            collection = self.collections.get(name)
        if collection is None:
            raise Problem(404, f"Not found: Collection `{name}` doesn't exist!")
        return collection

    def create(self, name: str, request: models.CreateCollection) -> None:
        if not COLLECTION_NAME.match(name):
            raise Problem(422, f"Validation error in path parameters: [name: invalid collection name `{name}`]")
        config = Collection.engine_config(request)
        with self.lock:
            if name in self.collections:
                raise Problem(409, f"Wrong input: Collection `{name}` already exists!")
            folder = os.path.join(self.root, name)
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder)
            shard = edge.EdgeShard.create(os.path.join(folder, "shard"), config)
            collection = Collection(folder, request.model_dump(mode="json", exclude_none=True), {}, shard)
            collection.save()
            self.collections[name] = collection

    def delete(self, name: str) -> bool:
        with self.lock:
            collection = self.collections.pop(name, None)
        if collection is None:
            return False
        with collection.lock:
            collection.shard.close()
            shutil.rmtree(collection.folder, ignore_errors=True)
        return True

    # Snapshots: a tar archive of the collection's folder (its definition and its engine shard,
    # flushed), as Qdrant's are tar archives of a collection's storage.

    def snapshot_folder(self, name: str) -> str:
        return os.path.join(self.snapshots, name)

    @staticmethod
    def describe(path: str) -> dict:
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        created = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
        return {"name": os.path.basename(path), "creation_time": created.strftime("%Y-%m-%dT%H:%M:%S"),
                "size": os.path.getsize(path), "checksum": digest.hexdigest()}

    def create_snapshot(self, name: str) -> dict:
        collection = self.get(name)
        folder = self.snapshot_folder(name)
        os.makedirs(folder, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")
        path = os.path.join(folder, f"{name}-{secrets.randbits(48)}-{stamp}.snapshot")
        with collection.lock:
            collection.shard.flush()
            with tarfile.open(path + ".tmp", "w") as archive:
                archive.add(collection.folder, arcname=".")
        os.replace(path + ".tmp", path)
        return self.describe(path)

    def list_snapshots(self, name: str) -> list:
        self.get(name)
        folder = self.snapshot_folder(name)
        names = sorted(entry for entry in os.listdir(folder) if entry.endswith(".snapshot")) \
            if os.path.isdir(folder) else []
        return [self.describe(os.path.join(folder, entry)) for entry in names]

    def delete_snapshot(self, name: str, snapshot: str) -> bool:
        self.get(name)
        path = os.path.join(self.snapshot_folder(name), snapshot)
        if os.path.basename(snapshot) != snapshot or not os.path.isfile(path):
            raise Problem(404, f"Not found: Snapshot {snapshot} not found")
        os.remove(path)
        return True

    def recover(self, name: str, location: str) -> bool:
        """Replaces (or creates) the collection with a snapshot's contents: `file://` locations only."""
        if not COLLECTION_NAME.match(name):
            raise Problem(422, f"Validation error in path parameters: [name: invalid collection name `{name}`]")
        url = urlsplit(location)
        if url.scheme != "file" or not os.path.isfile(unquote(url.path)):
            raise Problem(400, f"Bad request: the test double recovers from file:// snapshots it can read, not {location}")
        staging = os.path.join(self.root, f".recover-{name}-{secrets.randbits(32)}")
        os.makedirs(staging)
        with tarfile.open(unquote(url.path)) as archive:
            archive.extractall(staging, filter="data")
        with open(os.path.join(staging, "collection.json")) as file:
            saved = json.load(file)
        self.delete(name)
        folder = os.path.join(self.root, name)
        with self.lock:
            os.replace(staging, folder)
            shard = edge.EdgeShard.load(os.path.join(folder, "shard"))
            self.collections[name] = Collection(folder, saved["definition"], saved["payload_schema"], shard)
        return True

    def close(self) -> None:
        with self.lock:
            for collection in self.collections.values():
                with collection.lock:
                    collection.shard.flush()
                    collection.shard.close()
            self.collections.clear()


# ---------------------------------------------------------------------------------------------
# The REST endpoints
# ---------------------------------------------------------------------------------------------


ENGINE_TIME = threading.local()


def engine(collection: Collection, work: Callable[[edge.EdgeShard], Any], writes: bool = False) -> Any:
    """Runs one engine call under the collection's lock, adding its duration to this request's
    engine time."""
    with collection.lock:
        started = time.perf_counter()
        try:
            return work(collection.shard)
        finally:
            ENGINE_TIME.seconds = getattr(ENGINE_TIME, "seconds", 0.0) + time.perf_counter() - started
            if writes:
                collection.last_write = time.monotonic()


def optimise_when_idle(storage: Storage) -> None:
    """Builds the HNSW index of collections whose writes paused for a second (``--approximate``)."""
    while True:
        time.sleep(0.25)
        with storage.lock:
            collections = list(storage.collections.values())
        for collection in collections:
            if collection.last_write and time.monotonic() - collection.last_write > 1.0:
                with collection.lock:
                    collection.shard.optimize()
                    collection.last_write = 0.0


class Endpoints:
    def __init__(self, storage: Storage, exact: bool) -> None:
        self.storage = storage
        self.exact = exact
        self.routes: list[tuple[str, re.Pattern, Callable[..., Any]]] = [
            ("GET", re.compile(r"^/$"), self.root),
            ("GET", re.compile(r"^/(healthz|livez|readyz)$"), self.health),
            ("GET", re.compile(r"^/collections$"), self.list_collections),
            ("GET", re.compile(r"^/collections/([^/]+)$"), self.get_collection),
            ("PUT", re.compile(r"^/collections/([^/]+)$"), self.create_collection),
            ("DELETE", re.compile(r"^/collections/([^/]+)$"), self.delete_collection),
            ("PUT", re.compile(r"^/collections/([^/]+)/index$"), self.create_index),
            ("PUT", re.compile(r"^/collections/([^/]+)/points$"), self.upsert),
            ("POST", re.compile(r"^/collections/([^/]+)/points$"), self.retrieve),
            ("POST", re.compile(r"^/collections/([^/]+)/points/query$"), self.query),
            ("POST", re.compile(r"^/collections/([^/]+)/points/count$"), self.count),
            ("POST", re.compile(r"^/collections/([^/]+)/points/delete$"), self.delete_points),
            ("POST", re.compile(r"^/collections/([^/]+)/points/payload$"), self.set_payload),
            ("POST", re.compile(r"^/collections/([^/]+)/snapshots$"), self.create_snapshot),
            ("GET", re.compile(r"^/collections/([^/]+)/snapshots$"), self.list_snapshots),
            ("DELETE", re.compile(r"^/collections/([^/]+)/snapshots/([^/]+)$"), self.delete_snapshot),
            ("PUT", re.compile(r"^/collections/([^/]+)/snapshots/recover$"), self.recover_snapshot),
        ]

    def route(self, method: str, path: str) -> tuple[Callable[..., Any], tuple]:
        allowed = False
        for verb, pattern, handler in self.routes:
            match = pattern.match(path)
            if match:
                if verb == method:
                    return handler, match.groups()
                allowed = True
        if allowed:
            raise Problem(405, f"Method {method} is not allowed on {path}")
        raise Problem(404, f"Not found: {path} is not an endpoint of the test double")

    # Service

    def root(self, body: Any, query: dict) -> Any:
        return {"title": "qdrant - vector search engine", "version": VERSION}

    def health(self, kind: str, body: Any, query: dict) -> Any:
        return f"{kind} check passed"

    # Collections

    def list_collections(self, body: Any, query: dict) -> Any:
        with self.storage.lock:
            names = sorted(self.storage.collections)
        return dump(models.CollectionsResponse(
            collections=[models.CollectionDescription(name=name) for name in names]))

    def get_collection(self, name: str, body: Any, query: dict) -> Any:
        collection = self.storage.get(name)
        with collection.lock:
            return dump(collection.info())

    def create_collection(self, name: str, body: Any, query: dict) -> Any:
        self.storage.create(name, parse(models.CreateCollection, body or {}))
        return True

    def delete_collection(self, name: str, body: Any, query: dict) -> Any:
        return self.storage.delete(name)

    def create_index(self, name: str, body: Any, query: dict) -> Any:
        request = parse(models.CreateFieldIndex, body)
        schema = request.field_schema
        if schema is None:
            raise Problem(400, "Wrong input: field_schema is required")
        if isinstance(schema, str) or isinstance(schema, models.PayloadSchemaType):
            kind = models.PayloadSchemaType(schema).value
            engine_schema: Any = SCHEMA_TYPES[kind]
            saved = {"data_type": kind}
        else:
            kind = schema.type.value
            params = {key: value for key, value in schema.model_dump(mode="json", exclude_none=True).items()
                      if key != "type"}
            engine_params = {
                "keyword": edge.KeywordIndexParams, "integer": edge.IntegerIndexParams,
                "datetime": edge.DatetimeIndexParams, "uuid": edge.UuidIndexParams,
            }.get(kind)
            if engine_params is None:
                raise Problem(400, f"the test double does not implement {kind} index parameters")
            engine_schema = engine_params(**params)
            saved = {"data_type": kind, "params": {"type": kind, **params}}
        collection = self.storage.get(name)
        engine(collection, lambda shard: shard.update(
            edge.UpdateOperation.create_field_index(request.field_name, engine_schema)), writes=True)
        with collection.lock:
            collection.payload_schema[request.field_name] = saved
            collection.save()
            return self.completed(collection)

    # Snapshots

    def create_snapshot(self, name: str, body: Any, query: dict) -> Any:
        return self.storage.create_snapshot(name)

    def list_snapshots(self, name: str, body: Any, query: dict) -> Any:
        return self.storage.list_snapshots(name)

    def delete_snapshot(self, name: str, snapshot: str, body: Any, query: dict) -> Any:
        return self.storage.delete_snapshot(name, unquote(snapshot))

    def recover_snapshot(self, name: str, body: Any, query: dict) -> Any:
        location = (body or {}).get("location")
        if not isinstance(location, str):
            raise Problem(400, "Format error in JSON body: location is required")
        return self.storage.recover(name, location)

    # Points

    def completed(self, collection: Collection) -> Any:
        collection.operations += 1
        return dump(models.UpdateResult(operation_id=collection.operations,
                                        status=models.UpdateStatus.COMPLETED))

    def upsert(self, name: str, body: Any, query: dict) -> Any:
        request = parse(models.PointInsertOperations, body)
        collection = self.storage.get(name)
        size = collection.vector_params.size
        if isinstance(request, models.PointsList):
            points = [(p.id, p.vector, p.payload) for p in request.points]
        else:
            batch = request.batch
            payloads = batch.payloads or [None] * len(batch.ids)
            points = list(zip(batch.ids, batch.vectors, payloads))
        engine_points = []
        for identifier, vector, payload in points:
            if not isinstance(vector, list) or not all(isinstance(x, (int, float)) for x in vector):
                raise Problem(400, "the test double keeps one unnamed dense vector per point")
            if len(vector) != size:
                raise Problem(400, f"Wrong input: Vector dimension error: expected dim: {size}, got {len(vector)}")
            engine_points.append(edge.Point(point_id(identifier), [float(x) for x in vector], payload or {}))
        engine(collection, lambda shard: shard.update(edge.UpdateOperation.upsert_points(engine_points)), writes=True)
        with collection.lock:
            return self.completed(collection)

    def retrieve(self, name: str, body: Any, query: dict) -> Any:
        request = parse(models.PointRequest, body)
        collection = self.storage.get(name)
        records = engine(collection, lambda shard: shard.retrieve(
            [point_id(value) for value in request.ids],
            with_payload=with_payload_flag(request.with_payload if request.with_payload is not None else True),
            with_vector=with_vector_flag(request.with_vector)))
        return dump([models.Record(id=point_id(r.id), payload=r.payload, vector=r.vector) for r in records])

    def query(self, name: str, body: Any, query: dict) -> Any:
        request = parse(models.QueryRequest, body)
        if request.prefetch or request.using or request.lookup_from:
            raise Problem(400, "the test double does not implement prefetch, using or lookup_from")
        if isinstance(request.query, models.NearestQuery):
            vector = request.query.nearest
        else:
            vector = request.query
        if not isinstance(vector, list):
            raise Problem(400, "the test double implements nearest-vector queries only")
        collection = self.storage.get(name)
        size = collection.vector_params.size
        if len(vector) != size:
            raise Problem(400, f"Wrong input: Vector dimension error: expected dim: {size}, got {len(vector)}")
        params = request.params or models.SearchParams()
        engine_request = edge.QueryRequest(
            limit=request.limit if request.limit is not None else 10,
            offset=request.offset or 0,
            query=edge.Query.Nearest([float(x) for x in vector]),
            filter=engine_filter(request.filter),
            score_threshold=request.score_threshold,
            with_payload=with_payload_flag(request.with_payload),
            with_vector=with_vector_flag(request.with_vector),
            params=edge.SearchParams(
                hnsw_ef=params.hnsw_ef, exact=True if self.exact else bool(params.exact),
                quantization=None if params.quantization is None else edge.QuantizationSearchParams(
                    ignore=bool(params.quantization.ignore), rescore=params.quantization.rescore,
                    oversampling=params.quantization.oversampling)),
        )
        points = engine(collection, lambda shard: shard.query(engine_request))
        return dump(models.QueryResponse(points=[
            models.ScoredPoint(id=point_id(p.id), version=p.version, score=p.score, payload=p.payload,
                               vector=p.vector)
            for p in points
        ]))

    def count(self, name: str, body: Any, query: dict) -> Any:
        request = parse(models.CountRequest, body or {})
        collection = self.storage.get(name)
        exact = request.exact if request.exact is not None else True
        count_request = edge.CountRequest(exact=exact, filter=engine_filter(request.filter))
        count = engine(collection, lambda shard: shard.count(count_request))
        return dump(models.CountResult(count=count))

    def delete_points(self, name: str, body: Any, query: dict) -> Any:
        request = parse(models.PointsSelector, body)
        collection = self.storage.get(name)
        if isinstance(request, models.PointIdsList):
            operation = edge.UpdateOperation.delete_points([point_id(value) for value in request.points])
        else:
            operation = edge.UpdateOperation.delete_points_by_filter(engine_filter(request.filter))
        engine(collection, lambda shard: shard.update(operation), writes=True)
        with collection.lock:
            return self.completed(collection)

    def set_payload(self, name: str, body: Any, query: dict) -> Any:
        request = parse(models.SetPayload, body)
        if request.key is not None:
            raise Problem(400, "the test double does not implement key")
        if (request.points is None) == (request.filter is None):
            raise Problem(400, "Wrong input: Either `points` or `filter` is required")
        collection = self.storage.get(name)
        if request.points is not None:
            operation = edge.UpdateOperation.set_payload([point_id(v) for v in request.points], request.payload)
        else:
            operation = edge.UpdateOperation.set_payload_by_filter(engine_filter(request.filter), request.payload)
        engine(collection, lambda shard: shard.update(operation), writes=True)
        with collection.lock:
            return self.completed(collection)


def make_handler(endpoints: Endpoints, api_key: str | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, Nagle's algorithm and the client's
        # delayed acknowledgement hold every answer back by about 40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            if os.environ.get("QDRANT_TEST_DOUBLE_LOG"):
                super().log_message(format, *args)

        def answer(self, status: int, envelope: dict) -> None:
            data = json.dumps(envelope).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Engine-Seconds", f"{getattr(ENGINE_TIME, 'seconds', 0.0):.6f}")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self) -> None:
            started = time.perf_counter()
            ENGINE_TIME.seconds = 0.0
            try:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if api_key is not None:
                    bearer = self.headers.get("Authorization", "")
                    if self.headers.get("api-key") != api_key and bearer != f"Bearer {api_key}":
                        raise Problem(401, "Must provide an API key or an Authorization bearer token")
                url = urlsplit(self.path)
                query = {key: values[-1] for key, values in parse_qs(url.query).items()}
                handler, arguments = endpoints.route(self.command, url.path)
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError as error:
                    raise Problem(400, f"Format error in JSON body: {error}") from None
                result = handler(*arguments, body, query)
                self.answer(200, {"result": result, "status": "ok", "time": time.perf_counter() - started})
            except Problem as problem:
                self.answer(problem.status, {"status": {"error": problem.message},
                                             "time": time.perf_counter() - started})
            except Exception as error:  # the engine's own errors, as Qdrant reports them
                self.answer(500, {"status": {"error": f"Service internal error: {error}"},
                                  "time": time.perf_counter() - started})

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = handle_any

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A Qdrant REST test double on Qdrant's engine.")
    parser.add_argument("port", type=int)
    parser.add_argument("data_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default=os.environ.get("QDRANT__SERVICE__API_KEY"))
    parser.add_argument("--approximate", action="store_true",
                        help="search with the engine's HNSW index as Qdrant does, instead of exactly")
    arguments = parser.parse_args()

    storage = Storage(arguments.data_dir)
    endpoints = Endpoints(storage, exact=not arguments.approximate)
    server = ThreadingHTTPServer((arguments.host, arguments.port), make_handler(endpoints, arguments.api_key))
    server.daemon_threads = True
    if arguments.approximate:
        threading.Thread(target=optimise_when_idle, args=(storage,), daemon=True).start()

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"qdrant-test-double listening on http://{arguments.host}:{server.server_address[1]} "
          f"(data in {arguments.data_dir}, {'approximate' if arguments.approximate else 'exact'} search)",
          flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        storage.close()


if __name__ == "__main__":
    sys.exit(main())
