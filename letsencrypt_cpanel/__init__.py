"""letsencrypt-cpanel: free, automatically renewed certificates for every cPanel website."""

__version__ = "0.1.0"
