#!/usr/bin/python3
# The cPanel page (cpsrvd runs it as the logged-in user): the WSGI app under wsgiref's CGI handler.
import gc

# One request a process (bench/bench_page.py): the cyclic collector does not run while the
# modules load (what they make lives until the exit anyway), and does not scan those objects
# again afterwards (freeze) nor at the exit. It stays on for the request itself: an issue can
# run for minutes in this process.
gc.disable()

from wsgiref.handlers import CGIHandler  # noqa: E402

from letsencrypt_cpanel.web.cpanel import app_from_environment  # noqa: E402

gc.freeze()
gc.enable()
CGIHandler().run(app_from_environment())
gc.freeze()
