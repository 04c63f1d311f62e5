# Every minute, Cloud Scheduler asks UploadImage's outbox relay to publish what an upload could
# not (Pub/Sub unreachable, the instance stopped first): an instance's CPU is throttled between
# requests, so the relay beside the server cannot be counted on.

resource "google_cloud_scheduler_job" "outbox_relay" {
  name             = "${var.name_prefix}-outbox-relay"
  region           = var.region
  schedule         = "* * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "60s"
  retry_config {
    retry_count = 0
  }
  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.functions["upload-image"].uri}${local.relay_path}"
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = local.push_audience
    }
  }
  depends_on = [google_project_service.apis]
}
