#!/bin/sh
# docker-entrypoint-initdb.d (compose's postgres service, first start): the role the app runs as under
# row-level security. Not a superuser, no BYPASSRLS, owns nothing; `migrate` (as the owner) grants it
# what it needs. See README, "Tenant walls in the database".
set -eu
psql -v ON_ERROR_STOP=1 -v app_password="${APP_DB_PASSWORD:-tierwise-app}" \
  --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE tierwise_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD :'app_password';
SQL
