"""``python -m dispatcher`` is the ``waapi-dispatch`` command."""

from dispatcher.cli import main

main()
