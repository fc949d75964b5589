#!/bin/bash
# Remove letsencrypt-cpanel: `./uninstall.sh` as root, from the source tree or as
# /opt/letsencrypt-cpanel/uninstall.sh.
#
# Kept: every user's record (~/.cpanel/nvdata/letsencrypt-cpanel) and the certificates already
# installed on their sites, /etc/letsencrypt-cpanel.conf, the secrets file (without the WHM token,
# which is revoked) and /var/lib/letsencrypt-cpanel: a later install.sh carries on from them.
# `--purge` removes the config, the secrets, the state folder and the log as well.
# Environment: LECP_ROOT and the tool overrides of install.sh.
set -euo pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${LECP_ROOT:-/}
ROOT=${ROOT%/}
export LECP_ROOT=${ROOT:-/}
# shellcheck source=install-lib.sh
. "$HERE/install-lib.sh"

purge=0
case "${1:-}" in
    --purge) purge=1 ;;
    "") ;;
    *) die "usage: uninstall.sh [--purge]" ;;
esac
[ "$(id -u)" = 0 ] || die "run uninstall.sh as root"
have_venv=0
"$VENV/bin/python" -c 'import letsencrypt_cpanel' 2>/dev/null && have_venv=1

# ---- the service -----------------------------------------------------------------------------
if [ -f "$UNIT" ]; then
    run "$SYSTEMCTL" disable --now letsencrypt-cpanel.service
    rm -f "$UNIT"
    run "$SYSTEMCTL" daemon-reload
fi
if [ -f "$INITSCRIPT" ]; then
    service_do stop
    if [ -x "$CHKCONFIG" ]; then
        run "$CHKCONFIG" --del letsencrypt-cpanel
    elif [ -x "$UPDATE_RC_D" ]; then
        run "$UPDATE_RC_D" -f letsencrypt-cpanel remove
    fi
    rm -f "$INITSCRIPT"
fi

# ---- chkservd --------------------------------------------------------------------------------
chkservd_changed=0
if [ -f "$ROOT/etc/chkserv.d/letsencrypt-cpanel" ]; then
    rm -f "$ROOT/etc/chkserv.d/letsencrypt-cpanel"
    chkservd_changed=1
fi
if [ "$have_venv" = 1 ]; then
    [ "$(support chkservd-disable letsencrypt-cpanel)" = unchanged ] || chkservd_changed=1
elif grep -qs '^letsencrypt-cpanel:' "$ROOT/etc/chkserv.d/chkservd.conf"; then
    sed -i '/^letsencrypt-cpanel:/d' "$ROOT/etc/chkserv.d/chkservd.conf"
    chkservd_changed=1
fi
[ "$chkservd_changed" = 0 ] || run "$CPANEL/scripts/restartsrv_chkservd"

# ---- the cPanel and WHM plugins --------------------------------------------------------------
if [ -f "$OPT/cpanel/install.json" ]; then
    run "$CPANEL/scripts/uninstall_plugin" "$OPT/cpanel" --theme jupiter
fi
[ ! -L "$JUPITER/letsencrypt-cpanel" ] || rm -f "$JUPITER/letsencrypt-cpanel"
if [ -f "$OPT/letsencrypt-cpanel-whm.conf" ]; then
    run "$CPANEL/bin/unregister_appconfig" "$OPT/letsencrypt-cpanel-whm.conf"
fi
[ ! -L "$WHM_CGI/letsencrypt-cpanel" ] || rm -f "$WHM_CGI/letsencrypt-cpanel"
rm -f "$WHM_ICONS/letsencrypt-cpanel-whm.png"

if [ -x "$CPANEL/bin/manage_hooks" ] && [ -f "$STAMPS/hooks" ]; then
    run "$CPANEL/bin/manage_hooks" delete script "$OPT/bin/letsencrypt-cpanel-hook"
fi

# ---- CageFS, the WHM token, the small files --------------------------------------------------
if [ -x "$CAGEFSCTL" ] && [ "$have_venv" = 1 ] && [ "$(support cagefs-remove "$OPT")" = changed ]; then
    run "$CAGEFSCTL" --remount-all
fi
if [ "$have_venv" = 1 ]; then
    support revoke-token >/dev/null || log "the WHM API token could not be revoked: revoke 'letsencrypt-cpanel' in WHM » Manage API Tokens"
fi
if grep -qs letsencrypt_cpanel "$ROOT/usr/local/bin/le-cp"; then
    rm -f "$ROOT/usr/local/bin/le-cp"
fi
rm -f "$ROOT/etc/logrotate.d/letsencrypt-cpanel"
if [ "$purge" = 1 ]; then
    rm -rf "$ROOT/etc/letsencrypt-cpanel.conf" "$ROOT/etc/letsencrypt-cpanel.secrets" \
        "$ROOT/var/lib/letsencrypt-cpanel" "$ROOT/var/log/letsencrypt-cpanel.log"
fi
rm -rf "$OPT"
log "removed; users' records$([ "$purge" = 1 ] || echo ", the config") and installed certificates are kept"
