variable "project_id" {
  description = "The Google Cloud project everything is created in."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6 to 30 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "The region of the Cloud Run services, the bucket, Artifact Registry, Pub/Sub's storage and the Qdrant VM's subnet."
  type        = string
  default     = "us-central1"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1."
  }
}

variable "zone" {
  description = "The zone of the Qdrant VM (and its disks); it must be in region."
  type        = string
  default     = "us-central1-a"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]-[a-z]$", var.zone))
    error_message = "zone must be a Google Cloud zone such as us-central1-a."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource's name, so that several deployments can share a project."
  type        = string
  default     = "image-api"
  validation {
    # The longest name built from it, "<prefix>-process-embedding", is a service account id: at
    # most 30 characters. Bucket names, which add the project id, check their own length.
    condition     = can(regex("^[a-z][a-z0-9-]{1,10}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3 to 12 lower-case letters, digits and hyphens, starting with a letter (service account ids built from it are limited to 30 characters)."
  }
}

variable "domain" {
  description = "The API's domain name; the load balancer gets a Google-managed certificate for it. Point its DNS A record at the output load_balancer_ip."
  type        = string
  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", var.domain))
    error_message = "domain must be a DNS name such as images.example.com."
  }
}

variable "image_tag" {
  description = "The tag of every function's image in Artifact Registry (deployment/deploy.sh pushes the commit's short hash)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid image tag."
  }
}

variable "functions" {
  description = "Cloud Run sizing per function: CPUs, memory, requests served at once by one instance, and the fewest and most instances. The CLIP-using functions (upload-image, process-embedding, search) hold the model (about 600 MB) in memory."
  type = map(object({
    cpu           = string
    memory        = string
    concurrency   = number
    min_instances = number
    max_instances = number
  }))
  default = {
    "manage-teams"      = { cpu = "1", memory = "512Mi", concurrency = 80, min_instances = 0, max_instances = 4 }
    "manage-users"      = { cpu = "1", memory = "512Mi", concurrency = 80, min_instances = 0, max_instances = 4 }
    "api-keys"          = { cpu = "1", memory = "512Mi", concurrency = 80, min_instances = 0, max_instances = 4 }
    "upload-image"      = { cpu = "2", memory = "2Gi", concurrency = 8, min_instances = 0, max_instances = 10 }
    "process-embedding" = { cpu = "2", memory = "2Gi", concurrency = 2, min_instances = 0, max_instances = 10 }
    "search"            = { cpu = "2", memory = "2Gi", concurrency = 16, min_instances = 0, max_instances = 10 }
  }
  validation {
    condition     = setunion(keys(var.functions), ["manage-teams", "manage-users", "api-keys", "upload-image", "process-embedding", "search"]) == toset(keys(var.functions)) && length(var.functions) == 6
    error_message = "functions must size exactly manage-teams, manage-users, api-keys, upload-image, process-embedding and search."
  }
  validation {
    condition = alltrue([for f in values(var.functions) :
      f.concurrency >= 1 && f.concurrency <= 1000 && f.min_instances >= 0 && f.max_instances >= f.min_instances && f.max_instances >= 1
    ])
    error_message = "concurrency must be 1 to 1000, and 0 <= min_instances <= max_instances, max_instances >= 1."
  }
}

variable "embedding_provider" {
  description = "How images and queries are embedded: clip (the CLIP engine in the container, with the model mounted from clip_model_bucket or baked into the image) or vertex (Vertex AI's multimodalembedding@001)."
  type        = string
  default     = "vertex"
  validation {
    condition     = contains(["clip", "vertex", "visual"], var.embedding_provider)
    error_message = "embedding_provider must be clip, vertex or visual."
  }
}

variable "clip_model_bucket" {
  description = "With embedding_provider = clip and no model baked into the image: a bucket holding clip-vit-base-patch32/ (make model's files), mounted read-only into the CLIP-using services. Empty: the image must carry the model (CLIP_MODEL=baked)."
  type        = string
  default     = ""
}

variable "vertex_embedding_dimension" {
  description = "Numbers per vector with embedding_provider = vertex: 128, 256, 512 or 1408."
  type        = number
  default     = 1408
  validation {
    condition     = contains([128, 256, 512, 1408], var.vertex_embedding_dimension)
    error_message = "vertex_embedding_dimension must be 128, 256, 512 or 1408."
  }
}

