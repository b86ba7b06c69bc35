#!/usr/bin/env bash
# Smoke test of the container image, with podman (rootful), on a machine that cannot pull images:
#  1. the base image: the official node:…-bookworm-slim if present, else built locally from
#     Debian packages and the npm registry (scripts/container-base.sh);
#  2. `podman build` of the Dockerfile as it is (--pull=never);
#  3. `serve` on a fresh database of a reachable PostgreSQL (SMOKE_PG, host network), plus one
#     `worker` on the same database; waits until the image's HEALTHCHECK passes in both;
#  4. signs in, creates a webhook app pointing at a receiver on this machine, schedules a
#     deployment through the API and sees it fire and succeed;
#  5. schedules a second one whose webhook answers only after 8 s, sends SIGTERM (podman stop)
#     while that call is in flight, and checks: exit code 0, the call was answered and recorded
#     (succeeded, attempt 1, received once), nothing stopped by force;
#  6. removes what it made (containers, volume, database), unless SMOKE_KEEP=1.
# Usage: scripts/container-smoke.sh   (root; needs podman, curl, jq, psql, node)
# Env: SMOKE_PG (postgres://root@127.0.0.1:5432/postgres, a user who may CREATE DATABASE),
#      NODE_IMAGE (docker.io/library/node:24.22.3-bookworm-slim), SMOKE_IMAGE (localhost/shipclock:smoke).
set -euo pipefail
cd "$(dirname "$0")/.."

