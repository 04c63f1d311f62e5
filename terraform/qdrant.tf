# Qdrant on Compute Engine: qdrant_nodes VMs (one server, or a cluster in Qdrant's distributed
# mode), each with a persistent data disk that outlives the VM, a fixed private address, no public
# address, and a timer that snapshots every collection to the snapshots bucket.

resource "google_compute_address" "qdrant" {
  count        = var.qdrant_nodes
  name         = "${var.name_prefix}-qdrant-${count.index}"
  region       = var.region
  subnetwork   = google_compute_subnetwork.qdrant.id
  address_type = "INTERNAL"
}

resource "google_compute_disk" "qdrant_data" {
  #checkov:skip=CKV_GCP_37:Encrypted at rest with Google-managed keys; a customer-managed key needs a Cloud KMS key ring, which is the operator's choice and cost, not this module's default.
  count = var.qdrant_nodes
  name  = "${var.name_prefix}-qdrant-data-${count.index}"
  zone  = var.zone
  type  = "pd-balanced"
  size  = var.qdrant_disk_gb
  labels = {
    role = "qdrant-data"
  }
  depends_on = [google_project_service.apis]
}

resource "google_compute_instance" "qdrant" {
  #checkov:skip=CKV_GCP_38:The boot disk holds only Ubuntu and the Qdrant binary (data lives on the data disk); encrypted at rest with Google-managed keys.
  count        = var.qdrant_nodes
  name         = "${var.name_prefix}-qdrant-${count.index}"
  machine_type = var.qdrant_machine_type
  zone         = var.zone
  tags         = ["${var.name_prefix}-qdrant"]

  boot_disk {
    initialize_params {
      image = "ubuntu-os-cloud/ubuntu-2204-lts"
      size  = 20
      type  = "pd-balanced"
    }
  }

  attached_disk {
    source      = google_compute_disk.qdrant_data[count.index].id
    device_name = "qdrant-data"
  }

  # No access_config: no public address. Egress through Cloud NAT.
  network_interface {
    subnetwork = google_compute_subnetwork.qdrant.id
    network_ip = google_compute_address.qdrant[count.index].address
  }

  service_account {
    email  = google_service_account.qdrant.email
    scopes = ["cloud-platform"]
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  metadata = {
    block-project-ssh-keys = "TRUE"
    enable-oslogin         = "TRUE"
    serial-port-enable     = "FALSE"
  }

  metadata_startup_script = templatefile("${path.module}/qdrant-startup.sh.tftpl", {
    qdrant_version    = var.qdrant_version
    api_key_secret    = google_secret_manager_secret.secrets["qdrant_api_key"].secret_id
    project_id        = var.project_id
    cluster           = var.qdrant_nodes > 1
    own_address       = google_compute_address.qdrant[count.index].address
    first_address     = google_compute_address.qdrant[0].address
    is_first          = count.index == 0
    snapshot_bucket   = google_storage_bucket.snapshots.name
    snapshot_schedule = var.qdrant_snapshot_schedule
  })

  allow_stopping_for_update = true
  # A protected VM cannot be deleted, and its data disk cannot be deleted while it is attached.
  deletion_protection = var.deletion_protection
  depends_on          = [google_compute_router_nat.qdrant, google_secret_manager_secret_iam_member.qdrant_reads_its_key]
}

# A cluster is reached through an internal passthrough load balancer over its nodes (health-checked
# on Qdrant's port), so that the functions keep their vectors when one node is down; one node is
# reached directly.
resource "google_compute_instance_group" "qdrant" {
  count     = var.qdrant_nodes > 1 ? 1 : 0
  name      = "${var.name_prefix}-qdrant"
  zone      = var.zone
  instances = google_compute_instance.qdrant[*].self_link
}

resource "google_compute_region_health_check" "qdrant" {
  count  = var.qdrant_nodes > 1 ? 1 : 0
  name   = "${var.name_prefix}-qdrant"
  region = var.region
  # TCP: Qdrant's HTTP routes may ask for the API key, which a health checker cannot send.
  tcp_health_check {
    port = 6333
  }
  log_config {
    enable = true
  }
  depends_on = [google_project_service.apis]
}

resource "google_compute_region_backend_service" "qdrant" {
  count                 = var.qdrant_nodes > 1 ? 1 : 0
  name                  = "${var.name_prefix}-qdrant"
  region                = var.region
  load_balancing_scheme = "INTERNAL"
  protocol              = "TCP"
  health_checks         = [google_compute_region_health_check.qdrant[0].id]
  backend {
    group          = google_compute_instance_group.qdrant[0].id
    balancing_mode = "CONNECTION"
  }
}

resource "google_compute_address" "qdrant_balancer" {
  count        = var.qdrant_nodes > 1 ? 1 : 0
  name         = "${var.name_prefix}-qdrant-balancer"
  region       = var.region
  subnetwork   = google_compute_subnetwork.qdrant.id
  address_type = "INTERNAL"
}

resource "google_compute_forwarding_rule" "qdrant" {
  count                 = var.qdrant_nodes > 1 ? 1 : 0
  name                  = "${var.name_prefix}-qdrant"
  region                = var.region
  load_balancing_scheme = "INTERNAL"
  backend_service       = google_compute_region_backend_service.qdrant[0].id
  ip_address            = google_compute_address.qdrant_balancer[0].address
  ports                 = ["6333"]
  network               = google_compute_network.vpc.id
  subnetwork            = google_compute_subnetwork.qdrant.id
}

locals {
  qdrant_host = var.qdrant_nodes > 1 ? google_compute_forwarding_rule.qdrant[0].ip_address : google_compute_address.qdrant[0].address
}
