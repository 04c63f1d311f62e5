#!/usr/bin/env bash
# Builds, pushes and deploys the Image Management API to Google Cloud, or shows or removes it.
#
#   deployment/deploy.sh --build --deploy   images built, pushed to Artifact Registry, terraform applied
#   deployment/deploy.sh --plan             what terraform apply would change
#   deployment/deploy.sh --destroy          everything removed (asks first; data included)
#
# Settings (environment, or deployment/deploy.env as NAME=value lines):
#   PROJECT_ID (required), DOMAIN (required: the API's DNS name), REGION (us-central1),
#   ZONE (us-central1-a), NAME_PREFIX (image-api), IMAGE_TAG (the commit's short hash),
#   CLIP_MODEL (none; baked copies ./models into the images), TF_STATE_BUCKET
#   (<project>-<prefix>-tfstate, created when missing), and any TF_VAR_<name> for terraform's
#   other variables (terraform/variables.tf).
# Needs gcloud (logged in: gcloud auth login and gcloud auth application-default login), terraform
# 1.5 or newer, and podman or docker for --build. Every step says what it does; a missing tool or
# permission stops it with what to do.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -f deployment/deploy.env ] && set -a && . deployment/deploy.env && set +a

step() { echo "==> $*"; }
fail() { echo "deploy: $*" >&2; exit 1; }
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

build=0 deploy=0 plan=0 destroy=0
for argument in "$@"; do
    case $argument in
    --build) build=1 ;;
    --deploy) deploy=1 ;;
    --plan) plan=1 ;;
    --destroy) destroy=1 ;;
    -h | --help) usage ;;
    *) echo "deploy: unknown argument $argument" >&2; usage 64 ;;
    esac
done
((build + deploy + plan + destroy > 0)) || usage 64
((destroy == 0 || build + deploy == 0)) || fail "--destroy goes alone"

: "${PROJECT_ID:?set PROJECT_ID (the Google Cloud project)}"
: "${DOMAIN:?set DOMAIN (the DNS name of the API, for example images.example.com)}"
region=${REGION:-us-central1}
zone=${ZONE:-${region}-a}
prefix=${NAME_PREFIX:-image-api}
tag=${IMAGE_TAG:-$(git rev-parse --short HEAD)}
state_bucket=${TF_STATE_BUCKET:-${PROJECT_ID}-${prefix}-tfstate}
registry="${region}-docker.pkg.dev/${PROJECT_ID}/${prefix}"
functions=(manage-teams manage-users api-keys upload-image process-embedding search)

export TF_VAR_project_id=$PROJECT_ID TF_VAR_region=$region TF_VAR_zone=$zone TF_VAR_name_prefix=$prefix
export TF_VAR_domain=$DOMAIN TF_VAR_image_tag=$tag
export TF_IN_AUTOMATION=1

need() { command -v "$1" >/dev/null || fail "$1 is not installed: $2"; }
need gcloud "https://cloud.google.com/sdk/docs/install"
need terraform "https://developer.hashicorp.com/terraform/install (1.5 or newer)"
need openssl "apt-get install openssl"

step "Checking gcloud's credentials and access to project $PROJECT_ID"
gcloud auth print-access-token >/dev/null 2>&1 || fail "gcloud is not logged in: run gcloud auth login"
gcloud auth application-default print-access-token >/dev/null 2>&1 \
    || fail "terraform needs Application Default Credentials: run gcloud auth application-default login"
gcloud projects describe "$PROJECT_ID" --format='value(projectId)' >/dev/null 2>&1 \
    || fail "project $PROJECT_ID cannot be read with these credentials (wrong id, or no roles/viewer)"

tf() { terraform -chdir=terraform "$@"; }

step "Terraform state in gs://$state_bucket"
if ! gcloud storage buckets describe "gs://$state_bucket" --project "$PROJECT_ID" >/dev/null 2>&1; then
    step "Creating the state bucket gs://$state_bucket (versioned, uniform access)"
    gcloud storage buckets create "gs://$state_bucket" --project "$PROJECT_ID" --location "$region" \
        --uniform-bucket-level-access --public-access-prevention \
        || fail "cannot create gs://$state_bucket: needs roles/storage.admin, or set TF_STATE_BUCKET to an existing bucket"
    gcloud storage buckets update "gs://$state_bucket" --versioning >/dev/null
fi
step "terraform init"
tf init -input=false -upgrade -backend-config="bucket=$state_bucket" -backend-config="prefix=$prefix" >/dev/null \
    || fail "terraform init failed (the Google provider must be downloadable from registry.terraform.io)"

if ((plan)); then
    step "terraform plan (image tag $tag)"
    tf plan -input=false
fi

