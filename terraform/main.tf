# The Image Management API on Google Cloud: one Cloud Run service per function behind an HTTPS
# load balancer, Firestore for metadata, Cloud Storage for image bytes, Pub/Sub for processing
# events, Qdrant on Compute Engine for vectors. README.md, "Deploying to Google Cloud", says how to
# apply it (deployment/deploy.sh) and what it costs.

data "google_project" "this" {}

locals {
  # Every function: its image in Artifact Registry and whether it embeds (reads blobs, vectors and
  # the embedding model).
  function_names  = ["manage-teams", "manage-users", "api-keys", "upload-image", "process-embedding", "search"]
  image_functions = ["upload-image", "process-embedding", "search"]

  registry = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"

  topic            = "${var.name_prefix}-image-uploads"
  dead_letter      = "${var.name_prefix}-image-uploads-dead-letter"
  push_audience    = "${var.name_prefix}-events"
  relay_path       = "/internal/outbox/relay"
  clip_model_mount = "/mnt/clip-model"
}

resource "google_project_service" "apis" {
  for_each = toset([
    "run.googleapis.com",
    "compute.googleapis.com",
    "firestore.googleapis.com",
    "pubsub.googleapis.com",
    "cloudscheduler.googleapis.com",
    "secretmanager.googleapis.com",
    "artifactregistry.googleapis.com",
    "aiplatform.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "storage.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Images hold no data, only the project's open code; encrypted at rest with Google-managed keys. A customer-managed key (Cloud KMS) is the operator's choice and cost.
  repository_id = var.name_prefix
  location      = var.region
  format        = "DOCKER"
  description   = "The functions' container images, tagged by commit (deployment/deploy.sh --build)."
  # Keeps the last 10 versions of each image, so that a rollback to a recent revision finds its image.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }
  depends_on = [google_project_service.apis]
}
