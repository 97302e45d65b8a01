"""`python -m devtools.stripe_standin`: see the package docstring."""

from devtools.stripe_standin.app import main

main()
