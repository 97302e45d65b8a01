"""Offers, trials and value models: the heart of the product (../shared/PRODUCT.md §3).

Offers may import rules; nothing in rules imports offers.
"""
