-- Credentials for the two targets that come next: a Kubernetes API server (kubeconfig, or server
-- + token) and GitHub (a token for workflow_dispatch). Their secret fields are sealed in `secret`
-- like every other credential; `public` holds what may be shown (server URL, context, api_url).
ALTER TABLE credentials DROP CONSTRAINT credentials_provider_check;
ALTER TABLE credentials ADD CONSTRAINT credentials_provider_check
  CHECK (provider IN ('aws', 'digitalocean', 'kubernetes', 'github'));
