# The external HTTPS load balancer: one address, a Google-managed certificate for var.domain, and
# the URL map that sends each path prefix to its function (the same map as the local router's,
# ServiceURLMap.production); plain HTTP is redirected to HTTPS.

locals {
  # Path prefix → function. terraform/tests check it against every route of /openapi.json.
  routes = {
    "/api/v1/teams"              = "manage-teams"
    "/api/v1/users"              = "manage-users"
    "/api/v1/auth"               = "api-keys"
    "/api/v1/images"             = "upload-image"
    "/api/v1/collections"        = "upload-image"
    "/api/v1/search"             = "search"
    "/api/v1/admin/dead-letters" = "process-embedding"
  }
}

resource "google_compute_global_address" "api" {
  name       = "${var.name_prefix}-api"
  depends_on = [google_project_service.apis]
}

resource "google_compute_region_network_endpoint_group" "functions" {
  for_each              = toset(local.function_names)
  name                  = "${var.name_prefix}-${each.key}"
  region                = var.region
  network_endpoint_type = "SERVERLESS"
  cloud_run {
    service = google_cloud_run_v2_service.functions[each.key].name
  }
}

resource "google_compute_backend_service" "functions" {
  for_each              = toset(local.function_names)
  name                  = "${var.name_prefix}-${each.key}"
  protocol              = "HTTPS"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  backend {
    group = google_compute_region_network_endpoint_group.functions[each.key].id
  }
  log_config {
    enable      = true
    sample_rate = 1
  }
}

resource "google_compute_url_map" "api" {
  name = "${var.name_prefix}-api"
  # Paths no rule matches: ManageTeams answers them with the API's JSON 404.
  default_service = google_compute_backend_service.functions["manage-teams"].id

  host_rule {
    hosts        = [var.domain]
    path_matcher = "api"
  }

  path_matcher {
    name            = "api"
    default_service = google_compute_backend_service.functions["manage-teams"].id
    dynamic "path_rule" {
      for_each = local.routes
      content {
        paths   = [path_rule.key, "${path_rule.key}/*"]
        service = google_compute_backend_service.functions[path_rule.value].id
      }
    }
  }
}

resource "google_compute_managed_ssl_certificate" "api" {
  name = "${var.name_prefix}-api"
  managed {
    domains = [var.domain]
  }
  depends_on = [google_project_service.apis]
}

resource "google_compute_ssl_policy" "modern" {
  name            = "${var.name_prefix}-modern-tls"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
  depends_on      = [google_project_service.apis]
}

resource "google_compute_target_https_proxy" "api" {
  name             = "${var.name_prefix}-api"
  url_map          = google_compute_url_map.api.id
  ssl_certificates = [google_compute_managed_ssl_certificate.api.id]
  ssl_policy       = google_compute_ssl_policy.modern.id
}

resource "google_compute_global_forwarding_rule" "https" {
  name                  = "${var.name_prefix}-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.api.id
  port_range            = "443"
  target                = google_compute_target_https_proxy.api.id
}

resource "google_compute_url_map" "https_redirect" {
  name = "${var.name_prefix}-https-redirect"
  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
  depends_on = [google_project_service.apis]
}

resource "google_compute_target_http_proxy" "https_redirect" {
  name    = "${var.name_prefix}-https-redirect"
  url_map = google_compute_url_map.https_redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  name                  = "${var.name_prefix}-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.api.id
  port_range            = "80"
  target                = google_compute_target_http_proxy.https_redirect.id
}
