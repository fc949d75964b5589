from letsencrypt_cpanel.cli import main

raise SystemExit(main())
