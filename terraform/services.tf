# The six functions, each its own Cloud Run service, reached from the internet only through the
# load balancer (ingress: internal and Cloud Load Balancing; Pub/Sub and Cloud Scheduler in the
# project count as internal).

locals {
  # Every function: production mode, Firestore metadata, events through Pub/Sub, deliveries and
  # the scheduler's relay call authenticated by OIDC tokens of the pusher for push_audience.
  common_env = merge({
    ENVIRONMENT                 = "production"
    LOG_LEVEL                   = var.log_level
    GOOGLE_CLOUD_PROJECT        = var.project_id
    METADATA_BACKEND            = "firestore"
    FIRESTORE_DATABASE_NAME     = google_firestore_database.metadata.name
    EVENTS_BACKEND              = "pubsub"
    PUBSUB_TOPIC                = google_pubsub_topic.uploads.name
    PUBSUB_DEAD_LETTER_TOPIC    = google_pubsub_topic.dead_letter.name
    PUBSUB_PUSH_AUDIENCE        = local.push_audience
    PUBSUB_PUSH_SERVICE_ACCOUNT = google_service_account.pusher.email
    # Callers come through the external Application Load Balancer, which appends the client and
    # then itself to X-Forwarded-For: the client is the second-to-last entry.
    TRUSTED_PROXIES = "2"
    }, length(var.cors_origins) > 0 ? {
    CORS_ORIGINS = jsonencode(var.cors_origins)
  } : {})

  # The functions that store, embed and search images: bytes in the bucket, vectors on Qdrant,
  # the embedding provider.
  image_env = merge({
    BLOB_BACKEND              = "gcs"
    GCS_BUCKET_NAME           = google_storage_bucket.images.name
    VECTOR_BACKEND            = "qdrant"
    QDRANT_HOST               = local.qdrant_host
    QDRANT_PORT               = "6333"
    QDRANT_SHARDS             = tostring(var.qdrant_shards)
    QDRANT_REPLICATION_FACTOR = tostring(var.qdrant_replication_factor)
    EMBEDDING_PROVIDER        = var.embedding_provider
    PROCESSING_MAX_ATTEMPTS   = tostring(var.processing_max_attempts)
    }, var.embedding_provider == "vertex" ? {
    VERTEX_LOCATION            = var.region
    VERTEX_EMBEDDING_DIMENSION = tostring(var.vertex_embedding_dimension)
    } : {}, var.embedding_provider == "clip" && var.clip_model_bucket != "" ? {
    CLIP_MODEL_DIR = "${local.clip_model_mount}/clip-vit-base-patch32"
  } : {})

  # Secrets mounted as environment variables (their latest version), by secret.
  common_secrets = merge({
    API_KEY_SECRET = "api_key_secret"
    }, var.mount_bootstrap_admin_key ? {
    BOOTSTRAP_ADMIN_KEY = "bootstrap_admin_key"
    } : {}, var.rotating_api_key_secret ? {
    API_KEY_PREVIOUS_SECRET = "api_key_secret_prev"
  } : {})
  image_secrets = {
    QDRANT_API_KEY = "qdrant_api_key"
  }

  function_env     = { for name in local.function_names : name => merge(local.common_env, contains(local.image_functions, name) ? local.image_env : {}) }
  function_secrets = { for name in local.function_names : name => merge(local.common_secrets, contains(local.image_functions, name) ? local.image_secrets : {}) }
}

resource "google_cloud_run_v2_service" "functions" {
  for_each            = toset(local.function_names)
  name                = "${var.name_prefix}-${each.key}"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
  deletion_protection = var.deletion_protection
  # The API is public and authenticates its own keys; the run.app URLs are not reachable from the
  # internet (ingress above), only through the load balancer. So Cloud Run checks no invoker role
  # (no allUsers binding, which organisations enforcing iam.allowedPolicyMemberDomains refuse):
  # the OIDC tokens of Pub/Sub's push and of the scheduler, which carry this audience, are checked
  # by the function itself (PUBSUB_PUSH_AUDIENCE and PUBSUB_PUSH_SERVICE_ACCOUNT).
  invoker_iam_disabled = true
  custom_audiences     = [local.push_audience]

  template {
    service_account = google_service_account.functions[each.key].email
    # The second generation: Cloud Storage volumes (the CLIP model) need it.
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"
    max_instance_request_concurrency = var.functions[each.key].concurrency
    timeout                          = "300s"
    scaling {
      min_instance_count = var.functions[each.key].min_instances
      max_instance_count = var.functions[each.key].max_instances
    }
    # The image functions reach Qdrant's private address through the VPC.
    dynamic "vpc_access" {
      for_each = contains(local.image_functions, each.key) ? [1] : []
      content {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = google_compute_network.vpc.id
          subnetwork = google_compute_subnetwork.functions.id
          tags       = ["${var.name_prefix}-functions"]
        }
      }
    }
    containers {
      image = "${local.registry}/${each.key}:${var.image_tag}"
      ports {
        container_port = 8080
      }
      resources {
        limits = {
          cpu    = var.functions[each.key].cpu
          memory = var.functions[each.key].memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }
      dynamic "env" {
        for_each = local.function_env[each.key]
        content {
          name  = env.key
          value = env.value
        }
      }
      dynamic "env" {
        for_each = local.function_secrets[each.key]
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.secrets[env.value].secret_id
              version = "latest"
            }
          }
        }
      }
      # A process listens once it is ready (the image functions load and warm the embedding model
      # first, from a Cloud Storage volume when mounted): up to Cloud Run's limit of 240 s.
      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 1
        failure_threshold = 240
      }
      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds = 30
      }
      dynamic "volume_mounts" {
        for_each = contains(local.image_functions, each.key) && var.clip_model_bucket != "" ? [1] : []
        content {
          name       = "clip-model"
          mount_path = local.clip_model_mount
        }
      }
    }
    dynamic "volumes" {
      for_each = contains(local.image_functions, each.key) && var.clip_model_bucket != "" ? [1] : []
      content {
        name = "clip-model"
        gcs {
          bucket    = var.clip_model_bucket
          read_only = true
        }
      }
    }
  }

  depends_on = [time_sleep.grants_visible]
}
