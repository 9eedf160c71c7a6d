# Shared by the lab's openc3.sh stand-ins (cosmos7/, cosmos6/): create, start, stop and
# remove the lab's containers and volumes with the Docker CLI. Everything they create is
# labelled org.opsplan.lab.stack=<stack>; `cleanup` removes only what carries that label, so
# a real COSMOS installation's containers or volumes of the same names are never removed.
# Sourced, not run.

LAB_PREFIX=${LAB_PREFIX:-}

lab_fail() {
    echo "openc3.sh (lab stand-in): $*" >&2
    exit 1
}

command -v docker >/dev/null || lab_fail "missing tool: docker"

lab_label_of() { # container|volume name -> the stack label, empty if none
    local field=.Config.Labels
    [ "$1" = volume ] && field=.Labels
    docker "$1" inspect --format "{{ index $field \"org.opsplan.lab.stack\" }}" "$2" 2>/dev/null || true
}

lab_volume() { # name
    if ! docker volume inspect "$1" >/dev/null 2>&1; then
        docker volume create --label "org.opsplan.lab.stack=$LAB_STACK" "$1" >/dev/null ||
            lab_fail "cannot create volume $1"
    fi
}

# lab_up NAME -- docker-run-args...: start NAME if it exists (like `docker compose up -d` on
# stopped services), else create it with the given arguments.
lab_up() {
    local name=$1
    shift
    [ "${1:-}" = -- ] && shift
    local state
    state=$(docker container inspect --format '{{ .State.Running }}' "$name" 2>/dev/null || echo missing)
    case "$state" in
        true) echo "openc3.sh: $name is running" ;;
        false)
            docker start "$name" >/dev/null || lab_fail "cannot start $name"
            echo "openc3.sh: started $name"
            ;;
        *)
            docker run -d --name "$name" --label "org.opsplan.lab.stack=$LAB_STACK" "$@" >/dev/null ||
                lab_fail "cannot create $name"
            echo "openc3.sh: created and started $name"
            ;;
    esac
}

lab_stop() {
    local name
    for name in "$@"; do
        if docker container inspect "$name" >/dev/null 2>&1; then
            docker stop -t 10 "$name" >/dev/null || lab_fail "cannot stop $name"
            echo "openc3.sh: stopped $name"
        fi
    done
}

# cleanup: containers then volumes, only the lab's own.
lab_cleanup() { # containers... -- volumes...
    local kind=container n
    for n in "$@"; do
        if [ "$n" = -- ]; then
            kind=volume
            continue
        fi
        docker "$kind" inspect "$n" >/dev/null 2>&1 || continue
        if [ "$(lab_label_of "$kind" "$n")" != "$LAB_STACK" ]; then
            echo "openc3.sh: NOT removing $kind $n: it is not the lab's (no org.opsplan.lab.stack=$LAB_STACK label)" >&2
            continue
        fi
        if [ "$kind" = container ]; then
            docker rm -f -v "$n" >/dev/null && echo "openc3.sh: removed container $n"
        else
            docker volume rm "$n" >/dev/null && echo "openc3.sh: removed volume $n"
        fi
    done
}
