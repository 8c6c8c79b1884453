"""Org units (đơn vị) and the tree they form."""
