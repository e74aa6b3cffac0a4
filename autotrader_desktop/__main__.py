from autotrader_desktop.cli import main

raise SystemExit(main())
