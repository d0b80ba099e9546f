from kafka_sidecar.cli import main

raise SystemExit(main())
