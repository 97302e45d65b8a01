"""Writes of offers and trials. Each sub-module owns one part of the lifecycle; import from the sub-module."""
