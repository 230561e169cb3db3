#!/usr/bin/env bash
# Fetches the published npm plugins the tests run, into tests/plugins/npm/ (git-ignored).
# They are extracted, never installed: the Open Library plugin is self-contained, and its
# declared dependency is not on the registry. Safe to run twice; a no-op once fetched.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
destination="$here/plugins/npm"

fetch() {
  local package="$1" folder="$2"
  [ -f "$destination/$folder/package.json" ] && return 0
  local staging
  staging="$(mktemp -d "${TMPDIR:-/tmp}/codex-plugin-fetch.XXXXXX")"
  trap 'rm -rf "$staging"' RETURN
  (cd "$staging" && npm pack --silent "$package" >/dev/null)
  mkdir -p "$staging/out" "$destination"
  tar -xzf "$staging"/*.tgz -C "$staging/out"
  rm -rf "$destination/$folder.partial"
  mv "$staging/out/package" "$destination/$folder.partial"
  mv -T "$destination/$folder.partial" "$destination/$folder"
  echo "fetched $package into tests/plugins/npm/$folder" >&2
}

fetch @ashdev/codex-plugin-metadata-openlibrary@2.5.0 metadata-openlibrary
# The release sources (each dist/index.js bundles the SDK, so nothing is installed).
fetch @ashdev/codex-plugin-release-nyaa@2.5.0 release-nyaa
fetch @ashdev/codex-plugin-release-mangaupdates@2.5.0 release-mangaupdates
fetch @ashdev/codex-plugin-release-tsundoku@2.5.0 release-tsundoku

# The OAuth tests' authorization server (oidc-provider), installed from its lock file.
if [ ! -d "$here/oauth-server/node_modules/oidc-provider" ]; then
  (cd "$here/oauth-server" && npm ci --silent --no-audit --no-fund)
  echo "installed the OAuth test server's packages into tests/oauth-server/node_modules" >&2
fi
