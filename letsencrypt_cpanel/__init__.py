"""letsencrypt-cpanel: free, automatically renewed certificates for every site on a cPanel server."""

__version__ = "0.1.0"
