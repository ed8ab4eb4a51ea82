#!/usr/bin/env sh
# Writes the secret files docker/compose.yml reads (docker/secrets/, mode 0600).
# Existing files are kept: rerunning never rotates a secret by accident (rotation:
# docs/deploy.md). Put the Graph client secret from Entra ID in
# docker/secrets/graph_client_secret yourself.
set -eu
cd "$(dirname "$0")/secrets"
umask 077
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(48))'; }
[ -s postgres_password ] || random > postgres_password
[ -s database_url ] || printf 'postgres://callbot:%s@postgres:5432/callbot\n' "$(cat postgres_password)" > database_url
[ -s secret_key ] || random > secret_key
[ -s metrics_token ] || random > metrics_token
[ -s audit_signing_key ] || python3 -c 'import secrets; print(secrets.token_hex(32))' > audit_signing_key
# The emulator's public test secret until the Entra ID one replaces it.
[ -s graph_client_secret ] || echo emulator-client-secret > graph_client_secret
ls -l
