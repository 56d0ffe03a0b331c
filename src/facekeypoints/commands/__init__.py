"""CLI sub-commands, one module each (see facekeypoints.cli)."""
