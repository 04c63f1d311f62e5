# One service account per function, with only the roles that function needs; one for Pub/Sub's
# and Cloud Scheduler's OIDC tokens; one for the Qdrant VMs.

resource "google_service_account" "functions" {
  for_each     = toset(local.function_names)
  account_id   = "${var.name_prefix}-${each.key}"
  display_name = "Image API ${each.key}"
  depends_on   = [google_project_service.apis]
  lifecycle {
    precondition {
      condition     = length("${var.name_prefix}-${each.key}") <= 30
      error_message = "Service account id ${var.name_prefix}-${each.key} is over 30 characters: shorten name_prefix."
    }
  }
}

resource "google_service_account" "pusher" {
  account_id   = "${var.name_prefix}-pusher"
  display_name = "Image API: Pub/Sub push and Cloud Scheduler tokens"
  depends_on   = [google_project_service.apis]
  lifecycle {
    precondition {
      condition     = length("${var.name_prefix}-pusher") <= 30
      error_message = "Service account id ${var.name_prefix}-pusher is over 30 characters: shorten name_prefix."
    }
  }
}

resource "google_service_account" "qdrant" {
  account_id   = "${var.name_prefix}-qdrant"
  display_name = "Image API: Qdrant VMs"
  depends_on   = [google_project_service.apis]
  lifecycle {
    precondition {
      condition     = length("${var.name_prefix}-qdrant") <= 30
      error_message = "Service account id ${var.name_prefix}-qdrant is over 30 characters: shorten name_prefix."
    }
  }
}

locals {
  # Project-level roles per function. Firestore has no finer grant than the database's project;
  # Vertex AI's predict needs aiplatform.user where the provider is vertex, for the functions that
  # embed (ProcessEmbedding images, Search query texts; UploadImage embeds nothing).
  project_roles = merge(
    { for name in local.function_names : "${name}/datastore" => { function = name, role = "roles/datastore.user" } },
    var.embedding_provider == "vertex" ? {
      for name in ["process-embedding", "search"] : "${name}/aiplatform" => { function = name, role = "roles/aiplatform.user" }
    } : {},
  )
}

resource "google_project_iam_member" "functions" {
  for_each = local.project_roles
  project  = var.project_id
  role     = each.value.role
  member   = google_service_account.functions[each.value.function].member
}

# Every function runs the outbox relay (EVENTS_BACKEND=pubsub), which publishes to the topic.
resource "google_pubsub_topic_iam_member" "relay_publishes" {
  for_each = toset(local.function_names)
  topic    = google_pubsub_topic.uploads.id
  role     = "roles/pubsub.publisher"
  member   = google_service_account.functions[each.key].member
}

# ProcessEmbedding publishes what it gives up on to the dead-letter topic itself.
resource "google_pubsub_topic_iam_member" "process_embedding_dead_letters" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = google_service_account.functions["process-embedding"].member
}

# Image bytes: UploadImage writes, reads and deletes originals and thumbnails; ProcessEmbedding
# reads originals and writes (or, for an image deleted meanwhile, deletes) thumbnails. Search
# reads none (it ranks stored vectors).
resource "google_storage_bucket_iam_member" "image_objects" {
  for_each = toset(["upload-image", "process-embedding"])
  bucket   = google_storage_bucket.images.name
  role     = "roles/storage.objectUser"
  member   = google_service_account.functions[each.key].member
}

# Signed download URLs on Cloud Run are signed by IAM's signBlob as UploadImage's own account.
resource "google_service_account_iam_member" "upload_image_signs" {
  service_account_id = google_service_account.functions["upload-image"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.functions["upload-image"].member
}

# The CLIP model, when it is mounted from a bucket.
resource "google_storage_bucket_iam_member" "clip_model_readers" {
  for_each = var.clip_model_bucket == "" ? toset([]) : toset(local.image_functions)
  bucket   = var.clip_model_bucket
  role     = "roles/storage.objectViewer"
  member   = google_service_account.functions[each.key].member
}

# Secrets: each function reads the key secrets (every function authenticates keys and registers
# the bootstrap key); the image functions also Qdrant's key. The Qdrant VMs read Qdrant's key.
locals {
  secret_readers = merge(
    { for pair in setproduct(local.function_names, ["api_key_secret", "api_key_secret_prev", "bootstrap_admin_key"]) :
    "${pair[0]}/${pair[1]}" => { function = pair[0], secret = pair[1] } },
    { for name in local.image_functions : "${name}/qdrant_api_key" => { function = name, secret = "qdrant_api_key" } },
  )
}

resource "google_secret_manager_secret_iam_member" "functions" {
  for_each  = local.secret_readers
  secret_id = google_secret_manager_secret.secrets[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.functions[each.value.function].member
}

resource "google_secret_manager_secret_iam_member" "qdrant_reads_its_key" {
  secret_id = google_secret_manager_secret.secrets["qdrant_api_key"].id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.qdrant.member
}

# The pusher's tokens call ProcessEmbedding (pushes) and UploadImage (the scheduler's relay call).
resource "google_cloud_run_v2_service_iam_member" "pusher_invokes" {
  for_each = toset(["process-embedding", "upload-image"])
  name     = google_cloud_run_v2_service.functions[each.key].name
  location = var.region
  role     = "roles/run.invoker"
  member   = google_service_account.pusher.member
}

# Pub/Sub's service agent mints the push subscription's OIDC tokens as the pusher, and moves
# messages to the dead-letter topic.
locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_service_account_iam_member" "pubsub_agent_mints_tokens" {
  service_account_id = google_service_account.pusher.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "pubsub_agent_dead_letters" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_acknowledges" {
  subscription = google_pubsub_subscription.process_embedding.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Qdrant VMs: write snapshots. `gcloud storage cp` lists the destination (objects.list, in
# objectViewer) before it creates the object (objectCreator); neither deletes (the bucket's
# lifecycle does). No log or metric writer: no agent on the VMs would use them.
resource "google_storage_bucket_iam_member" "qdrant_snapshots" {
  for_each = toset(["roles/storage.objectCreator", "roles/storage.objectViewer"])
  bucket   = google_storage_bucket.snapshots.name
  role     = each.value
  member   = google_service_account.qdrant.member
}

# IAM changes take a minute or two to be seen everywhere: the services, which read their secrets,
# the database, the bucket and the topic as they start, are created after every grant and a wait.
resource "time_sleep" "grants_visible" {
  create_duration = "90s"
  depends_on = [
    google_secret_manager_secret_iam_member.functions,
    google_project_iam_member.functions,
    google_storage_bucket_iam_member.clip_model_readers,
    google_storage_bucket_iam_member.image_objects,
    google_pubsub_topic_iam_member.relay_publishes,
    google_pubsub_topic_iam_member.process_embedding_dead_letters,
    google_service_account_iam_member.upload_image_signs,
  ]
}
