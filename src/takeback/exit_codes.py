"""The `takeback` command's exit codes (listed in the README and in `takeback.cli`'s docstring).

A module of their own so that the CLI's light entry module and its lazily imported command modules share one
definition.
"""

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_WRITE_FAILED = 3
EXIT_INTERNAL = 4
EXIT_UNREACHABLE = 5
EXIT_REFUSED = 6
EXIT_MATCHED = 10
