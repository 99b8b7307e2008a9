"""One module per `genre` subcommand; each exposes ``register(subparsers)``.

A command's ``run(args) -> int`` returns the exit status: 0 all done, 1 some file failed
(the rest still done), 2 unusable arguments (../shared/CLI.md).
"""
