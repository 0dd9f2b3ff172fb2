#!/usr/bin/env bash
# preflight as a CI smoke step: one run that writes JUnit (for the test view), Markdown (for
# the job summary), JSON (the artifact) and the allowlist of what failed, and whose exit code
# is the job's: 0 every required check passed, 1 a required check failed, 2 bad input.
# Shared by the GitHub Action (deploy/github-action/action.yml) and the GitLab CI template
# (deploy/gitlab/preflight.gitlab-ci.yml). Everything comes from the environment:
#   PREFLIGHT_PROFILE  the profile (default konnect); empty for targets in PREFLIGHT_ARGS only
#   PREFLIGHT_SET      the profile's variables, NAME=VALUE, one a line
#   PREFLIGHT_ARGS     more arguments for `preflight check`, split on white space
#   PREFLIGHT_BIN      a preflight binary to use; else `preflight` on PATH; else downloaded
#   PREFLIGHT_VERSION  the release to download (0.1.0 or v0.1.0)
#   PREFLIGHT_URL      where releases are: URL/vVERSION/preflight-VERSION-TARGET.tar.gz and
#                      URL/vVERSION/SHA256SUMS (the checksum is verified before it runs)
#   PREFLIGHT_OUT      the directory the reports go to (default preflight-report)
#   SUMMARY_FILE       a file the Markdown report is appended to (GitHub's job summary)
set -euo pipefail
out=${PREFLIGHT_OUT:-preflight-report}
mkdir -p "$out"

bin=${PREFLIGHT_BIN:-}
if [ -z "$bin" ]; then
    bin=$(command -v preflight || true)
fi
if [ -z "$bin" ]; then
    version=${PREFLIGHT_VERSION:?no preflight binary: set PREFLIGHT_BIN, put preflight on PATH, or set PREFLIGHT_VERSION and PREFLIGHT_URL}
    version=${version#v}
    url=${PREFLIGHT_URL:?PREFLIGHT_URL: where the releases are}
    name="preflight-$version-$(uname -m)-unknown-linux-musl"
    fetch="$out/.download"
    mkdir -p "$fetch"
    curl -fsSL --retry 2 -o "$fetch/$name.tar.gz" "$url/v$version/$name.tar.gz"
    curl -fsSL --retry 2 -o "$fetch/SHA256SUMS" "$url/v$version/SHA256SUMS"
    (cd "$fetch" && grep " $name.tar.gz\$" SHA256SUMS | sha256sum -c --quiet -) || {
        echo "preflight-smoke: $name.tar.gz does not match its SHA256SUMS line" >&2
        exit 2
    }
    tar -xzf "$fetch/$name.tar.gz" -C "$fetch"
    bin="$fetch/$name/preflight"
fi

args=(check)
profile=${PREFLIGHT_PROFILE-konnect}
if [ -n "$profile" ]; then args+=(--profile "$profile"); fi
while IFS= read -r line; do
    line=${line#"${line%%[![:space:]]*}"}
    if [ -n "$line" ]; then args+=(--set "$line"); fi
done <<<"${PREFLIGHT_SET:-}"
args+=(--junit "$out/preflight.xml" --markdown "$out/preflight.md" --json "$out/preflight.json")
args+=(--allowlist-failed "$out/blocked.md")
read -r -a extra <<<"${PREFLIGHT_ARGS:-}"
args+=("${extra[@]}")

set +e
"$bin" "${args[@]}"
code=$?
set -e
if [ -n "${SUMMARY_FILE:-}" ] && [ -f "$out/preflight.md" ]; then
    cat "$out/preflight.md" >>"$SUMMARY_FILE"
    if [ "$code" = 1 ] && [ -s "$out/blocked.md" ]; then
        printf '\n### What to ask the network team for\n\n' >>"$SUMMARY_FILE"
        cat "$out/blocked.md" >>"$SUMMARY_FILE"
    fi
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    echo "exit-code=$code" >>"$GITHUB_OUTPUT"
fi
exit "$code"
