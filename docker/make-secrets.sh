#!/usr/bin/env sh
# Writes the secret files docker/compose.yml reads, in docker/secrets/.
# Existing files are kept: rerunning never rotates a secret by accident (rotation:
# docs/deploy.md). Put the Graph client secret from Entra ID in
# docker/secrets/graph_client_secret yourself.
#
# Modes: Compose (outside Swarm) bind-mounts each file into the containers with its
# host owner and mode, ignoring a secret's uid/gid/mode, and the image runs as its
# own `callbot` user, not the host user running this. So the files are 0644 (the
# container can read them) inside a 0700 directory (no one else on the host can
# reach them). Rerunning repairs the modes of files written by hand.
set -eu
cd "$(dirname "$0")/secrets"
chmod 700 .
umask 022
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(48))'; }
[ -s postgres_password ] || random > postgres_password
[ -s database_url ] || printf 'postgres://callbot:%s@postgres:5432/callbot\n' "$(cat postgres_password)" > database_url
[ -s secret_key ] || random > secret_key
[ -s metrics_token ] || random > metrics_token
[ -s audit_signing_key ] || python3 -c 'import secrets; print(secrets.token_hex(32))' > audit_signing_key
# Public keys of audit signing keys replaced by a rotation: none yet.
[ -e audit_previous_public_keys ] || : > audit_previous_public_keys
# The emulator's public test secret until the Entra ID one replaces it.
[ -s graph_client_secret ] || echo emulator-client-secret > graph_client_secret
chmod 644 postgres_password database_url secret_key metrics_token audit_signing_key \
    audit_previous_public_keys graph_client_secret
ls -l