pg_admin=${SMOKE_PG:-postgres://root@127.0.0.1:5432/postgres}
node_image=${NODE_IMAGE:-docker.io/library/node:24.22.3-bookworm-slim}
image=${SMOKE_IMAGE:-localhost/shipclock:smoke}
run_id=$(date +%s)-$$
db=shipclock_smoke_${run_id//-/_}
db_url=${pg_admin%/*}/$db
volume=shipclock-smoke-$run_id
serve=shipclock-smoke-serve-$run_id
worker=shipclock-smoke-worker-$run_id
work=$(mktemp -d)
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
port=$(free_port)
worker_port=$(free_port)
hook_port=$(free_port)
url=http://127.0.0.1:$port
key=$(head -c 32 /dev/urandom | base64)
password="smoke-$(head -c 12 /dev/urandom | base64 | tr -dc 'a-zA-Z0-9')"
# Sandboxes like our CI's: cgroups v1/hybrid (crun refuses them: runc works) and a process that may
# not raise its resource limits (podman's defaults are higher than ours: pass lower ones).
podman=(podman)
if [ -n "${SMOKE_RUNTIME:-}" ]; then podman+=(--runtime "$SMOKE_RUNTIME")
elif [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ] && command -v runc >/dev/null; then podman+=(--runtime runc); fi
limits=(--ulimit nofile=16384:16384 --ulimit nproc=4096:4096)
step() { echo "=== $(date -u +%H:%M:%S) $*"; }
fail() { echo "FAIL: $*" >&2; podman logs --tail 40 "${current:-$serve}" >&2 2>/dev/null || true; exit 1; }

cleanup() {
  [ -n "${hook_pid:-}" ] && kill "$hook_pid" 2>/dev/null || true
  [ "${SMOKE_KEEP:-}" = 1 ] && { echo "kept: $serve $worker $volume $db $work"; return; }
  for c in "$serve" "$worker" "shipclock-smoke-embedded-$run_id"; do podman rm -f -v -i -t 5 "$c" >/dev/null 2>&1 || true; done
  podman volume rm -f "$volume" "$volume-embedded" >/dev/null 2>&1 || true
  psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step "base image $node_image"
podman image exists "$node_image" || scripts/container-base.sh "$(sed -E 's/.*:([0-9.]+)-.*/\1/' <<<"$node_image")"

step "build $image"
start=$SECONDS
ca=()   # this machine's extra CA (a TLS-inspecting proxy) for npm in the build, not in the image
[ -n "${NODE_EXTRA_CA_CERTS:-}" ] && ca=(-v "$NODE_EXTRA_CA_CERTS:/run/build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/build-ca.crt)
"${podman[@]}" build "${ca[@]}" --pull=never --network=host --format docker "${limits[@]}" --build-arg "NODE_IMAGE=$node_image" -t "$image" . >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log"; fail "podman build"; }
echo "built in $((SECONDS - start)) s: $(podman image inspect --format '{{.Id}} {{.Size}} bytes' "$image")"
podman image inspect --format 'user={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}} stopsignal={{.Config.StopSignal}} volumes={{.Config.Volumes}} healthcheck={{.Config.Healthcheck.Test}}' "$image"

# A webhook receiver on this machine: answers 200, after 8 s for paths under /slow; one line per call.
cat >"$work/hook.js" <<'EOF'
const http = require('http'); const fs = require('fs');
http.createServer((req, res) => {
  let body = ''; req.on('data', (c) => (body += c));
  req.on('end', () => {
    fs.appendFileSync(process.argv[3], JSON.stringify({ at: new Date().toISOString(), path: req.url }) + '\n');
    setTimeout(() => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"ok":true}'); }, req.url.startsWith('/slow') ? 8000 : 0);
  });
}).listen(Number(process.argv[2]), '127.0.0.1');
EOF
: >"$work/hits"
node "$work/hook.js" "$hook_port" "$work/hits" & hook_pid=$!

step "database $db, serve on :$port, worker on :$worker_port"
psql "$pg_admin" -qc "CREATE DATABASE $db" >/dev/null
common=("${limits[@]}" --network=host -e "DATABASE_URL=$db_url" -e "SHIPCLOCK_SECRET_KEY=$key" -e HOST=127.0.0.1)
"${podman[@]}" run -d --name "$serve" "${common[@]}" -e "PORT=$port" -v "$volume:/data" \
  -e SHIPCLOCK_ADMIN_EMAIL=smoke@example.com -e "SHIPCLOCK_ADMIN_PASSWORD=$password" "$image" >/dev/null
"${podman[@]}" run -d --name "$worker" "${common[@]}" -e "PORT=$worker_port" "$image" worker >/dev/null

# Without systemd podman cannot time the periodic checks ("unable to get systemd connection" on
# stderr): `podman healthcheck run` runs the image's HEALTHCHECK command on demand instead.
step "waiting for the HEALTHCHECK (podman healthcheck run) in serve and worker"
for c in "$serve" "$worker"; do
  for i in $(seq 1 90); do
    "${podman[@]}" healthcheck run "$c" >/dev/null 2>&1 && break
    [ "$(podman inspect --format '{{.State.Running}}' "$c")" = true ] || fail "$c exited: $(podman logs --tail 20 "$c" 2>&1)"
    [ "$i" = 90 ] && fail "$c not healthy after 90 s"
    sleep 1
  done
  echo "$c healthy: $(podman inspect --format '{{.State.Health.Status}}' "$c" 2>/dev/null || true)"
done
curl -fsS "$url/healthz" && echo
curl -fsS "http://127.0.0.1:$worker_port/healthz" && echo
"${podman[@]}" exec "$serve" sh -c 'echo "in the container: uid=$(id -u) user=$(id -un) node=$(node --version) data=$(ls -ld /data)"'

step "sign in, create a webhook app"
api() { # method path [json]
  curl -sS -X "$1" "$url$2" -H "authorization: Bearer ${token:-}" ${3:+-H 'content-type: application/json' -d "$3"}
}
token=$(api POST /v1/auth/login "{\"email\":\"smoke@example.com\",\"password\":\"$password\"}" | jq -r .access_token)
[ -n "$token" ] && [ "$token" != null ] || fail "login"
app=$(api POST /v1/apps "{\"name\":\"api\",\"target\":{\"type\":\"webhook\",\"url\":\"http://127.0.0.1:$hook_port/deploy\"},\"retry\":{\"max_attempts\":1}}" | jq -r .id)
slow=$(api POST /v1/apps "{\"name\":\"slow\",\"target\":{\"type\":\"webhook\",\"url\":\"http://127.0.0.1:$hook_port/slow\"},\"retry\":{\"max_attempts\":1}}" | jq -r .id)
[ "$app" != null ] && [ "$slow" != null ] || fail "create apps"

at() { date -u -d "@$(( $(date +%s) + $1 ))" '+{"year":%Y,"month":%-m,"day":%-d,"hour":%-H,"minute":%-M,"second":%-S,"timezone":"UTC"}'; }
schedule() { api POST /v1/scheduled_deployments "$(jq -c --arg app "$1" '. + {app: $app}' <<<"$(at "$2")")" | jq -r '.result.id // .id'; }
state() { api GET "/v1/scheduled_deployments/$1" | jq -r '.result.state + " attempts=" + ((.result.attempts // 0) | tostring)'; }

step "schedule a deployment 5 s ahead; it must fire and succeed"
d1=$(schedule "$app" 5)
[ "$d1" != null ] || fail "schedule"
for i in $(seq 1 60); do s=$(state "$d1"); [[ $s == succeeded* ]] && break; [ "$i" = 60 ] && fail "d1 is $s"; sleep 1; done
echo "deployment $d1: $s; the receiver got: $(grep -c '"/deploy"' "$work/hits") call(s)"
[ "$(grep -c '"/deploy"' "$work/hits")" = 1 ] || fail "expected one call to /deploy"

step "SIGTERM with a call in flight (its webhook answers after 8 s)"
"${podman[@]}" stop -t 5 "$worker" >/dev/null   # only serve may take it: the call in flight is serve's
d2=$(schedule "$slow" 4)
for i in $(seq 1 60); do grep -q '"/slow"' "$work/hits" && break; [ "$i" = 60 ] && fail "the slow call never arrived"; sleep 0.5; done
echo "call in flight at $(date -u +%T); podman stop -t 40 (SIGTERM)"
stop_start=$SECONDS
"${podman[@]}" stop -t 40 "$serve" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$serve")
echo "serve exited with $code after $((SECONDS - stop_start)) s"
podman logs "$serve" 2>&1 | jq -rc 'select(.msg|test("stopping|did not stop|deployment succeeded|deployment failed"))|[.time,.msg]' 2>/dev/null || true
[ "$code" = 0 ] || fail "exit code $code"
logs=$(podman logs "$serve" 2>&1)
grep -q 'did not stop within 30 s' <<<"$logs" && fail "stopped by its 30 s limit"
row=$(psql "$db_url" -Atc "SELECT state, attempts FROM deployments WHERE id = '$d2'")
echo "deployment $d2 in the database: $row; calls to /slow received: $(grep -c '"/slow"' "$work/hits")"
[ "$row" = "succeeded|1" ] || fail "the call in flight was not finished and recorded: $row"
[ "$(grep -c '"/slow"' "$work/hits")" = 1 ] || fail "the slow call was sent more than once"

step "the default: serve with no DATABASE_URL, on the embedded PostgreSQL in the /data volume"
embedded=shipclock-smoke-embedded-$run_id
current=$embedded
"${podman[@]}" run -d --name "$embedded" "${limits[@]}" --network=host -e HOST=127.0.0.1 -e "PORT=$port" \
  -v "$volume-embedded:/data" "$image" >/dev/null
for i in $(seq 1 120); do
  "${podman[@]}" healthcheck run "$embedded" >/dev/null 2>&1 && break
  [ "$(podman inspect --format '{{.State.Running}}' "$embedded")" = true ] || fail "$embedded exited: $(podman logs --tail 20 "$embedded" 2>&1)"
  [ "$i" = 120 ] && fail "$embedded not healthy after 120 s"
  sleep 1
done
logs=$(podman logs "$embedded" 2>&1)
grep -q 'one-time password' <<<"$logs" || fail "no one-time password printed"
"${podman[@]}" exec "$embedded" sh -c 'ls /data; ls -l /data/secret.key; ls /data/pg | head -3' || fail "nothing in /data"
"${podman[@]}" stop -t 40 "$embedded" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$embedded")
echo "embedded serve: healthy, data in /data, exit $code on SIGTERM"
[ "$code" = 0 ] || fail "exit code $code"
podman rm -v "$embedded" >/dev/null && podman volume rm "$volume-embedded" >/dev/null

step "PASS"