if ((destroy)); then
    echo "This deletes every resource of $prefix in $PROJECT_ID: the Firestore database, the images bucket,"
    echo "the Qdrant disks and their snapshots included."
    read -r -p "Type the project id to go on: " answer
    [ "$answer" = "$PROJECT_ID" ] || fail "not confirmed; nothing deleted"
    # Only the protected resources that exist are changed, and with the image tag they run: this
    # apply lifts the protection and neither creates nor redeploys anything.
    protected='^(google_firestore_database\.metadata|google_cloud_run_v2_service\.functions|google_compute_instance\.qdrant|google_storage_bucket\.(images|snapshots))'
    targets=()
    while read -r address; do targets+=("-target=$address"); done < <(tf state list 2>/dev/null | grep -E "$protected" || true)
    if ((${#targets[@]})); then
        deployed=$(tf output -raw image_tag 2>/dev/null || true)
        if [ -z "$deployed" ]; then
            deployed=$(tf state show -no-color 'google_cloud_run_v2_service.functions["manage-teams"]' 2>/dev/null \
                | sed -n 's/^ *image *= *".*:\([^":]*\)"$/\1/p' | head -n 1)
        fi
        [ -n "$deployed" ] && export TF_VAR_image_tag=$deployed
        step "Turning deletion protection off (${#targets[@]} resources, image tag $TF_VAR_image_tag)"
        tf apply -input=false -auto-approve -var deletion_protection=false "${targets[@]}" \
            || fail "could not turn deletion protection off; nothing was deleted"
    fi
    step "terraform destroy"
    errors=$(mktemp)
    if ! tf destroy -input=false -auto-approve -var deletion_protection=false 2> >(tee "$errors" >&2); then
        if grep -qi "subnetwork" "$errors"; then
            echo "deploy: everything else is deleted. The subnet that Cloud Run's Direct VPC egress used is released" >&2
            echo "        one to two hours after its services are gone (Cloud Run's documentation): run" >&2
            echo "        deployment/deploy.sh --destroy again then to delete it and the network." >&2
            exit 75
        fi
        fail "terraform destroy stopped (above); run deployment/deploy.sh --destroy again to delete what is left"
    fi
    step "Destroyed. The state bucket gs://$state_bucket is kept (delete it with gcloud storage rm -r)."
    exit 0
fi

# Resources the images and the services need first: the APIs, the registry, the secrets.
foundations=(-target=google_project_service.apis -target=google_artifact_registry_repository.images
    -target=google_secret_manager_secret.secrets)
if ((build || deploy)); then
    step "terraform apply: APIs, Artifact Registry and the secrets' containers"
    tf apply -input=false -auto-approve "${foundations[@]}" \
        || fail "terraform apply failed: the account needs roles/owner, or the roles in README.md, \"Deploying to Google Cloud\""
fi

if ((build)); then
    if command -v podman >/dev/null; then engine=podman; elif command -v docker >/dev/null; then engine=docker; else
        fail "--build needs podman or docker"
    fi
    step "Letting $engine push to ${region}-docker.pkg.dev"
    gcloud auth print-access-token | $engine login -u oauth2accesstoken --password-stdin "${region}-docker.pkg.dev" >/dev/null \
        || fail "$engine cannot log in to Artifact Registry"
    for function in "${functions[@]}"; do
        step "Building $registry/$function:$tag"
        $engine build --platform linux/amd64 -f Containerfile --build-arg PRODUCT="$function" --build-arg CLIP_MODEL="${CLIP_MODEL:-none}" \
            -t "$registry/$function:$tag" .
        step "Pushing $registry/$function:$tag"
        $engine push "$registry/$function:$tag" || fail "push refused: the account needs roles/artifactregistry.writer"
    done
fi

if ((deploy)); then
    for function in "${functions[@]}"; do
        gcloud artifacts docker images describe "$registry/$function:$tag" >/dev/null 2>&1 \
            || fail "$registry/$function:$tag is not in Artifact Registry: run with --build (or set IMAGE_TAG)"
    done
    # A first version of each secret, generated here; existing versions are kept.
    fill_secret() {
        local variable=$1 value=$2 id
        id="$prefix-$(echo "$variable" | tr '[:upper:]_' '[:lower:]-')"
        if [ -z "$(gcloud secrets versions list "$id" --project "$PROJECT_ID" --filter=state=enabled --limit=1 --format='value(name)')" ]; then
            step "Secret $id ($variable): adding a first, generated version"
            printf '%s' "$value" | gcloud secrets versions add "$id" --project "$PROJECT_ID" --data-file=- >/dev/null \
                || fail "cannot add a version to $id: needs roles/secretmanager.admin"
        fi
    }
    fill_secret API_KEY_SECRET "$(openssl rand -base64 48 | tr -d '\n')"
    fill_secret QDRANT_API_KEY "$(openssl rand -hex 32)"
    fill_secret BOOTSTRAP_ADMIN_KEY "imk_$(openssl rand -hex 16)_$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')"
    step "terraform apply (image tag $tag)"
    tf apply -input=false -auto-approve
    step "Deployed. Next:"
    tf output -raw bootstrap_command
    echo
    echo "    DNS: point $DOMAIN (A record) at $(tf output -raw load_balancer_ip); the certificate becomes active within about an hour after."
fi
