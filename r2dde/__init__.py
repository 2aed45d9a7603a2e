"""R2DDE virtuel: the `r2dde` command line, composed from the packages that own each sub-command."""
