terraform {
  required_version = ">= 1.5"
  # State in a Cloud Storage bucket: deployment/deploy.sh passes bucket and prefix
  # (terraform init -backend-config=...); `terraform init -backend=false` for validate alone.
  backend "gcs" {}
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.12"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
