from cpanel_sandbox.cli import main

raise SystemExit(main())
