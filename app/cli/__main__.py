import sys

try:
    from app.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command was still loading
    sys.exit(130)

sys.exit(main())
