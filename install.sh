#!/bin/bash
# Install or upgrade letsencrypt-cpanel on a cPanel & WHM server: `./install.sh` as root, from
# the source tree. Idempotent: a second run changes no file and runs no registration again.
#
# Environment:
#   LECP_ROOT   root prefix for every path (default /; the tests use a sandbox root)
#   PYTHON      the Python 3.10+ to build the venv from (default: found, or installed)
#   SYSTEMCTL, SERVICE, CHKCONFIG, UPDATE_RC_D, CAGEFSCTL
#               the service tools (default: found under the root prefix, so a test root's
#               recording stand-ins are used instead of the host's)
#   LECP_INSTALL_SITE_PACKAGES
#               tests only: a folder holding the pinned dependencies already (the dev venv's
#               site-packages), linked into the new venv instead of downloading them
set -euo pipefail
umask 022

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${LECP_ROOT:-/}
ROOT=${ROOT%/} # "" for /: every path below is "$ROOT/absolute/path"
export LECP_ROOT=${ROOT:-/}
# shellcheck source=install-lib.sh
. "$SRC/install-lib.sh"

[ "$(id -u)" = 0 ] || die "run install.sh as root"
[ -x "$CPANEL/bin/whmapi1" ] || die "no cPanel & WHM found under $LECP_ROOT (missing $CPANEL/bin/whmapi1)"
for f in daemon/letsencrypt-cpaneld cgi/letsencrypt.live.cgi cgi/whm/letsencrypt.live.cgi \
    plugin/install.json plugin/hooks/letsencrypt-cpanel-hook requirements.lock; do
    [ -f "$SRC/$f" ] || die "the source tree is incomplete: $SRC/$f is missing"
done

retire_fleetssl() {
    local fs=$ROOT/opt/fleetssl-cpanel theme
    log "retiring FleetSSL's plugin (its users' records stay: this plugin reads them)"
    if [ -z "$ROOT" ]; then # its package, so that no package update brings it back
        if command -v rpm >/dev/null && rpm -q letsencrypt-cpanel >/dev/null 2>&1; then
            run rpm -e --noscripts --nodeps letsencrypt-cpanel || log "rpm -e failed; going on"
        elif dpkg-query -W -f='${Status}' letsencrypt-cpanel 2>/dev/null | grep -q ' installed'; then
            run dpkg --purge letsencrypt-cpanel || log "dpkg --purge failed; going on"
        fi
    fi
    # Its service has our name: stopped and disabled, its unit or script removed.
    if [ -f "$UNIT" ] && grep -q /opt/fleetssl-cpanel "$UNIT"; then
        run "$SYSTEMCTL" disable --now letsencrypt-cpanel.service
        rm -f "$UNIT"
    fi
    if [ -f "$INITSCRIPT" ] && grep -q /opt/fleetssl-cpanel "$INITSCRIPT"; then
        service_do stop
        if [ -x "$CHKCONFIG" ]; then
            run "$CHKCONFIG" --del letsencrypt-cpanel
        elif [ -x "$UPDATE_RC_D" ]; then
            run "$UPDATE_RC_D" -f letsencrypt-cpanel remove
        fi
        rm -f "$INITSCRIPT"
    fi
    for theme in jupiter paper_lantern; do
        [ -d "$CPANEL/base/frontend/$theme" ] || continue
        if [ -f "$fs/install.json" ]; then
            run "$CPANEL/scripts/uninstall_plugin" "$fs" --theme "$theme"
        fi
        [ ! -L "$CPANEL/base/frontend/$theme/letsencrypt" ] || rm -f "$CPANEL/base/frontend/$theme/letsencrypt"
        rm -f "$CPANEL/base/frontend/$theme/dynamicui/dynamicui_letsencrypt.conf"
    done
    if [ -f "$fs/letsencrypt-cpanel-whm.conf" ]; then
        run "$CPANEL/bin/unregister_appconfig" "$fs/letsencrypt-cpanel-whm.conf"
    fi
    [ ! -L "$WHM_CGI/letsencrypt-cpanel" ] || rm -f "$WHM_CGI/letsencrypt-cpanel"
    rm -f "$WHM_ICONS/letsencrypt-cpanel-whm.jpg" \
        "$ROOT/var/cpanel/perl/Cpanel/SSL/Auto/Provider/FleetSSLProvider.pm"
    # Its chkservd driver probes port 5959, where our daemon does not listen.
    if grep -qs 5959 "$ROOT/etc/chkserv.d/letsencrypt-cpanel"; then
        rm -f "$ROOT/etc/chkserv.d/letsencrypt-cpanel"
    fi
    support chkservd-disable letsencrypt letsencrypt-cpanel >/dev/null
    [ ! -L "$ROOT/usr/local/bin/le-cp" ] || rm -f "$ROOT/usr/local/bin/le-cp"
    if grep -qsiE 'fleetssl|letsencrypt-for-cpanel' "$ROOT/etc/yum.repos.d/letsencrypt.repo"; then
        rm -f "$ROOT/etc/yum.repos.d/letsencrypt.repo"
    fi
    support retire-fleetssl >/dev/null # its root API tokens revoked; its config set aside
    rm -rf "$fs"
}

