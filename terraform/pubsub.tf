# Processing events: the outbox relay publishes each upload's event to the topic; the push
# subscription delivers it to ProcessEmbedding with an OIDC token; what ProcessEmbedding gives up
# on (and, as a backstop, what Pub/Sub cannot deliver) lands on the dead-letter topic, whose
# subscription keeps it for inspection.

resource "google_pubsub_topic" "uploads" {
  #checkov:skip=CKV_GCP_83:Messages carry ids only (image id, reason, event id), no image data or personal data; encrypted at rest with Google-managed keys.
  name                       = local.topic
  message_retention_duration = "604800s"
  depends_on                 = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Messages carry ids only (image id, reason, event id), no image data or personal data; encrypted at rest with Google-managed keys.
  name                       = local.dead_letter
  message_retention_duration = "2678400s"
  depends_on                 = [google_project_service.apis]
}

resource "google_pubsub_subscription" "process_embedding" {
  name                    = "${local.topic}-process-embedding"
  topic                   = google_pubsub_topic.uploads.id
  ack_deadline_seconds    = 120
  enable_message_ordering = true
  push_config {
    push_endpoint = "${google_cloud_run_v2_service.functions["process-embedding"].uri}/"
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = local.push_audience
    }
  }
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = 5
  }
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "dead_letter_hold" {
  name                       = "${local.dead_letter}-hold"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = "604800s"
  retain_acked_messages      = true
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}
