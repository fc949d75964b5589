#!/usr/bin/python3
# The cPanel page (cpsrvd runs it as the logged-in user): the WSGI app under wsgiref's CGI handler.
from wsgiref.handlers import CGIHandler

from letsencrypt_cpanel.web.cpanel import app_from_environment

CGIHandler().run(app_from_environment())