# ---- Python 3.10+ and the venv ---------------------------------------------------------------
find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3.10 python3; do
        [ -n "$candidate" ] || continue
        candidate=$(command -v "$candidate" 2>/dev/null) || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

install_python() {
    # AlmaLinux/CloudLinux/RHEL 8 and 9: python3 is 3.6/3.9, the AppStream package python3.11 is
    # supported for the OS's life. Ubuntu 22.04+/Debian 12: the system Python is new enough.
    if command -v dnf >/dev/null; then
        log "installing python3.11 with dnf"
        dnf -y -q install python3.11
    elif command -v apt-get >/dev/null; then
        log "installing python3 and python3-venv with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
    else
        die "no Python 3.10 or newer, and neither dnf nor apt-get to install one: set PYTHON="
    fi
}

PY=$(find_python) || {
    [ -z "${PYTHON:-}" ] || die "PYTHON=$PYTHON is not Python 3.10 or newer"
    install_python
    PY=$(find_python) || die "no Python 3.10 or newer after installing one"
}

code_changed=0
if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    log "creating the venv $VENV with $PY"
    rm -rf "$VENV" "$OPT/requirements.lock" # a new venv needs its dependencies again
    mkdir -p "$OPT"
    chmod 755 "$OPT"
    if [ -n "${LECP_INSTALL_SITE_PACKAGES:-}" ]; then
        "$PY" -m venv --without-pip "$VENV"
    else
        if ! "$PY" -m ensurepip --version >/dev/null 2>&1 && command -v apt-get >/dev/null; then
            # Debian and Ubuntu ship ensurepip separately.
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        fi
        "$PY" -m venv "$VENV"
    fi
    code_changed=1
fi
# CGIs and workers run as the users: every folder down to the venv must let them through.
if [ $((0$(stat -c %a "$ROOT/opt") & 1)) = 0 ]; then
    log "$ROOT/opt was closed to other users: adding o+x so that users' pages can run"
    chmod o+x "$ROOT/opt"
fi
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')

if [ -n "${LECP_INSTALL_SITE_PACKAGES:-}" ]; then
    printf '%s\n' "$LECP_INSTALL_SITE_PACKAGES" >"$TMP/deps.pth"
    put "$TMP/deps.pth" "$SITE/letsencrypt-cpanel-deps.pth" 644
elif ! cmp -s "$SRC/requirements.lock" "$OPT/requirements.lock"; then
    log "installing the pinned dependencies"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "$SRC/requirements.lock"
    put "$SRC/requirements.lock" "$OPT/requirements.lock" 644
    code_changed=1
fi

