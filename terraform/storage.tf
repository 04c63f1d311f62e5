# Image bytes, and Qdrant's snapshots.

resource "google_storage_bucket" "images" {
  name                        = "${var.project_id}-${var.name_prefix}-images"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  versioning {
    enabled = true
  }
  # A deleted or replaced object stays restorable as a noncurrent version for 30 days.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }
  depends_on = [google_project_service.apis]
  lifecycle {
    precondition {
      condition     = length("${var.project_id}-${var.name_prefix}-images") <= 63
      error_message = "Bucket name ${var.project_id}-${var.name_prefix}-images is over 63 characters: shorten name_prefix."
    }
  }
}

resource "google_storage_bucket" "snapshots" {
  name     = "${var.project_id}-${var.name_prefix}-qdrant-snapshots"
  location = var.region
  # Nearline bills every object for 30 days at least: cheaper only when snapshots are kept as long.
  storage_class               = var.snapshot_retention_days >= 30 ? "NEARLINE" : "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  versioning {
    enabled = true
  }
  lifecycle_rule {
    condition {
      age = var.snapshot_retention_days
    }
    action {
      type = "Delete"
    }
  }
  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }
  depends_on = [google_project_service.apis]
  lifecycle {
    precondition {
      condition     = length("${var.project_id}-${var.name_prefix}-qdrant-snapshots") <= 63
      error_message = "Bucket name ${var.project_id}-${var.name_prefix}-qdrant-snapshots is over 63 characters: shorten name_prefix."
    }
  }
}

# The two buckets' access logs.
resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:This is the access-log bucket itself; logging it into itself would loop.
  name                        = "${var.project_id}-${var.name_prefix}-access-logs"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  versioning {
    enabled = true
  }
  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }
  depends_on = [google_project_service.apis]
  lifecycle {
    precondition {
      condition     = length("${var.project_id}-${var.name_prefix}-access-logs") <= 63
      error_message = "Bucket name ${var.project_id}-${var.name_prefix}-access-logs is over 63 characters: shorten name_prefix."
    }
  }
}

# Cloud Storage writes the access logs as this group.
resource "google_storage_bucket_iam_member" "access_log_writer" {
  bucket = google_storage_bucket.access_logs.name
  role   = "roles/storage.objectCreator"
  member = "group:cloud-storage-analytics@google.com"
}