variable "qdrant_version" {
  description = "The Qdrant release installed on the VMs (a pinned version; changing it replaces the VMs, keeping their data disks)."
  type        = string
  default     = "1.13.6"
  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.qdrant_version))
    error_message = "qdrant_version must be a release number such as 1.13.6."
  }
}

variable "qdrant_nodes" {
  description = "Qdrant VMs. 1: one server. More: a cluster (Qdrant's distributed mode, the first node bootstrapping the others), with collections spread over qdrant_shards shards and qdrant_replication_factor copies."
  type        = number
  default     = 1
  validation {
    condition     = var.qdrant_nodes >= 1 && var.qdrant_nodes <= 16
    error_message = "qdrant_nodes must be 1 to 16."
  }
}

variable "qdrant_shards" {
  description = "Shards of each new collection (QDRANT_SHARDS); with several nodes, at least the number of nodes spreads the data over all of them."
  type        = number
  default     = 1
  validation {
    condition     = var.qdrant_shards >= 1 && var.qdrant_shards <= 64
    error_message = "qdrant_shards must be 1 to 64."
  }
}

variable "qdrant_replication_factor" {
  description = "Copies of each shard (QDRANT_REPLICATION_FACTOR); at most qdrant_nodes."
  type        = number
  default     = 1
  validation {
    condition     = var.qdrant_replication_factor >= 1 && var.qdrant_replication_factor <= 16
    error_message = "qdrant_replication_factor must be 1 to 16 (and at most qdrant_nodes)."
  }
}

variable "qdrant_machine_type" {
  description = "The Qdrant VMs' machine type."
  type        = string
  default     = "e2-standard-2"
}

variable "qdrant_disk_gb" {
  description = "Each Qdrant VM's persistent data disk, in GB."
  type        = number
  default     = 50
  validation {
    condition     = var.qdrant_disk_gb >= 10 && var.qdrant_disk_gb <= 65536
    error_message = "qdrant_disk_gb must be 10 to 65536."
  }
}

variable "qdrant_snapshot_schedule" {
  description = "When each Qdrant node snapshots every collection to the snapshots bucket: a systemd OnCalendar expression."
  type        = string
  default     = "*-*-* 03:00:00"
}

variable "firestore_backup_retention_days" {
  description = "Days each daily Firestore backup is kept (Firestore allows up to 14 weeks)."
  type        = number
  default     = 14
  validation {
    condition     = var.firestore_backup_retention_days >= 1 && var.firestore_backup_retention_days <= 98
    error_message = "firestore_backup_retention_days must be from 1 to 98."
  }
}

variable "snapshot_retention_days" {
  description = "Days Qdrant snapshots are kept in the snapshots bucket."
  type        = number
  default     = 14
  validation {
    condition     = var.snapshot_retention_days >= 1
    error_message = "snapshot_retention_days must be at least 1."
  }
}

variable "processing_max_attempts" {
  description = "Processing attempts before an image is failed for good (PROCESSING_MAX_ATTEMPTS); Pub/Sub's own dead-letter policy allows no fewer than 5 deliveries and stays the backstop."
  type        = number
  default     = 3
  validation {
    condition     = var.processing_max_attempts >= 1 && var.processing_max_attempts <= 100
    error_message = "processing_max_attempts must be 1 to 100."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of every function."
  type        = string
  default     = "info"
  validation {
    condition     = contains(["trace", "debug", "info", "notice", "warning", "error", "critical"], var.log_level)
    error_message = "log_level must be trace, debug, info, notice, warning, error or critical."
  }
}

variable "cors_origins" {
  description = "Browser origins allowed to call the API (CORS_ORIGINS); empty: no CORS."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Protect from terraform destroy: the Firestore database (delete protection), the Cloud Run services, the images and snapshots buckets (not emptied by destroy), and the Qdrant VMs (deletion protection; their data disks cannot be deleted while attached to them). deployment/deploy.sh --destroy turns it off first, after asking."
  type        = bool
  default     = true
}

variable "rotating_api_key_secret" {
  description = "True while API_KEY_SECRET is being rotated: the services also mount API_KEY_PREVIOUS_SECRET (the secret's latest version), so keys hashed with the old secret still authenticate. README.md, \"Rotating API_KEY_SECRET\"."
  type        = bool
  default     = false
}

variable "mount_bootstrap_admin_key" {
  description = "Mount BOOTSTRAP_ADMIN_KEY into the services, which register it at start (scripts/seed uses it to create the first admin). Set false once seeded: no standing bootstrap key, and a rotation of API_KEY_SECRET can end without the key's record refusing the new secret."
  type        = bool
  default     = true
}
