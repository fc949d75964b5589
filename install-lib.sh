# shellcheck shell=bash disable=SC2034 # variables used by the scripts that source this
# Paths and helpers shared by install.sh and uninstall.sh (sourced; installed next to
# /opt/letsencrypt-cpanel/uninstall.sh so that one works without the source tree).
# Expects ROOT ("" for /) to be set. Every path is "$ROOT/<absolute path>".

OPT=$ROOT/opt/letsencrypt-cpanel
VENV=$OPT/venv
CPANEL=$ROOT/usr/local/cpanel
JUPITER=$CPANEL/base/frontend/jupiter
WHM_CGI=$CPANEL/whostmgr/docroot/cgi
WHM_ICONS=$CPANEL/whostmgr/docroot/addon_plugins
UNIT=$ROOT/etc/systemd/system/letsencrypt-cpanel.service
INITSCRIPT=$ROOT/etc/init.d/letsencrypt-cpanel
STAMPS=$OPT/.stamps

log() { echo "letsencrypt-cpanel: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# A system tool, looked up under the root prefix: a test root carries recording stand-ins, and
# an install under a prefix never touches the host's services.
tool() {
    local dir
    for dir in usr/sbin sbin usr/bin bin; do
        if [ -x "$ROOT/$dir/$1" ]; then
            echo "$ROOT/$dir/$1"
            return 0
        fi
    done
    echo ""
}
SYSTEMCTL=${SYSTEMCTL:-$(tool systemctl)}
SERVICE=${SERVICE:-$(tool service)}
CHKCONFIG=${CHKCONFIG:-$(tool chkconfig)}
UPDATE_RC_D=${UPDATE_RC_D:-$(tool update-rc.d)}
CAGEFSCTL=${CAGEFSCTL:-$(tool cagefsctl)}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# run CMD ARGS...: a command that changes the server, said before it is done.
run() {
    [ -n "$1" ] || die "a system tool is missing (systemctl, service, ...) under $LECP_ROOT"
    log "running ${*#"$ROOT"}"
    "$@" >&2
}

# support ACTION ARGS...: letsencrypt_cpanel/install_support.py with the venv's Python.
support() {
    "$VENV/bin/python" -m letsencrypt_cpanel.install_support "$@"
}

# put SRC DST MODE: install a root-owned copy unless DST already has these bytes, owner and
# mode. Sets changed=1 when it wrote, else 0 (the caller decides what to reload from it).
changed=0
put() {
    local src=$1 dst=$2 mode=$3
    changed=0
    if [ -f "$dst" ] && [ ! -L "$dst" ] && cmp -s "$src" "$dst" &&
        [ "$(stat -c '%u:%g %a' "$dst")" = "0:0 $mode" ]; then
        return 0
    fi
    mkdir -p "$(dirname "$dst")"
    install -o 0 -g 0 -m "$mode" "$src" "$dst.lecp-new"
    mv -f "$dst.lecp-new" "$dst"
    changed=1
}

# link TARGET PATH: PATH a symlink to TARGET (a real folder in the way is kept as PATH.old.<time>).
link() {
    local target=$1 path=$2
    changed=0
    [ "$(readlink "$path" 2>/dev/null)" != "$target" ] || return 0
    mkdir -p "$(dirname "$path")"
    if [ -e "$path" ] && [ ! -L "$path" ]; then
        mv "$path" "$path.old.$(date +%s)"
    fi
    ln -sfn "$target" "$path"
    changed=1
}

# render FILE: the file with /opt/letsencrypt-cpanel moved under the root prefix.
render() {
    sed -e "s|/opt/letsencrypt-cpanel|$OPT|g" "$1"
}

# launcher SRC DST: an executable with the venv's Python in its first line, root:root 0755.
launcher() {
    { echo "#!$VENV/bin/python"; tail -n +2 "$1" | render /dev/stdin; } >"$TMP/launcher"
    put "$TMP/launcher" "$2" 755
}

# stamp_differs NAME FILES...: whether FILES changed since stamp_write NAME FILES... (a
# registration is redone only when what it registers changed, or it never completed).
stamp_differs() {
    local name=$1
    shift
    [ "$(cat "$@" | sha256sum)" != "$(cat "$STAMPS/$name" 2>/dev/null)" ]
}
stamp_write() {
    local name=$1
    shift
    mkdir -p "$STAMPS"
    cat "$@" | sha256sum >"$STAMPS/$name"
}

# service_do ACTION: the SysV service through `service` when there is one, else its script.
service_do() {
    if [ -n "$SERVICE" ]; then
        run "$SERVICE" letsencrypt-cpanel "$1"
    else
        run "$INITSCRIPT" "$1"
    fi
}
