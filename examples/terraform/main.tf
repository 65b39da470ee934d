# RAGnos Vault with the Terraform AWS provider: the provider is pointed at the vault through
# `endpoints { secretsmanager = ... }`, and the STS / metadata / account-id look-ups a non-AWS
# endpoint cannot answer are skipped. Everything else is unchanged AWS configuration.
#
#   export TF_VAR_access_key=AKIA... TF_VAR_secret_key=...
#   terraform init && terraform apply
#   terraform destroy

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "endpoint" {
  description = "RAGnos Vault endpoint"
  type        = string
  default     = "http://127.0.0.1:4000"
}

variable "region" {
  description = "Region of the credential scope; part of each secret's identity and ARN"
  type        = string
  default     = "us-east-1"
}

variable "access_key" {
  description = "Access key id of a RAGnos Vault workspace (role admin: destroy calls DeleteSecret, which `write` may not)"
  type        = string
}

variable "secret_key" {
  description = "Its secret access key"
  type        = string
  sensitive   = true
}

variable "secret_name" {
  description = "Name of the example secret"
  type        = string
  default     = "examples/terraform/database"
}

provider "aws" {
  region     = var.region
  access_key = var.access_key
  secret_key = var.secret_key

  endpoints {
    secretsmanager = var.endpoint
  }

  skip_credentials_validation = true # no sts:GetCallerIdentity
  skip_requesting_account_id  = true # no STS/IAM account-id look-up
  skip_metadata_api_check     = true # no EC2 instance metadata
  skip_region_validation      = true # any region name is accepted
}

resource "aws_secretsmanager_secret" "example" {
  name        = var.secret_name
  description = "Managed by Terraform against RAGnos Vault"

  # 0 = ForceDeleteWithoutRecovery on destroy, so the name can be reused at once.
  recovery_window_in_days = 0

  tags = {
    managed-by = "terraform"
  }
}

resource "aws_secretsmanager_secret_version" "example" {
  secret_id = aws_secretsmanager_secret.example.id
  secret_string = jsonencode({
    username = "app"
    password = "example-only-change-me"
  })
}

data "aws_secretsmanager_secret_version" "example" {
  secret_id  = aws_secretsmanager_secret_version.example.secret_id
  version_id = aws_secretsmanager_secret_version.example.version_id

  lifecycle {
    postcondition {
      condition     = self.secret_string == aws_secretsmanager_secret_version.example.secret_string
      error_message = "The value read back from RAGnos Vault differs from the value written."
    }
  }
}

output "secret_arn" {
  value = aws_secretsmanager_secret.example.arn
}

output "version_id" {
  value = aws_secretsmanager_secret_version.example.version_id
}

output "username" {
  value = jsondecode(nonsensitive(data.aws_secretsmanager_secret_version.example.secret_string)).username
}
