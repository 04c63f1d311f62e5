# The metadata database, with the composite indexes its queries need (firestore-indexes.json,
# which the Firestore store's tests check every query against).

resource "google_firestore_database" "metadata" {
  name                              = "(default)"
  location_id                       = var.region
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.deletion_protection ? "ABANDON" : "DELETE"
  depends_on                        = [google_project_service.apis]
}

locals {
  firestore_indexes = jsondecode(file("${path.module}/firestore-indexes.json")).indexes
}

resource "google_firestore_index" "metadata" {
  for_each = {
    for index in local.firestore_indexes :
    join("-", concat([index.collectionGroup], [for field in index.fields : "${field.fieldPath}.${lookup(field, "order", lookup(field, "arrayConfig", ""))}"])) => index
  }
  database    = google_firestore_database.metadata.name
  collection  = each.value.collectionGroup
  query_scope = each.value.queryScope
  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.fieldPath
      order        = lookup(fields.value, "order", null)
      array_config = lookup(fields.value, "arrayConfig", null)
    }
  }
}

# A daily backup of the database beside point-in-time recovery (7 days of versions): kept
# firestore_backup_retention_days, restored with `gcloud firestore databases restore`
# (docs/operations.md).
resource "google_firestore_backup_schedule" "daily" {
  database  = google_firestore_database.metadata.name
  retention = "${var.firestore_backup_retention_days * 86400}s"
  daily_recurrence {}
}
