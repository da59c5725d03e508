"""`python -m ckpt_cli`: the same command line as `ckpt`."""

from .cli import main

main()
