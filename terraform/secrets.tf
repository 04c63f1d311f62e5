# The secrets' containers. Their values never pass through terraform (nor its state):
# deployment/deploy.sh adds a first version of each, generated on the operator's machine, before
# the services that read them are created. Rotating API_KEY_SECRET: README.md, "Rotating
# API_KEY_SECRET".

locals {
  secrets = {
    api_key_secret      = "API_KEY_SECRET"
    api_key_secret_prev = "API_KEY_PREVIOUS_SECRET"
    bootstrap_admin_key = "BOOTSTRAP_ADMIN_KEY"
    qdrant_api_key      = "QDRANT_API_KEY"
  }
}

resource "google_secret_manager_secret" "secrets" {
  for_each  = local.secrets
  secret_id = "${var.name_prefix}-${replace(lower(each.value), "_", "-")}"
  labels    = { variable = lower(each.value) }
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}
