"""Development and test tools; not part of the shipped apps."""
