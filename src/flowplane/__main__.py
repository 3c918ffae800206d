"""``python -m flowplane``: the same as the ``flowplane`` command."""

from flowplane.cli.main import main

if __name__ == "__main__":
    main()
