# A VPC of our own: the Cloud Run services reach the Qdrant VMs through Direct VPC egress (private
# ranges only; Google's APIs are reached directly), and the VMs have no public address (Cloud NAT
# lets them fetch the Qdrant release and upload snapshots).

resource "google_compute_network" "vpc" {
  name                    = "${var.name_prefix}-vpc"
  auto_create_subnetworks = false
  depends_on              = [google_project_service.apis]
}

resource "google_compute_subnetwork" "functions" {
  name                     = "${var.name_prefix}-functions"
  network                  = google_compute_network.vpc.id
  region                   = var.region
  ip_cidr_range            = "10.8.0.0/24"
  private_ip_google_access = true
  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_subnetwork" "qdrant" {
  name                     = "${var.name_prefix}-qdrant"
  network                  = google_compute_network.vpc.id
  region                   = var.region
  ip_cidr_range            = "10.8.1.0/24"
  private_ip_google_access = true
  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Qdrant's REST port, open to the functions' egress subnet only.
resource "google_compute_firewall" "functions_to_qdrant" {
  name          = "${var.name_prefix}-functions-to-qdrant"
  network       = google_compute_network.vpc.id
  direction     = "INGRESS"
  source_ranges = [google_compute_subnetwork.functions.ip_cidr_range]
  target_tags   = ["${var.name_prefix}-qdrant"]
  allow {
    protocol = "tcp"
    ports    = ["6333"]
  }
  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Qdrant's peer-to-peer port between the nodes of a cluster.
resource "google_compute_firewall" "qdrant_cluster" {
  name        = "${var.name_prefix}-qdrant-cluster"
  network     = google_compute_network.vpc.id
  direction   = "INGRESS"
  source_tags = ["${var.name_prefix}-qdrant"]
  target_tags = ["${var.name_prefix}-qdrant"]
  allow {
    protocol = "tcp"
    ports    = ["6333", "6335"]
  }
  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# SSH to the VMs through Identity-Aware Proxy's TCP forwarding only (gcloud compute ssh --tunnel-through-iap).
resource "google_compute_firewall" "iap_ssh" {
  name          = "${var.name_prefix}-iap-ssh"
  network       = google_compute_network.vpc.id
  direction     = "INGRESS"
  source_ranges = ["35.235.240.0/20"]
  target_tags   = ["${var.name_prefix}-qdrant"]
  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "nat" {
  name    = "${var.name_prefix}-nat"
  network = google_compute_network.vpc.id
  region  = var.region
}

resource "google_compute_router_nat" "qdrant" {
  name                               = "${var.name_prefix}-qdrant-egress"
  router                             = google_compute_router.nat.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"
  subnetwork {
    name                    = google_compute_subnetwork.qdrant.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }
  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# Google's health checkers, to Qdrant's port (the cluster's internal load balancer).
resource "google_compute_firewall" "health_checks_to_qdrant" {
  name          = "${var.name_prefix}-health-checks-to-qdrant"
  network       = google_compute_network.vpc.id
  direction     = "INGRESS"
  source_ranges = ["35.191.0.0/16", "130.211.0.0/22"]
  target_tags   = ["${var.name_prefix}-qdrant"]
  allow {
    protocol = "tcp"
    ports    = ["6333"]
  }
  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
