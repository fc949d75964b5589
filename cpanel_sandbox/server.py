"""`python -m cpanel_sandbox serve ROOT`: every server of the sandbox in one process.

Users' sites (HTTP by Host, HTTPS by SNI), cpsrvd's cPanel and WHM ports, the page host and the
LiveAPI sockets, all on 127.0.0.1, each server in its own thread. When everything listens, the
ports go to `ROOT/var/cpanel/sandbox.json` (with `pid`, `challtestsrv` and the fault switches,
which are kept) and to the plugin's public config under ROOT, so the plugin finds its "cPanel".
SIGTERM or SIGINT stops everything and removes the LiveAPI folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from cpanel_sandbox import cpsrvd, faults, liveapi, pagehost, sites
from letsencrypt_cpanel.config import update_config


def _publish(root: Path, ports: dict[str, int], challtestsrv: str | None) -> None:
    env_faults = faults.faults_from_env(os.environ)

    def change(state: dict[str, Any]) -> None:
        kept = faults.valid_faults(state.get("faults"))
        kept.update(env_faults)
        state.clear()
        state.update(ports)
        state["pid"] = os.getpid()
        state["challtestsrv"] = challtestsrv
        state["faults"] = kept

    faults.update_state(root, change)


def serve(
    root: Path,
    *,
    http_port: int = 5002,
    https_port: int | None = None,
    cpanel_port: int | None = None,
    whm_port: int | None = None,
    challtestsrv: str | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or until `stop` is set, for a caller serving from a thread,
    where signals cannot be caught). Ports left as None are chosen free by the kernel."""
    root = Path(root).absolute()
    pem = sites.service_pem_path(root)
    if not pem.is_file():
        raise SystemExit(f"{pem} is missing: run `python -m cpanel_sandbox init {root}` first")
    service = sites.ServiceCertificate(root)
    service.context()  # fail now, not on the first handshake, if the file is broken
    socket_dir = liveapi.make_socket_dir(root)
    servers: list[sites.LoopbackHTTPServer] = []
    certificates: sites.SiteCertificates | None = None
    try:
        site_http, site_https, certificates = sites.make_site_servers(
            root, http_port, https_port or 0, service
        )
        servers += [site_http, site_https]
        servers.append(
            cpsrvd.make_cpsrvd_server(root, cpanel_port or 0, "cpaneld", service, socket_dir)
        )
        servers.append(
            cpsrvd.make_cpsrvd_server(root, whm_port or 0, "whostmgrd", service, socket_dir)
        )
        ports = {
            "http_port": servers[0].port,
            "https_port": servers[1].port,
            "cpanel_port": servers[2].port,
            "whm_port": servers[3].port,
        }
        update_config(
            root,
            {
                "cpanel_port": ports["cpanel_port"],
                "whm_port": ports["whm_port"],
                "http_port": ports["http_port"],
            },
        )
        stopping = stop if stop is not None else threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
        threads = [
            threading.Thread(
                target=s.serve_forever, kwargs={"poll_interval": 0.2}, name=s.name, daemon=True
            )
            for s in servers
        ]
        for thread in threads:
            thread.start()
        _publish(root, ports, challtestsrv)
        print(
            "cpanel_sandbox serving {root}: sites http {http_port} https {https_port}, "
            "cPanel {cpanel_port}, WHM {whm_port}".format(root=root, **ports),
            file=sys.stderr,
            flush=True,
        )
        while not stopping.wait(0.5):
            pass
        for server in servers:
            server.shutdown()
    finally:
        pagehost.kill_running_pages()
        for server in servers:
            with contextlib.suppress(OSError):
                server.server_close()
        if certificates is not None:
            certificates.pems.close()
        liveapi.remove_socket_dir(socket_dir)
