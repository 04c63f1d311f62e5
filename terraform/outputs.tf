output "api_url" {
  description = "The API's base URL (once the DNS A record of var.domain points at load_balancer_ip and the certificate is active)."
  value       = "https://${var.domain}/api/v1"
}

output "load_balancer_ip" {
  description = "The load balancer's address: the A record of var.domain."
  value       = google_compute_global_address.api.address
}

output "bootstrap_command" {
  description = "Creates the first team, admin user and admin key through the deployed API, with the bootstrap key from Secret Manager."
  value       = "scripts/seed --api https://${var.domain} --project ${var.project_id} --bootstrap-secret ${google_secret_manager_secret.secrets["bootstrap_admin_key"].secret_id}"
}

output "service_urls" {
  description = "Each function's Cloud Run URL (reachable only from inside the project: Pub/Sub, Cloud Scheduler, the load balancer)."
  value       = { for name, service in google_cloud_run_v2_service.functions : name => service.uri }
}

output "image_registry" {
  description = "Where deployment/deploy.sh --build pushes the images."
  value       = local.registry
}

output "qdrant_addresses" {
  description = "The Qdrant nodes' private addresses."
  value       = google_compute_address.qdrant[*].address
}

output "qdrant_host" {
  description = "QDRANT_HOST of the image functions: the one node, or the cluster's internal load balancer."
  value       = local.qdrant_host
}

output "secret_ids" {
  description = "The Secret Manager secrets deployment/deploy.sh fills, by variable."
  value       = { for key, variable in local.secrets : variable => google_secret_manager_secret.secrets[key].secret_id }
}

output "image_tag" {
  description = "The image tag the services run (deployment/deploy.sh --destroy keeps it while it lifts deletion protection)."
  value       = var.image_tag
}
