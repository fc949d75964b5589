#!/usr/bin/python3
# The WHM page (cpsrvd runs it as root, REMOTE_USER = the WHM user): the WSGI app under CGI.
from wsgiref.handlers import CGIHandler

from letsencrypt_cpanel.web.whm import app_from_environment

CGIHandler().run(app_from_environment())