# ---- the code: $OPT/lib on the venv's path, replaced whole when the source changed -----------
source_digest() {
    (cd "$SRC" && find letsencrypt_cpanel templates -type f ! -name '*.pyc' -print0 2>/dev/null |
        LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}
digest=$(source_digest)
if [ "$(cat "$OPT/lib/.source-sha256" 2>/dev/null)" != "$digest" ]; then
    log "installing the code into $OPT/lib"
    rm -rf "$OPT/lib.new" "$OPT/lib.old"
    mkdir -p "$OPT/lib.new"
    tar -C "$SRC" --exclude=__pycache__ --exclude='*.pyc' -cf - letsencrypt_cpanel \
        templates | tar -C "$OPT/lib.new" --no-same-owner -xf -
    "$VENV/bin/python" -m compileall -q "$OPT/lib.new/letsencrypt_cpanel" >/dev/null
    echo "$digest" >"$OPT/lib.new/.source-sha256"
    chown -R 0:0 "$OPT/lib.new"
    chmod -R u=rwX,go=rX "$OPT/lib.new"
    [ ! -d "$OPT/lib" ] || mv "$OPT/lib" "$OPT/lib.old"
    mv "$OPT/lib.new" "$OPT/lib"
    rm -rf "$OPT/lib.old"
    code_changed=1
fi
echo "$OPT/lib" >"$TMP/code.pth"
put "$TMP/code.pth" "$SITE/letsencrypt-cpanel.pth" 644

# ---- FleetSSL's plugin, retired before ours takes its names (service, chkservd, AppConfig) ---
# (also what a half-done removal of it left: its service, or its AutoSSL provider link)
provider=$ROOT/var/cpanel/perl/Cpanel/SSL/Auto/Provider/FleetSSLProvider.pm
if [ -d "$ROOT/opt/fleetssl-cpanel" ] || [ -e "$provider" ] || [ -L "$provider" ] ||
    grep -qs /opt/fleetssl-cpanel "$UNIT" "$INITSCRIPT"; then
    retire_fleetssl
fi

# The launchers, with the venv's Python in their first line (cpsrvd wants root:root 0755).
launcher "$SRC/daemon/letsencrypt-cpaneld" "$OPT/bin/letsencrypt-cpaneld"
cat >"$TMP/le-cp" <<'EOF'
#!/usr/bin/python3
# le-cp of letsencrypt-cpanel (installed by install.sh)
import sys

from letsencrypt_cpanel.cli import main

sys.exit(main())
EOF
launcher "$TMP/le-cp" "$ROOT/usr/local/bin/le-cp"
put "$SRC/uninstall.sh" "$OPT/uninstall.sh" 755
put "$SRC/install-lib.sh" "$OPT/install-lib.sh" 644
put "$SRC/README.md" "$OPT/README.md" 644

# ---- the cPanel plugin (Jupiter) -------------------------------------------------------------
launcher "$SRC/cgi/letsencrypt.live.cgi" "$OPT/cpanel/letsencrypt.live.cgi"
put "$SRC/plugin/install.json" "$OPT/cpanel/install.json" 644
put "$SRC/plugin/letsencrypt-cpanel.svg" "$OPT/cpanel/letsencrypt-cpanel.svg" 644
link "$OPT/cpanel" "$JUPITER/letsencrypt-cpanel"
if stamp_differs cpanel-plugin "$OPT/cpanel/install.json" "$OPT/cpanel/letsencrypt-cpanel.svg"; then
    run "$CPANEL/scripts/install_plugin" "$OPT/cpanel" --theme jupiter
    stamp_write cpanel-plugin "$OPT/cpanel/install.json" "$OPT/cpanel/letsencrypt-cpanel.svg"
fi

# ---- the WHM plugin --------------------------------------------------------------------------
launcher "$SRC/cgi/whm/letsencrypt.live.cgi" "$OPT/whm/letsencrypt.live.cgi"
link "$OPT/whm" "$WHM_CGI/letsencrypt-cpanel"
put "$SRC/plugin/letsencrypt-cpanel-whm.png" "$WHM_ICONS/letsencrypt-cpanel-whm.png" 644
put "$SRC/plugin/letsencrypt-cpanel-whm.conf" "$OPT/letsencrypt-cpanel-whm.conf" 644
if stamp_differs whm-plugin "$OPT/letsencrypt-cpanel-whm.conf" ||
    [ ! -f "$ROOT/var/cpanel/apps/letsencrypt-cpanel-whm.conf" ]; then
    run "$CPANEL/bin/register_appconfig" "$OPT/letsencrypt-cpanel-whm.conf"
    stamp_write whm-plugin "$OPT/letsencrypt-cpanel-whm.conf"
fi

# ---- cPanel hooks: a new account or domain queues an AutoSSL run (letsencrypt_cpanel.cpanel_hooks)
HOOK=$OPT/bin/letsencrypt-cpanel-hook
launcher "$SRC/plugin/hooks/letsencrypt-cpanel-hook" "$HOOK"
if [ ! -x "$CPANEL/bin/manage_hooks" ]; then
    log "no $CPANEL/bin/manage_hooks: new accounts and domains wait for the next daemon cycle"
elif stamp_differs hooks "$HOOK" "$OPT/lib/letsencrypt_cpanel/cpanel_hooks.py"; then
    # manage_hooks asks the script `--describe` for its events; a changed list is registered anew.
    [ ! -f "$STAMPS/hooks" ] || run "$CPANEL/bin/manage_hooks" delete script "$HOOK"
    run "$CPANEL/bin/manage_hooks" add script "$HOOK"
    stamp_write hooks "$HOOK" "$OPT/lib/letsencrypt_cpanel/cpanel_hooks.py"
fi

# ---- CloudLinux CageFS: users' CGIs run inside the cage and need the venv and the code -------
if [ -x "$CAGEFSCTL" ] && [ "$(support cagefs-add "$OPT")" = changed ]; then
    run "$CAGEFSCTL" --remount-all
fi

# ---- config, secrets and the daemon's WHM API token ------------------------------------------
support ensure-config >/dev/null
mkdir -p "$ROOT/var/lib/letsencrypt-cpanel"
chmod 700 "$ROOT/var/lib/letsencrypt-cpanel"
support ensure-token >/dev/null
put "$SRC/sysvinit/letsencrypt-cpanel.logrotate" "$ROOT/etc/logrotate.d/letsencrypt-cpanel" 644

# ---- chkservd: cPanel restarts the daemon when it is not running -----------------------------
put "$SRC/checksrvd/letsencrypt-cpanel" "$ROOT/etc/chkserv.d/letsencrypt-cpanel" 644
chkservd_changed=$changed
if [ "$(support chkservd-enable letsencrypt-cpanel)" = changed ] || [ "$chkservd_changed" = 1 ]; then
    run "$CPANEL/scripts/restartsrv_chkservd"
fi

# ---- the service -----------------------------------------------------------------------------
if [ -d "$ROOT/run/systemd/system" ]; then
    render "$SRC/systemd/letsencrypt-cpanel.service" >"$TMP/unit"
    [ -z "$ROOT" ] || sed -i "/^\[Service\]/a Environment=LECP_ROOT=$ROOT" "$TMP/unit"
    fresh=0
    [ -f "$UNIT" ] || fresh=1
    put "$TMP/unit" "$UNIT" 644
    [ "$changed" = 0 ] || run "$SYSTEMCTL" daemon-reload
    run "$SYSTEMCTL" enable --now letsencrypt-cpanel.service
    if [ "$fresh" = 0 ] && { [ "$changed" = 1 ] || [ "$code_changed" = 1 ]; }; then
        run "$SYSTEMCTL" restart letsencrypt-cpanel.service
    fi
else
    render "$SRC/sysvinit/letsencrypt-cpanel" >"$TMP/init"
    sed -i "s|^: \"\${LECP_ROOT:=/}\"$|: \"\${LECP_ROOT:=${ROOT:-/}}\"|" "$TMP/init"
    fresh=0
    [ -f "$INITSCRIPT" ] || fresh=1
    put "$TMP/init" "$INITSCRIPT" 755
    if [ "$changed" = 1 ]; then
        if [ -x "$CHKCONFIG" ]; then
            run "$CHKCONFIG" --add letsencrypt-cpanel
        elif [ -x "$UPDATE_RC_D" ]; then
            run "$UPDATE_RC_D" letsencrypt-cpanel defaults
        fi
    fi
    service_do start
    if [ "$fresh" = 0 ] && { [ "$changed" = 1 ] || [ "$code_changed" = 1 ]; }; then
        service_do restart
    fi
fi

log "done: le-cp self-test checks the installation"
